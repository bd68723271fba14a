"""The OpenMetrics backfill dataset the disk and backfill figures are measured on.

The peers' published figures (``workloads/README.md`` next to this repository) were
measured on the file that ``workloads/gen_dataset.py`` writes for ``--targets 20 --hours 24
--step 15 --end 1795309200``. To compare like with like we run that same generator (it is
deterministic) rather than a look-alike; an existing file is reused, its JSON sidecar
(``FILE.json``) giving the counts. Also here: the streaming conversion to Prometheus text
with millisecond timestamps that VictoriaMetrics's import endpoint wants.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import BinaryIO

from .machine import REPO

OUT_DIR = os.path.join(REPO, "bench", "out")

#: The reference dataset's parameters (see the module docstring).
DEFAULT_TARGETS = 20
DEFAULT_HOURS = 24.0
DEFAULT_STEP_S = 15
DEFAULT_END = 1795309200

WORKLOADS_ENV = "VIGILOPS_WORKLOADS"


def workloads_dir() -> str:
    """Where ``gen_dataset.py`` lives: $VIGILOPS_WORKLOADS, else ``../shared/workloads``."""
    env = os.environ.get(WORKLOADS_ENV)
    if env:
        return env
    return os.path.join(os.path.dirname(REPO), "shared", "workloads")


@dataclass
class Dataset:
    path: str
    bytes: int
    samples: int
    series: int
    targets: int
    step_s: int
    start_s: int  # first sample, Unix seconds
    end_s: int  # last sample, Unix seconds
    generator_command: str

    @property
    def hours(self) -> float:
        return (self.end_s - self.start_s + self.step_s) / 3600

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["hours"] = self.hours
        return d


def default_path(targets: int, hours: float) -> str:
    h = f"{hours:g}".replace(".", "p")
    return os.path.join(OUT_DIR, f"node_{h}h_{targets}t.om")


def generator_command(path: str, targets: int, hours: float, step_s: int, end_s: int) -> list[str]:
    script = os.path.join(workloads_dir(), "gen_dataset.py")
    return [
        sys.executable,
        script,
        "--targets",
        str(targets),
        "--hours",
        f"{hours:g}",
        "--step",
        str(step_s),
        "--end",
        str(end_s),
        "--out",
        path,
    ]


def ensure_dataset(
    path: str | None,
    targets: int = DEFAULT_TARGETS,
    hours: float = DEFAULT_HOURS,
    step_s: int = DEFAULT_STEP_S,
    end_s: int = DEFAULT_END,
) -> Dataset:
    """The dataset at `path` (default: under bench/out/, named by targets and hours),
    generated first if the file does not exist."""
    path = os.path.abspath(path or default_path(targets, hours))
    cmd = generator_command(path, targets, hours, step_s, end_s)
    cmd_text = " ".join([os.path.relpath(cmd[1], REPO)] + cmd[2:]).replace(REPO + "/", "")
    if not os.path.exists(path):
        script = cmd[1]
        if not os.path.exists(script):
            raise SystemExit(
                f"error: {path} does not exist and the generator {script} is missing; "
                f"set {WORKLOADS_ENV} to the workloads directory or pass --dataset FILE"
            )
        os.makedirs(os.path.dirname(path), exist_ok=True)
        print(f"generating {path} ({targets} targets x {hours:g} h) ...", flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return _describe(path, cmd_text)


def _describe(path: str, cmd_text: str) -> Dataset:
    size = os.path.getsize(path)
    sidecar = path + ".json"
    if os.path.exists(sidecar):
        with open(sidecar) as f:
            meta = json.load(f)
        if int(meta.get("bytes", size)) == size:
            targets = meta["targets"]
            return Dataset(
                path=path,
                bytes=size,
                samples=int(meta["samples"]),
                series=int(meta["series_total"]),
                targets=len(targets) if isinstance(targets, list) else int(targets),
                step_s=int(meta["step_s"]),
                start_s=int(meta["start"]),
                end_s=int(meta["end"]),
                generator_command=cmd_text,
            )
    return _scan(path, size)


def _scan(path: str, size: int) -> Dataset:
    """Count samples and series of a file without a (matching) sidecar: one pass."""
    print(f"counting samples in {path} (no sidecar) ...", flush=True)
    samples = 0
    series: set[bytes] = set()
    tmin, tmax = 2**63, -(2**63)
    times: set[int] = set()
    instances: set[bytes] = set()
    inst_re = re.compile(rb'instance="([^"]*)"')
    with open(path, "rb") as f:
        for line in f:
            if line.startswith(b"#") or not line.strip():
                continue
            key, _, rest = line.rpartition(b"}")
            if not key:
                key = line.split(b" ", 1)[0]
            t = int(float(rest.split()[-1]))
            samples += 1
            series.add(key)
            tmin, tmax = min(tmin, t), max(tmax, t)
            if len(times) < 3:
                times.add(t)
            m = inst_re.search(key)
            if m:
                instances.add(m.group(1))
    ordered = sorted(times)
    step = ordered[1] - ordered[0] if len(ordered) > 1 else 0
    return Dataset(
        path=path,
        bytes=size,
        samples=samples,
        series=len(series),
        targets=len(instances),
        step_s=step,
        start_s=tmin,
        end_s=tmax,
        generator_command="(existing file, counted)",
    )


# -- VictoriaMetrics wants Prometheus text with millisecond timestamps ------------------------

def _check_integer_seconds(head: bytes) -> None:
    for line in head.split(b"\n")[:-1][:2000]:
        if not line or line.startswith(b"#"):
            continue
        last = line.rsplit(b" ", 1)[-1]
        if not last.lstrip(b"-").isdigit() or last == line:
            raise ValueError(
                "the VictoriaMetrics import expects every sample line to end in an integer "
                f"Unix-seconds timestamp (as gen_dataset.py writes); got {line[:200]!r}"
            )


def prometheus_ms_chunks(source: BinaryIO, chunk_bytes: int = 32 << 20) -> Iterator[bytes]:
    """Re-emit an OpenMetrics file whose samples end in integer seconds as Prometheus text
    with millisecond timestamps, in pieces of about `chunk_bytes` that end at a newline.

    Appending ``000`` before every newline turns seconds into milliseconds; comment lines
    (``# HELP``, ``# TYPE``, ``# EOF``) get the suffix too, which is harmless in a comment.
    """
    carry = b""
    checked = False
    while True:
        block = source.read(chunk_bytes)
        if not block:
            break
        data = carry + block
        cut = data.rfind(b"\n") + 1
        carry = data[cut:]
        data = data[:cut]
        if not data:
            continue
        if not checked:
            _check_integer_seconds(data[: 1 << 20])
            checked = True
        yield data.replace(b"\n", b"000\n")
    if carry.strip():
        yield carry + b"000\n"

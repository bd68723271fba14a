"""Bytes per sample on disk after compaction, and what the backfill cost.

One dataset is loaded into each system the way its users would backfill it:

* VigilOps: ``vigilops tsdb import openmetrics FILE DIR --max-block-duration 2h --compact``;
* Prometheus: ``promtool tsdb create-blocks-from openmetrics FILE DIR``, then a real
  ``prometheus`` server on DIR compacts the blocks with its own planner (`bench.peers`);
* VictoriaMetrics: its ``/api/v1/import/prometheus`` endpoint, then ``/internal/force_merge``.

Sizes are apparent file sizes (``du --apparent-size``) of what each system keeps for good:
blocks (index + chunks + meta) for VigilOps and Prometheus, without WAL, head chunks and
lock files; ``data/`` + ``indexdb/`` + ``metadata/`` for VictoriaMetrics. Bytes per sample
divide by the dataset's sample count; the samples each system reports holding are shown
next to it as a check.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from .dataset import Dataset
from .machine import git_commit
from .procs import run_measured

VIGILOPS = "vigilops"


def dir_bytes(path: str, exclude_top: Iterable[str] = ()) -> int:
    """Apparent size of the regular files under `path`, skipping the top-level entries
    named in `exclude_top`."""
    skip = set(exclude_top)
    total = 0
    if not os.path.isdir(path):
        return 0
    for entry in os.scandir(path):
        if entry.name in skip:
            continue
        if entry.is_dir(follow_symlinks=False):
            for root, _, files in os.walk(entry.path):
                for name in files:
                    try:
                        total += os.lstat(os.path.join(root, name)).st_size
                    except FileNotFoundError:
                        pass
        elif entry.is_file(follow_symlinks=False):
            total += entry.stat(follow_symlinks=False).st_size
    return total


@dataclass
class Phase:
    """One measured step: a command, or a server's work between two moments."""

    name: str
    cpu_s: float
    wall_s: float
    peak_rss_bytes: int
    command: str


@dataclass
class StoreResult:
    system: str
    version: str
    total_bytes: int  # everything kept for good (see the module docstring)
    sample_bytes: int  # chunks alone (data/ alone for VictoriaMetrics)
    samples_in: int  # samples in the dataset
    samples_stored: int  # what the system says it holds (a check)
    units: int  # blocks, or VictoriaMetrics parts
    phases: list[Phase] = field(default_factory=list)
    breakdown: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def bytes_per_sample(self) -> float:
        return self.total_bytes / self.samples_in if self.samples_in else 0.0

    @property
    def sample_bytes_per_sample(self) -> float:
        return self.sample_bytes / self.samples_in if self.samples_in else 0.0

    def phase(self, name: str) -> Phase | None:
        return next((p for p in self.phases if p.name == name), None)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["bytes_per_sample"] = self.bytes_per_sample
        d["sample_bytes_per_sample"] = self.sample_bytes_per_sample
        return d


@dataclass
class BlockInventory:
    blocks: int
    total_bytes: int
    chunk_bytes: int
    samples: int
    breakdown: dict[str, int]


_ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}\Z")


def block_inventory(data_dir: str) -> BlockInventory:
    """Blocks (ULID-named directories) of a Prometheus-layout data directory: bytes by
    kind of file (``chunks``, ``index``, ``meta.json``, ``tombstones``) and samples from
    each ``meta.json``."""
    blocks = samples = total = chunks = 0
    breakdown: dict[str, int] = {}
    for entry in sorted(os.scandir(data_dir), key=lambda e: e.name):
        if not entry.is_dir() or not _ULID.match(entry.name):
            continue
        blocks += 1
        for root, _, files in os.walk(entry.path):
            for name in files:
                full = os.path.join(root, name)
                size = os.lstat(full).st_size
                kind = os.path.relpath(full, entry.path).split(os.sep, 1)[0]
                breakdown[kind] = breakdown.get(kind, 0) + size
                total += size
                if kind == "chunks":
                    chunks += size
        try:
            with open(os.path.join(entry.path, "meta.json")) as f:
                samples += int(json.load(f).get("stats", {}).get("numSamples", 0))
        except (OSError, ValueError):
            pass
    return BlockInventory(blocks, total, chunks, samples, breakdown)


def vigilops_binary() -> str:
    """The `vigilops` entry point of the interpreter running us (the project's venv)."""
    beside = os.path.join(os.path.dirname(sys.executable), VIGILOPS)
    if os.path.exists(beside):
        return beside
    found = shutil.which(VIGILOPS)
    if found is None:
        raise SystemExit("error: the vigilops command is not installed (run ./dev.sh bench)")
    return found


def openmetrics_parser_available() -> bool:
    """The importer's OpenMetrics parser lands separately; without it, skip VigilOps's
    backfill rather than fail the whole run."""
    try:
        import vigilops.tsdb.importer  # noqa: F401
    except ImportError:
        return False
    return True


def vigilops_backfill(ds: Dataset, workdir: str, log_path: str) -> StoreResult:
    data_dir = os.path.join(workdir, "vigilops")
    shutil.rmtree(data_dir, ignore_errors=True)
    cmd = [
        vigilops_binary(), "tsdb", "import", "openmetrics", ds.path, data_dir,
        "--max-block-duration", "2h", "--compact",
    ]
    start = os.path.getsize(log_path) if os.path.exists(log_path) else 0
    usage = run_measured(cmd, log_path)
    with open(log_path, "rb") as f:
        f.seek(start)
        out = f.read().decode(errors="replace")
    inv = block_inventory(data_dir)
    total = dir_bytes(data_dir, exclude_top=("wal", "lock"))
    shown = " ".join(["vigilops"] + cmd[1:4] + ["FILE", "DIR"] + cmd[6:])
    phases = [Phase("import+compact", usage.cpu_s, usage.wall_s, usage.peak_rss_bytes, shown)]
    notes = [line.strip().replace(data_dir, "DIR") for line in out.splitlines()
             if line.startswith(("imported", "compaction"))]
    m = re.search(r"\(([\d.]+) CPU-s\)", out)
    if m:
        notes.append(f"of which import (parse + write 2 h blocks): {float(m.group(1)):.1f} CPU-s")
    return StoreResult(
        system="VigilOps",
        version=git_commit(),
        total_bytes=total,
        sample_bytes=inv.chunk_bytes,
        samples_in=ds.samples,
        samples_stored=inv.samples,
        units=inv.blocks,
        phases=phases,
        breakdown=inv.breakdown,
        notes=notes,
    )

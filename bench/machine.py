"""What a run was measured on: the machine, the software, the peers' versions, the date."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass

import numpy as np
import psutil

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROMETHEUS = "prometheus"
PROMTOOL = "promtool"
VICTORIA_METRICS = "victoria-metrics"


@dataclass
class RunInfo:
    date_utc: str
    cpu_model: str
    logical_cpus: int
    mem_total_gib: float
    kernel: str
    python: str
    numpy: str
    vigilops_commit: str
    prometheus: str
    promtool: str
    victoria_metrics: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _run(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (out.stdout + out.stderr).strip()


def git_commit() -> str:
    rev = _run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
    if not re.fullmatch(r"[0-9a-f]{4,40}", rev):
        return "unknown"
    dirty = _run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"])
    return rev + ("+dirty" if dirty else "")


def _dpkg_version(package: str) -> str:
    return _run(["dpkg-query", "-W", "-f", "${Version}", package])


def binary_version(binary: str, package: str) -> str:
    """``2.42.0+ds`` style version of a peer binary, or "not installed"."""
    if shutil.which(binary) is None:
        return "not installed"
    flag = "-version" if binary == VICTORIA_METRICS else "--version"
    text = _run([binary, flag])
    m = re.search(r"version[ :]+v?(\S+)", text) or re.search(r"v(\d+\.\d+\.\d+\S*)", text)
    if m:
        return m.group(1).rstrip(",")
    deb = _dpkg_version(package)
    return f"{deb} (Debian package)" if deb else "unknown"


def run_info() -> RunInfo:
    return RunInfo(
        date_utc=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        cpu_model=_cpu_model(),
        logical_cpus=os.cpu_count() or 0,
        mem_total_gib=round(psutil.virtual_memory().total / 2**30, 1),
        kernel=platform.release(),
        python=sys.version.split()[0],
        numpy=np.__version__,
        vigilops_commit=git_commit(),
        prometheus=binary_version(PROMETHEUS, "prometheus"),
        promtool=binary_version(PROMTOOL, "prometheus"),
        victoria_metrics=binary_version(VICTORIA_METRICS, "victoria-metrics"),
    )

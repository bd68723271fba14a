"""Head memory per active series after an hour of 15 s samples.

Measured at two scales: 107,000 series (200 node_exporter-like targets of 535 series, the
scale of the peers' published figures and of `bench scrape`) and 10,700 (the reference
dataset's 20 hosts), where the process's fixed costs weigh ten times more per series. The
marginal cost between the two (extra RSS per extra series) is reported beside them. Each
measurement runs in a fresh interpreter (`bench.memory_probe`) so nothing this
process allocated before muddies the figure: resident set after creating N series and
appending 240 scrapes, minus the resident set just before, divided by N. The probe pins
glibc's allocator thresholds the way `vigilops server` does at start, lets the background
sealer finish between scrapes (15 s always leave it the time) and hands freed heap pages
back once a simulated minute, as the server's maintenance loop does (the figure is the
server's); one run with glibc's defaults and no trimming is reported beside it. A run with tracemalloc
reports the Python-heap share and where it goes (tracemalloc's own overhead makes that
run's resident set meaningless, so it is not used).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field

from .machine import REPO


@dataclass
class MemoryResult:
    series: int
    scrapes: int
    step_s: float
    rss_delta_bytes: int
    rss_series_only_bytes: int  # after creating the series, before any sample
    traced_bytes: int  # tracemalloc's current size at the end (separate run)
    traced_series_only_bytes: int
    runs_bytes_per_series: list[float] = field(default_factory=list)  # every plain run
    trimmed_bytes_per_series: float | None = None  # after malloc_trim(0), median run
    malloc_tuned: bool = False  # glibc thresholds pinned as `vigilops server` does
    untuned_bytes_per_series: float | None = None  # one run with glibc's defaults
    checkpoints: list[dict[str, int]] = field(default_factory=list)
    #: Highest RSS over the hour, read after every scrape (the open log at its fullest,
    #: transients of seals and merges not yet handed back), minus the baseline.
    rss_peak_delta_bytes: int = 0
    traced_top: list[dict[str, object]] = field(default_factory=list)
    command: str = ""

    @property
    def bytes_per_series(self) -> float:
        return self.rss_delta_bytes / self.series

    @property
    def peak_bytes_per_series(self) -> float:
        return self.rss_peak_delta_bytes / self.series

    @property
    def traced_bytes_per_series(self) -> float:
        return self.traced_bytes / self.series

    @property
    def sample_bytes_per_sample(self) -> float:
        """What each sample adds once the series exist (RSS)."""
        n = self.series * self.scrapes
        return (self.rss_delta_bytes - self.rss_series_only_bytes) / n if n else 0.0

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["bytes_per_series"] = self.bytes_per_series
        d["peak_bytes_per_series"] = self.peak_bytes_per_series
        d["traced_bytes_per_series"] = self.traced_bytes_per_series
        d["sample_bytes_per_sample"] = self.sample_bytes_per_sample
        return d


def _probe(series: int, scrapes: int, step_s: float, workdir: str, traced: bool, tuned: bool = True) -> dict[str, object]:
    cmd = [
        sys.executable, "-m", "bench.memory_probe",
        "--series", str(series), "--scrapes", str(scrapes), "--step", f"{step_s:g}",
        "--workdir", workdir,
    ] + (["--tracemalloc"] if traced else []) + (["--tune-malloc"] if tuned else [])
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"memory probe failed ({out.returncode}):\n{out.stderr[-3000:]}")
    data: dict[str, object] = json.loads(out.stdout)
    return data


#: The headline scale first (200 targets x 535 series), then the reference dataset's.
DEFAULT_SCALES = (107_000, 10_700)


def run_memory_scales(
    workdir: str, scales: tuple[int, ...] = DEFAULT_SCALES, scrapes: int = 240, repeats: int = 3
) -> dict[str, object]:
    """The first scale's full result, with every scale's figures under "scales" and the
    marginal RSS per series between the largest and smallest scale."""
    results = [run_memory(workdir, n, scrapes, repeats=repeats, diagnose=(i == 0)) for i, n in enumerate(scales)]
    out = results[0].to_dict()
    out["scales"] = [
        {"series": r.series, "bytes_per_series": r.bytes_per_series, "peak_bytes_per_series": r.peak_bytes_per_series,
         "runs_bytes_per_series": r.runs_bytes_per_series}
        for r in results
    ]
    if len(results) > 1:
        big = max(results, key=lambda r: r.series)
        small = min(results, key=lambda r: r.series)
        if big.series > small.series:
            out["marginal_bytes_per_series"] = (big.rss_delta_bytes - small.rss_delta_bytes) / (big.series - small.series)
    return out


def run_memory(
    workdir: str, series: int = DEFAULT_SCALES[0], scrapes: int = 240, step_s: float = 15.0, repeats: int = 3,
    diagnose: bool = True,
) -> MemoryResult:
    """`repeats` plain runs (the median one is reported) and, with `diagnose`, one run with
    glibc's defaults and one traced run."""
    os.makedirs(workdir, exist_ok=True)
    runs = [_probe(series, scrapes, step_s, workdir, traced=False) for _ in range(max(1, repeats))]

    def delta(d: dict[str, object]) -> int:
        after, base = d["rss_after_samples_bytes"], d["rss_baseline_bytes"]
        assert isinstance(after, int) and isinstance(base, int)
        return after - base

    runs.sort(key=delta)
    plain = runs[len(runs) // 2]
    untuned = _probe(series, scrapes, step_s, workdir, traced=False, tuned=False) if diagnose else None
    traced = _probe(series, scrapes, step_s, workdir, traced=True) if diagnose else {}

    def num(d: dict[str, object], key: str) -> int:
        v = d[key]
        assert isinstance(v, int)
        return v

    base = num(plain, "rss_baseline_bytes")
    checkpoints = plain.get("checkpoints", [])
    assert isinstance(checkpoints, list)
    top = traced.get("traced_top", [])
    assert isinstance(top, list)
    trimmed = plain.get("rss_after_malloc_trim_bytes", -1)
    assert isinstance(trimmed, int)
    return MemoryResult(
        series=series,
        scrapes=scrapes,
        step_s=step_s,
        rss_delta_bytes=num(plain, "rss_after_samples_bytes") - base,
        rss_series_only_bytes=num(plain, "rss_after_series_bytes") - base,
        traced_bytes=num(traced, "traced_after_samples_bytes") if traced else 0,
        traced_series_only_bytes=num(traced, "traced_after_series_bytes") if traced else 0,
        runs_bytes_per_series=[delta(r) / series for r in runs],
        trimmed_bytes_per_series=(trimmed - base) / series if trimmed >= 0 else None,
        malloc_tuned=bool(plain.get("malloc_tuned")),
        untuned_bytes_per_series=delta(untuned) / series if untuned else None,
        checkpoints=checkpoints,
        rss_peak_delta_bytes=num(plain, "rss_peak_bytes") - base,
        traced_top=top,
        command=f"python -m bench.memory_probe --series {series} --scrapes {scrapes} --tune-malloc "
        "[--tracemalloc]",
    )

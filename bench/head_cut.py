"""Appends while the head is cut into a block: how long a commit can wait.

A head holds `--hours` of 15 s samples of `--series` series; the range before the last
whole 2 h boundary is cut (as the server's maintenance does every 2 h) while another
thread commits 100 samples every 5 ms. Reported: the cut's duration and the longest and
99th-percentile commit during it, with the cut as the head does it and, for comparison,
with the whole cut held under the head's lock (as before 2026-11-22).

    python -m bench.head_cut --series 10700 --hours 2.5

With `--memory`, the cut is measured as the database does it (the range written to a
block), each way in a fresh process: the resident set's rise above where it stood before
the cut, at its highest (the kernel's high-water mark, reset just before the cut) and the
CPU time, with the cut spooled in label order as the database does it and, for
comparison, with the cut range materialised and reordered at once (as before the night
of 2026-11-22).

    python -m bench.head_cut --memory --series 107000 --hours 3.5
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from vigilops.malloc_tuning import trim, tune_malloc
from vigilops.tsdb.block.writer import write_block
from vigilops.tsdb.db import DB, DBOptions
from vigilops.tsdb.head.head import Head
from vigilops.tsdb.model import Labels

from . import peak_rss

BLOCK_MS = 2 * 3_600_000
STEP_MS = 15_000


def _filled(
    path: str, series: int, hours: float, options: DBOptions | None = None
) -> tuple[DB, npt.NDArray[np.int64], int]:
    db = DB.open(path, options)
    labels = [Labels({"__name__": f"m{i % 500}", "instance": str(i // 500), "i": str(i)}) for i in range(series)]
    refs = db.appender().refs(labels)
    t0 = 1_800_000_000_000 - 1_800_000_000_000 % BLOCK_MS
    base = np.random.default_rng(0).random(series) * 100
    steps = int(hours * 3_600_000 / STEP_MS)
    for k in range(steps):
        app = db.appender()
        app.append(refs, t0 + k * STEP_MS, base + k)
        app.commit()
    db.head.drain_seals()
    return db, refs, t0 + steps * STEP_MS


def _measure(
    db: DB, refs: npt.NDArray[np.int64], t_next: int, cut: Callable[[Head, int], object]
) -> tuple[float, list[float]]:
    waits: list[float] = []
    stop = threading.Event()

    def commits() -> None:
        t = t_next
        while not stop.is_set():
            start = time.perf_counter()
            app = db.appender()
            app.append(refs[:100], t, np.ones(100))
            app.commit()
            waits.append(time.perf_counter() - start)
            t += STEP_MS
            time.sleep(0.005)

    thread = threading.Thread(target=commits)
    thread.start()
    time.sleep(0.3)
    start = time.perf_counter()
    cut(db.head, (t_next - 1) // BLOCK_MS * BLOCK_MS)
    took = time.perf_counter() - start
    time.sleep(0.3)
    stop.set()
    thread.join()
    return took, waits


def _cut_under_lock(head: Head, cut_t: int) -> object:
    with head.lock:
        return head.store.split_before(cut_t)


def _cut_materialised(db: DB, cut_t: int) -> None:
    """The cut range decoded whole, then reordered and written (the old way)."""
    head = db.head
    with head.lock:
        cols = head.store.split_before(cut_t)
        refs, _ = cols.series_bounds()
        labels = [head.registry.labels_of(r) for r in refs.tolist()]
    write_block(db.path, labels, cols, cut_t - BLOCK_MS, cut_t)  # type: ignore[arg-type]
    db._checkpoint_wal()  # as the database's cut does next


def _memory_run(series: int, hours: float, way: str) -> None:
    """In this (fresh) process: fill a database, cut it `way`, print one result line."""
    tune_malloc()  # as `vigilops server` does
    work = tempfile.mkdtemp(prefix="head-cut-mem-")
    try:
        # The database set up as `vigilops server` sets it up.
        db, _, t_next = _filled(work, series, hours, DBOptions(release_memory=trim))
        cut_t = (t_next - 1) // BLOCK_MS * BLOCK_MS
        trim()
        before = peak_rss.reset()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        if way == "spooled":
            with db._maintain_lock:
                db._cut_head()
        else:
            _cut_materialised(db, cut_t)
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        peak = peak_rss.highest()
        written = [d for d in os.listdir(work) if len(d) == 26]
        if len(written) != 1:
            raise RuntimeError(f"the cut wrote {len(written)} blocks, not one")
        db.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    print(f"{way} {before} {peak} {cpu:.3f}")


def _memory(series: int, hours: float) -> None:
    samples = series * int((hours * 3_600_000 // BLOCK_MS * BLOCK_MS) // STEP_MS)
    print(f"{series:,} series, {hours} h of 15 s samples; the cut takes {samples:,} samples")
    for way in ("spooled", "materialised"):
        out = subprocess.run(
            [sys.executable, "-m", "bench.head_cut", "--memory-run", way,
             "--series", str(series), "--hours", str(hours)],
            check=True, capture_output=True, text=True,
        ).stdout.split()
        before, peak, cpu = int(out[1]), int(out[2]), float(out[3])
        rise = (peak - before) * 1024
        print(f"{way}: resident set before the cut {before / 1024:,.0f} MiB, highest rise during it "
              f"{rise / 2**20:,.0f} MiB ({rise / samples:.1f} B per sample cut), CPU {cpu:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=10_700)
    parser.add_argument("--hours", type=float, default=2.5)
    parser.add_argument("--memory", action="store_true", help="measure the memory of a database cut")
    parser.add_argument("--memory-run", choices=("spooled", "materialised"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_run:
        _memory_run(args.series, args.hours, args.memory_run)
        return
    if args.memory:
        if args.hours <= 3:
            parser.error("--memory needs more than 3 h: the database cuts a 2 h range once it holds 3 h")
        _memory(args.series, args.hours)
        return
    for name, cut in (("cut (outside the lock)", Head.cut), ("whole cut under the lock", _cut_under_lock)):
        work = tempfile.mkdtemp(prefix="head-cut-")
        try:
            db, refs, t_next = _filled(work, args.series, args.hours)
            took, waits = _measure(db, refs, t_next, cut)
            db.close()
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(f"{name}: cut {took * 1000:.0f} ms; commits during it: longest {max(waits) * 1000:.1f} ms, "
              f"p99 {np.percentile(waits, 99) * 1000:.1f} ms ({len(waits)} commits)")


if __name__ == "__main__":
    main()

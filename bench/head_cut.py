"""Appends while the head is cut into a block: how long a commit can wait.

A head holds `--hours` of 15 s samples of `--series` series; the range before the last
whole 2 h boundary is cut (as the server's maintenance does every 2 h) while another
thread commits 100 samples every 5 ms. Reported: the cut's duration and the longest and
99th-percentile commit during it, with the cut as the head does it and, for comparison,
with the whole cut held under the head's lock (as before 2026-11-22).

    python -m bench.head_cut --series 10700 --hours 2.5
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from vigilops.tsdb.db import DB
from vigilops.tsdb.head.head import Head
from vigilops.tsdb.model import Labels

BLOCK_MS = 2 * 3_600_000
STEP_MS = 15_000


def _filled(path: str, series: int, hours: float) -> tuple[DB, npt.NDArray[np.int64], int]:
    db = DB.open(path)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=10_700)
    parser.add_argument("--hours", type=float, default=2.5)
    args = parser.parse_args()
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

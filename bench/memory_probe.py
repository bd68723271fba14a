"""Child process of `bench.memory`: fill a fresh head, print what it cost as JSON.

Run as ``python -m bench.memory_probe --series N --scrapes K --workdir DIR [--tracemalloc]``.
The values are generated before the baseline is taken and kept alive to the end, so the
difference holds only what the database keeps: label sets, series registry, postings,
samples, WAL buffers. The label sets are built after the baseline (the head keeps them,
as it keeps a scrape's), and this process drops its own references to them.

The appends are paced like a server's: after each, the background sealer is given the
time to finish (15 s between scrapes always do), and with `--tune-malloc` freed heap pages
are handed back once a simulated minute, as `vigilops server` does.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import shutil
import sys
import tempfile
import time
import tracemalloc

import psutil

from vigilops.tsdb.db import DB, DBOptions

from .synth import Fleet


#: `vigilops server` calls malloc_trim(0) this often (vigilops/server.py, maintenance loop).
SERVER_TRIM_INTERVAL_S = 60.0


def _rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def _trim() -> bool:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True


def _rss_after_trim() -> int:
    """Resident set after asking glibc to hand freed heap pages back (diagnostic: how
    much of the figure is freed-but-kept allocator memory). -1 without glibc."""
    return _rss() if _trim() else -1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.memory_probe")
    ap.add_argument("--series", type=int, required=True)
    ap.add_argument("--scrapes", type=int, required=True)
    ap.add_argument("--step", type=float, default=15.0)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--tracemalloc", action="store_true")
    ap.add_argument("--tune-malloc", action="store_true",
                    help="pin glibc's thresholds first, as `vigilops server` does at start")
    args = ap.parse_args(argv)
    tuned = False
    if args.tune_malloc:
        try:
            from vigilops.malloc_tuning import tune_malloc
        except ImportError:
            pass
        else:
            tuned = tune_malloc()

    fleet = Fleet(args.series, step_s=args.step)
    ts = fleet.timestamps(args.scrapes).tolist()
    values = fleet.advance(args.scrapes)
    rows = [values[i] for i in range(args.scrapes)]
    os.makedirs(args.workdir, exist_ok=True)
    path = tempfile.mkdtemp(prefix="memory-", dir=args.workdir)
    try:
        # Set up as `vigilops server` sets it up: freed heap handed back after seals.
        db = DB.open(path, DBOptions(release_memory=_trim) if tuned else None)
        try:
            # The server compiles (or loads) its compiled loops at start: start-up cost,
            # not per-series memory, so it happens before the baseline.
            from vigilops.tsdb.compiled import warm_up

            warm_up()
            if tuned:  # the periodic trims below must not return memory freed before this
                _trim()
            rss0 = _rss()
            if args.tracemalloc:
                tracemalloc.start(8)
            labels = fleet.label_sets()
            app = db.appender()
            refs = app.refs(labels)
            app.commit()
            del labels, app
            rss1 = _rss()
            traced1 = tracemalloc.get_traced_memory()[0] if args.tracemalloc else 0
            appended = 0
            peak = rss1
            proc = psutil.Process()
            checkpoints = []
            trim_every = max(1, round(SERVER_TRIM_INTERVAL_S / args.step))
            for k, (t, row) in enumerate(zip(ts, rows), 1):
                a = db.appender()
                a.append(refs, t, row)
                appended += a.commit().appended
                # A server's 15 s between scrapes leave the background sealer time to turn
                # a detached log into a frame; back-to-back appends would outrun it and
                # measure a backlog no server has. Wait for it, as the interval would.
                while db.head.store.pending or not db.head.wait_sealer_idle(1.0):
                    time.sleep(0.001)
                # ... and `vigilops server` hands freed heap pages back once a minute.
                # The highest point of the hour (the open log at its fullest just before a
                # seal, freed pages not yet handed back): read after every scrape.
                peak = max(peak, int(proc.memory_info().rss))
                if tuned and k % trim_every == 0:
                    _trim()
                if k % max(1, args.scrapes // 4) == 0 and k != args.scrapes:
                    checkpoints.append({"scrapes": k, "rss_delta_bytes": _rss() - rss0})
            rss2 = _rss()
            peak = max(peak, rss2)
            rss3 = _rss_after_trim()
            result: dict[str, object] = {
                "series": args.series,
                "scrapes": args.scrapes,
                "samples_appended": appended,
                "head_series": db.head.num_series(),
                "malloc_tuned": tuned,
                "rss_baseline_bytes": rss0,
                "rss_after_series_bytes": rss1,
                "rss_after_samples_bytes": rss2,
                "rss_after_malloc_trim_bytes": rss3,
                "rss_peak_bytes": peak,
                "checkpoints": checkpoints,
            }
            if args.tracemalloc:
                traced2 = tracemalloc.get_traced_memory()[0]
                snap = tracemalloc.take_snapshot()
                tracemalloc.stop()
                top = snap.statistics("lineno")[:12]
                result["traced_after_series_bytes"] = traced1
                result["traced_after_samples_bytes"] = traced2
                result["traced_top"] = [
                    {
                        "where": f"{os.path.relpath(s.traceback[0].filename)}:{s.traceback[0].lineno}",
                        "bytes": s.size,
                        "blocks": s.count,
                    }
                    for s in top
                ]
        finally:
            db.close()
    finally:
        shutil.rmtree(path, ignore_errors=True)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where VigilOps's scrape path spends its CPU: the scrape manager in process, under cProfile.

Runs what ``vigilops server`` runs for scraping — `ScrapeManager` over a real `DB` in a
scratch directory, on uvloop when it is installed — against ``workloads/loadserver.py``
for a fixed time, with cProfile on, and prints the functions with the most own time and
the most cumulative time. CPU of this process is reported too (the profiler's overhead
inflates it; compare shares, not absolutes, with `bench scrape`).

    python -m bench.scrape_profile --targets 50 --seconds 30 [--sort tottime] [--top 30]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import shutil
import tempfile
import time

from .scrape import LoadServer, fmt_duration


async def _scrape_for(data_dir: str, config_text: str, seconds: float, prof: cProfile.Profile) -> dict[str, float]:
    from vigilops.scrape.config import parse_config
    from vigilops.scrape.discovery.metrics import SDMetrics
    from vigilops.scrape.manager import ScrapeManager
    from vigilops.scrape.metrics import ScrapeMetrics
    from vigilops.tsdb.db import DB

    db = DB.open(data_dir)
    manager = ScrapeManager(db, ScrapeMetrics(None), 0, SDMetrics(None))
    try:
        await manager.apply_config(parse_config(config_text, "<profile>"))
        await asyncio.sleep(3)  # first scrapes create the series: not the steady state
        before = db.metrics.samples_appended._value.get()
        c0, t0 = time.process_time(), time.perf_counter()
        prof.enable()
        await asyncio.sleep(seconds)
        prof.disable()
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        samples = db.metrics.samples_appended._value.get() - before
    finally:
        await manager.stop()
        db.close()
    return {"cpu_s": cpu, "wall_s": wall, "samples": samples}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.scrape_profile", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, default=50)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--sort", default="tottime", choices=("tottime", "cumulative"))
    ap.add_argument("--top", type=int, default=35)
    ap.add_argument("--out", help="also write the raw profile (pstats) here")
    args = ap.parse_args(argv)
    scratch = tempfile.mkdtemp(prefix="vigilops-scrape-profile-")
    try:
        with LoadServer(args.targets, args.interval, os.path.join(scratch, "loadserver.log"),
                        max_seconds=args.seconds + 600, run_s=args.seconds + 10) as load:
            load.wait_ready()
            targets = "".join(f"\n          - '{a}'" for a in load.addresses())
            config = (f"global:\n  scrape_interval: {fmt_duration(args.interval)}\n"
                      f"  scrape_timeout: {fmt_duration(args.interval)}\n"
                      f"scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets:{targets}\n")
            prof = cProfile.Profile()
            run = asyncio.run
            try:
                import uvloop

                run = uvloop.run
            except ImportError:
                pass
            r = run(_scrape_for(os.path.join(scratch, "data"), config, args.seconds, prof))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    per_m = r["cpu_s"] / (r["samples"] / 1e6) if r["samples"] else float("nan")
    print(f"{args.targets} targets every {args.interval:g} s for {r['wall_s']:.1f} s: {r['samples']:,.0f} samples, "
          f"{r['cpu_s']:.2f} CPU-s ({per_m:.2f} CPU-s per million samples, profiler overhead included)")
    if args.out:
        prof.dump_stats(args.out)
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    st.sort_stats(args.sort).print_stats(args.top)
    print(buf.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

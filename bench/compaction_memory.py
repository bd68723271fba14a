"""Memory and CPU of the server's block compaction.

The reference dataset is imported into 2 h blocks (`vigilops tsdb import openmetrics
--max-block-duration 2h`, no `--compact`), as a server holds them after a day of head
cuts; then a fresh process opens the database set up as `vigilops server` sets it up and
runs the compaction its maintenance would run (2 h blocks into 6 h, 6 h into 24 h).
Reported: the rise of the resident set above where it stood before the compaction, at its
highest (the kernel's high-water mark, reset just before), and the CPU time.

    python -m bench.compaction_memory [--dataset FILE]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile

from . import peak_rss
from .dataset import ensure_dataset
from .disk import vigilops_binary


def _compact_here(path: str) -> None:
    """In this (fresh) process: compact the blocks at `path`, print one result line."""
    from vigilops.malloc_tuning import trim, tune_malloc
    from vigilops.tsdb.db import DB, DBOptions

    tune_malloc()
    db = DB.open(path, DBOptions(retention_ms=0, release_memory=trim))
    before_blocks = len(db.block_list())
    trim()
    before = peak_rss.reset()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    with db._maintain_lock:
        db._compact_blocks()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    peak = peak_rss.highest()
    after_blocks = len(db.block_list())
    db.close()
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    print(f"{before_blocks} {after_blocks} {before} {peak} {cpu:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", help="OpenMetrics file (default: the reference dataset)")
    parser.add_argument("--compact-here", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compact_here:
        _compact_here(args.compact_here)
        return
    ds = ensure_dataset(args.dataset)
    work = tempfile.mkdtemp(prefix="compaction-memory-")
    try:
        data = os.path.join(work, "data")
        subprocess.run(
            [vigilops_binary(), "tsdb", "import", "openmetrics", ds.path, data,
             "--max-block-duration", "2h"],
            check=True, stdout=subprocess.DEVNULL,
        )
        out = subprocess.run(
            [sys.executable, "-m", "bench.compaction_memory", "--compact-here", data],
            check=True, capture_output=True, text=True,
        ).stdout.split()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    blocks_before, blocks_after = int(out[0]), int(out[1])
    before, peak, cpu = int(out[2]), int(out[3]), float(out[4])
    rise = (peak - before) * 1024
    print(f"{ds.path}: {ds.samples:,} samples of {ds.series:,} series; {blocks_before} blocks "
          f"compacted into {blocks_after}: resident set before {before / 1024:,.0f} MiB, highest "
          f"rise during it {rise / 2**20:,.0f} MiB ({rise / ds.samples:.1f} B per sample), "
          f"CPU {cpu:.2f} s")


if __name__ == "__main__":
    main()

"""Read-back speed: samples per second decoded through the Querier.

Every series is selected (``{__name__=~".+"}``) over the whole range and its timestamp
and value arrays are touched, the way the PromQL engine consumes a selection. From
blocks (files already in the page cache: the database verifies every frame when it
opens) and from the head. The best and the median of a few repetitions are reported.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field

from vigilops.tsdb.db import DB, DBOptions
from vigilops.tsdb.model import Matcher, MatchType
from vigilops.tsdb.wal.wal import SyncPolicy

from .synth import Fleet

HOUR_MS = 3_600_000
BLOCK_MS = 2 * HOUR_MS


@dataclass
class ReadResult:
    source: str  # "blocks" or "head"
    series: int
    samples: int
    cpu_s: list[float] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)
    command: str = ""

    @property
    def samples_per_cpu_s(self) -> float:
        """Median over the repetitions."""
        return self.samples / statistics.median(self.cpu_s) if self.cpu_s else 0.0

    @property
    def best_samples_per_cpu_s(self) -> float:
        return self.samples / min(self.cpu_s) if self.cpu_s else 0.0

    @property
    def samples_per_wall_s(self) -> float:
        return self.samples / statistics.median(self.wall_s) if self.wall_s else 0.0

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["samples_per_cpu_s"] = self.samples_per_cpu_s
        d["best_samples_per_cpu_s"] = self.best_samples_per_cpu_s
        d["samples_per_wall_s"] = self.samples_per_wall_s
        return d


ALL_SERIES = [Matcher(MatchType.REGEX, "__name__", ".+")]


def read_all(db: DB, mint: int, maxt: int) -> tuple[int, int]:
    """(series, samples) of everything in [mint, maxt], through the Querier."""
    series = samples = 0
    checksum = 0.0
    with db.querier(mint, maxt) as q:
        for s in q.select(ALL_SERIES):
            series += 1
            samples += len(s.timestamps)
            # Touch both columns, as an evaluator would (lazy decoders must pay here).
            checksum += float(s.values[-1]) if len(s.values) else 0.0
            checksum += float(s.timestamps[0]) if len(s.timestamps) else 0.0
    return series, samples


def time_reads(db: DB, mint: int, maxt: int, source: str, repeats: int, command: str) -> ReadResult:
    result = ReadResult(source, 0, 0, command=command)
    for _ in range(max(1, repeats)):
        c0, w0 = time.process_time(), time.perf_counter()
        series, samples = read_all(db, mint, maxt)
        result.wall_s.append(time.perf_counter() - w0)
        result.cpu_s.append(time.process_time() - c0)
        result.series, result.samples = series, samples
    return result


def read_data_dir(data_dir: str, repeats: int = 3) -> ReadResult:
    """Read every block of an existing data directory (e.g. the imported dataset)."""
    db = DB.open(data_dir, read_only=True)
    try:
        blocks = db.block_list()
        if not blocks:
            raise RuntimeError(f"{data_dir} holds no blocks")
        mint = min(b.mint for b in blocks)
        maxt = max(b.maxt for b in blocks) - 1
        return time_reads(db, mint, maxt, "blocks", repeats,
                          "the imported dataset: DB.open(DIR, read_only=True), querier over all blocks")
    finally:
        db.close()


def _fill(db: DB, fleet: Fleet, scrapes: int) -> None:
    app = db.appender()
    refs = app.refs(fleet.label_sets())
    app.commit()
    done = 0
    while done < scrapes:
        k = min(240, scrapes - done)
        ts = fleet.timestamps(k).tolist()
        block = fleet.advance(k)
        for i, t in enumerate(ts):
            a = db.appender()
            a.append(refs, t, block[i])
            a.commit()
        done += k


START_MS = 1_795_222_800_000 // BLOCK_MS * BLOCK_MS
STEP_S = 15.0


def read_head(workdir: str, series: int = 10_700, hours: float = 2.0, repeats: int = 3) -> ReadResult:
    """`hours` of 15 s scrapes of `series` series appended to a fresh database, read
    back from the head."""
    os.makedirs(workdir, exist_ok=True)
    path = tempfile.mkdtemp(prefix="read-head-", dir=workdir)
    try:
        scrapes = int(hours * 3600 // STEP_S)
        fleet = Fleet(series, step_s=STEP_S, start_ms=START_MS)
        db = DB.open(path, DBOptions(wal_sync=SyncPolicy.NEVER))
        try:
            _fill(db, fleet, scrapes)
            return time_reads(db, START_MS, fleet.t_ms - 1, "head", repeats,
                              f"{series:,} synthetic series x {scrapes} scrapes appended to a fresh head")
        finally:
            db.close()
    finally:
        shutil.rmtree(path, ignore_errors=True)


def read_synthetic_blocks(workdir: str, series: int = 10_700, hours: float = 6.0, repeats: int = 3) -> ReadResult:
    """`hours` of scrapes cut into 2 h blocks by ``flush_head``, merged by ``maintain``,
    then read from a read-only reopen (so the head is out of the way)."""
    os.makedirs(workdir, exist_ok=True)
    path = tempfile.mkdtemp(prefix="read-blocks-", dir=workdir)
    try:
        scrapes = int(hours * 3600 // STEP_S)
        fleet = Fleet(series, step_s=STEP_S, start_ms=START_MS, seed=2)
        db = DB.open(path, DBOptions(wal_sync=SyncPolicy.NEVER))
        try:
            # One scrape past the last full range, so flush_head cuts every full range.
            _fill(db, fleet, scrapes + 1)
            db.flush_head()
            db.maintain()
        finally:
            db.close()
        db = DB.open(path, read_only=True)
        try:
            end = START_MS + scrapes * int(STEP_S * 1000) - 1
            return time_reads(db, START_MS, end, "blocks", repeats,
                              f"{series:,} synthetic series x {scrapes} scrapes, flush_head + maintain, "
                              "reopened read-only")
        finally:
            db.close()
    finally:
        shutil.rmtree(path, ignore_errors=True)

"""Batch append throughput into the head, in process, on one thread.

What a scrape loop does after parsing: one ``refs`` call creates the series, then every
scrape is one appender with one ``append(refs, t, values)`` and a ``commit`` that writes
the WAL. Values come from `bench.synth` and are generated outside the timed region, a
slice of scrapes at a time. CPU is this process's (all threads), so work the engine hands
to helper threads counts too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass

from vigilops.tsdb.db import DB, DBOptions
from vigilops.tsdb.wal.wal import SyncPolicy

from .disk import dir_bytes
from .synth import Fleet

SLICE_STEPS = 120


@dataclass
class IngestResult:
    wal_sync: str
    series: int
    scrapes: int
    step_s: float
    samples: int
    appended: int
    rejected: int
    create_series_cpu_s: float
    cpu_s: float
    wall_s: float
    wal_bytes: int

    @property
    def samples_per_cpu_s(self) -> float:
        return self.appended / self.cpu_s if self.cpu_s else 0.0

    @property
    def samples_per_wall_s(self) -> float:
        return self.appended / self.wall_s if self.wall_s else 0.0

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["samples_per_cpu_s"] = self.samples_per_cpu_s
        d["samples_per_wall_s"] = self.samples_per_wall_s
        return d


def run_ingest(
    workdir: str,
    series: int = 10_000,
    hours: float = 2.0,
    step_s: float = 15.0,
    wal_sync: SyncPolicy = SyncPolicy.COMMIT,
    seed: int = 1,
) -> IngestResult:
    """Append `hours` of scrapes of `series` series into a fresh database; time the appends."""
    scrapes = int(hours * 3600 // step_s)
    fleet = Fleet(series, step_s=step_s, seed=seed)
    os.makedirs(workdir, exist_ok=True)
    path = tempfile.mkdtemp(prefix="ingest-", dir=workdir)
    try:
        db = DB.open(path, DBOptions(wal_sync=wal_sync))
        try:
            labels = fleet.label_sets()
            c0 = time.process_time()
            app = db.appender()
            refs = app.refs(labels)
            app.commit()
            create_cpu = time.process_time() - c0
            del labels
            cpu = wall = 0.0
            appended = rejected = 0
            done = 0
            while done < scrapes:
                k = min(SLICE_STEPS, scrapes - done)
                ts = fleet.timestamps(k).tolist()
                block = fleet.advance(k)
                rows = [block[i] for i in range(k)]
                c0, w0 = time.process_time(), time.perf_counter()
                for t, row in zip(ts, rows):
                    a = db.appender()
                    a.append(refs, t, row)
                    res = a.commit()
                    appended += res.appended
                    rejected += res.rejected_total
                wall += time.perf_counter() - w0
                cpu += time.process_time() - c0
                done += k
            wal_bytes = dir_bytes(os.path.join(path, "wal"))
        finally:
            db.close()
    finally:
        shutil.rmtree(path, ignore_errors=True)
    return IngestResult(
        wal_sync=wal_sync.value,
        series=series,
        scrapes=scrapes,
        step_s=step_s,
        samples=series * scrapes,
        appended=appended,
        rejected=rejected,
        create_series_cpu_s=create_cpu,
        cpu_s=cpu,
        wall_s=wall,
        wal_bytes=wal_bytes,
    )

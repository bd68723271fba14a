"""Range selections skip the scan for staleness markers only where the storage knows there
is none: block frames whose series are all stored in a decimal mode (which cannot hold a
NaN). A frame holding a marker still has it dropped from the range vector."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigilops.query import values
from vigilops.query.engine import Engine, EngineOptions
from vigilops.tsdb.db import DB, DBOptions
from vigilops.tsdb.model import STALE_NAN, Matcher, MatchType

from tests.query.enginedata import load

HOUR = 3_600_000
STEP = 15_000
#: From 10 minutes into the 2-hour block, 110 steps of this reach past its last sample
#: (1:59:45): the query reads the block's frames whole.
WHOLE_STEP = 59_999


def _db(tmp_path: Path) -> DB:
    db = DB.open(str(tmp_path), DBOptions(block_range_ms=2 * HOUR))
    n = 4 * 240  # 4 h at 15 s
    counter = [(k * STEP, float(k)) for k in range(n)]
    # The same counter with a staleness marker every 10th sample (a target that vanished
    # and came back), so its frames store the series' values as float bits.
    stale = [(t, STALE_NAN if k % 10 == 5 else v) for k, (t, v) in enumerate(counter)]
    load(db, {'c{kind="decimal"}': counter, 'c{kind="stale"}': stale})
    db.maintain()  # the first hours into a block: reads decode its frames
    assert db.blocks
    return db


def test_the_querier_says_which_selections_hold_no_staleness_marker(tmp_path: Path) -> None:
    db = _db(tmp_path)
    try:
        block = db.blocks[0]
        with db.querier(block.mint, block.maxt - 1) as q:  # whole frames
            for kind, expected in (("decimal", True), ("stale", False)):
                _, cols = q.select_columns([Matcher(MatchType.EQUAL, "kind", kind)])
                assert len(cols) == (block.maxt - block.mint) // STEP
                assert cols.stale_free is expected
    finally:
        db.close()


def test_markers_in_block_frames_are_still_dropped_from_range_vectors(tmp_path: Path) -> None:
    db = _db(tmp_path)
    try:
        block = db.blocks[0]
        start, end = block.mint + 10 * 60_000, block.maxt - 1
        engine = Engine(db, EngineOptions())
        value = engine.range_query("count_over_time(c[10m])", start, end, WHOLE_STEP).value
        got = {ls.get("kind"): (ts.tolist(), vs.tolist()) for ls, ts, vs in zip(value.labels, value.timestamps, value.values)}
        times = list(range(start, end + 1, WHOLE_STEP))
        samples = range(block.mint, block.maxt, STEP)
        # Prometheus 2.42's windows [t - 10m, t]; the stale series' every 10th sample a marker.
        decimal = [float(sum(t - 600_000 <= s <= t for s in samples)) for t in times]
        stale = [float(sum(t - 600_000 <= s <= t and (s // STEP) % 10 != 5 for s in samples)) for t in times]
        assert got == {"decimal": (times, decimal), "stale": (times, stale)}
        assert decimal != stale
    finally:
        db.close()


def test_only_selections_that_may_hold_markers_are_scanned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scanned: list[int] = []
    real = values.has_stale
    monkeypatch.setattr(values, "has_stale", lambda vs: scanned.append(len(vs)) or real(vs))
    db = _db(tmp_path)
    try:
        block = db.blocks[0]
        engine = Engine(db, EngineOptions())
        for kind, scans in (("decimal", []), ("stale", [(block.maxt - block.mint) // STEP])):
            scanned.clear()
            engine.range_query(f'rate(c{{kind="{kind}"}}[10m])', block.mint + 600_000, block.maxt - 1, WHOLE_STEP)
            assert scanned == scans
    finally:
        db.close()

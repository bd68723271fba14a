"""`warm_up` compiles every loop for the argument types real reads and queries use."""

from __future__ import annotations

from pathlib import Path

from vigilops.query.api.handlers_query import encode_result
from vigilops.query.engine import Engine, EngineOptions
from vigilops.tsdb import compiled
from vigilops.tsdb.db import DB, DBOptions

from tests.query.enginedata import load

HOUR = 3_600_000


def test_queries_after_warm_up_compile_nothing_new(tmp_path: Path) -> None:
    assert compiled.warm_up() >= 6
    before = {id(k): len(k.signatures) for k, _ in compiled._registered}
    db = DB.open(str(tmp_path), DBOptions(block_range_ms=2 * HOUR))
    try:
        points = [(t * 15_000, float(t % 50)) for t in range(4 * 240)]  # 4 h, a reset per 50
        load(db, {'c{i="1"}': points, 'c{i="2"}': points[::2], 'g{i="1"}': points})
        db.maintain()  # cut the old part of the head into a block: reads decode frames
        assert db.blocks
        engine = Engine(db, EngineOptions())
        for expr in ("rate(c[5m])", "sum by (i) (increase(c[10m]))", "g / 2"):
            encode_result(engine.range_query(expr, 0, 4 * HOUR, 60_000).value)
        encode_result(engine.instant_query("rate(c[5m])", 3 * HOUR).value)
    finally:
        db.close()
    after = {id(k): len(k.signatures) for k, _ in compiled._registered}
    assert after == before



def test_imports_after_warm_up_compile_nothing_new(tmp_path: Path) -> None:
    """Backfill reads spilled timestamps as int32 offsets, or as int64 when a compacted
    block gathers several windows: both variants are warmed."""
    import io

    from vigilops.tsdb.importer import import_openmetrics

    compiled.warm_up()
    before = {id(k): len(k.signatures) for k, _ in compiled._registered}
    lines = [f'm{{s="{s}"}} {t % 97} {1_700_000_000 + 15 * t}' for t in range(2000) for s in range(5)]
    text = ("\n".join([*lines, "# EOF"]) + "\n").encode()
    import_openmetrics(io.BytesIO(text), str(tmp_path / "d"), 2 * HOUR)
    import_openmetrics(io.BytesIO(text), str(tmp_path / "c"), 2 * HOUR,
                       compaction_ranges_ms=(2 * HOUR, 6 * HOUR, 24 * HOUR))
    db = DB.open(str(tmp_path / "d"))
    try:
        db.maintain()
    finally:
        db.close()
    after = {id(k): len(k.signatures) for k, _ in compiled._registered}
    assert after == before

"""The database as a whole: WAL replay, head cuts, compaction, retention, deletes, corruption."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigilops.tsdb.db import DB, DBOptions
from vigilops.tsdb.errors import TSDBError
from vigilops.tsdb.filenames import BLOCK_CHUNKS, BLOCK_META, QUARANTINE_DIR
from vigilops.tsdb.model import Labels, Matcher, MatchType

from .conftest import HOUR, T0, bits, read_all, series_labels

STEP = 60_000


def fill(db: DB, labels: list[Labels], start: int, end: int, step: int = STEP) -> dict[Labels, list[float]]:
    """Append one sample per series every `step` in [start, end); return what was written."""
    app = db.appender()
    refs = app.refs(labels)
    app.commit()
    written: dict[Labels, list[float]] = {ls: [] for ls in labels}
    for t in range(start, end, step):
        vals = (np.arange(len(labels)) * 1000 + (t - T0) / step).astype(np.float64)
        a = db.appender()
        a.append(refs, t, vals)
        a.commit()
        for ls, v in zip(labels, vals.tolist()):
            written[ls].append(v)
    return written


def assert_same(db: DB, written: dict[Labels, list[float]], start: int, step: int = STEP) -> None:
    got = read_all(db)
    assert set(got) == set(written)
    for ls, vals in written.items():
        ts, vs = got[ls]
        assert ts.tolist() == [start + k * step for k in range(len(vals))]
        assert bits(vs) == bits(np.array(vals))


def test_reopen_replays_wal(db_path: str) -> None:
    labels = series_labels(20)
    with DB.open(db_path) as db:
        written = fill(db, labels, T0, T0 + HOUR)
    with DB.open(db_path) as db:
        assert_same(db, written, T0)
        # Appends continue after replay, with the same refs.
        a = db.appender()
        refs = a.refs(labels)
        r = a.append(refs, T0 + HOUR, np.zeros(20))
        assert r.appended == 20


def test_head_cut_to_blocks_and_reopen(db_path: str) -> None:
    labels = series_labels(30)
    with DB.open(db_path) as db:
        written = fill(db, labels, T0, T0 + 5 * HOUR)
        db.maintain()
        blocks = db.block_list()
        assert [(b.mint, b.maxt) for b in blocks] == [(T0, T0 + 2 * HOUR)]
        assert db.head.mint >= T0 + 2 * HOUR
        assert_same(db, written, T0)
        # The WAL was checkpointed behind the cut.
        wal_entries = os.listdir(os.path.join(db_path, "wal"))
        assert any(e.startswith("checkpoint.") for e in wal_entries)
    with DB.open(db_path) as db:
        assert_same(db, written, T0)
        db.flush_head()
        assert [(b.mint, b.maxt) for b in db.block_list()] == [
            (T0 + k * 2 * HOUR, T0 + (k + 1) * 2 * HOUR) for k in range(2)
        ]
        assert_same(db, written, T0)


def test_compaction_merges_complete_windows(db_path: str) -> None:
    labels = series_labels(10)
    with DB.open(db_path) as db:
        written = fill(db, labels, T0, T0 + 8 * HOUR, step=5 * STEP)
        db.flush_head()
        assert len(db.block_list()) == 3  # [0,2) [2,4) [4,6); [6,8) stays in the head
        db.maintain()
        blocks = db.block_list()
        assert [(b.mint, b.maxt) for b in blocks] == [(T0, T0 + 6 * HOUR)]
        assert blocks[0].meta.level == 2 and len(blocks[0].meta.sources) == 3
        assert_same(db, written, T0, step=5 * STEP)
    with DB.open(db_path) as db:
        assert_same(db, written, T0, step=5 * STEP)


def test_overlapping_blocks_are_merged(db_path: str) -> None:
    from vigilops.tsdb.importer import write_blocks
    from vigilops.tsdb.columns import SampleColumns

    labels = series_labels(2)
    with DB.open(db_path) as db:
        written = fill(db, labels, T0, T0 + 4 * HOUR + 1, step=10 * STEP)
        db.flush_head()
    # Backfill one extra series into the same range.
    extra = Labels({"__name__": "backfilled"})
    cols = SampleColumns(np.zeros(3, dtype=np.int64), np.array([T0, T0 + 1, T0 + 2]), np.array([1.0, 2.0, 3.0]))
    write_blocks(db_path, [extra], cols)
    with DB.open(db_path) as db:
        assert len(db.block_list()) == 3
        db.maintain()
        assert [(b.mint, b.maxt) for b in db.block_list()] == [(T0, T0 + 2 * HOUR), (T0 + 2 * HOUR, T0 + 4 * HOUR)]
        got = read_all(db)
        assert got[extra][1].tolist() == [1.0, 2.0, 3.0]
        for ls, vals in written.items():
            assert got[ls][1].tolist() == vals


def test_retention_by_time(db_path: str) -> None:
    labels = series_labels(3)
    with DB.open(db_path, DBOptions(retention_ms=5 * HOUR, compaction_ranges_ms=(2 * HOUR,))) as db:
        fill(db, labels, T0, T0 + 10 * HOUR + 1, step=10 * STEP)
        db.flush_head()
        assert len(db.block_list()) == 5
        db.maintain()
        # The newest sample is at ~T0+10h; blocks ending at or before T0+5h are gone.
        assert [b.mint for b in db.block_list()] == [T0 + 4 * HOUR, T0 + 6 * HOUR, T0 + 8 * HOUR]
        assert min(ts[0] for ts, _ in read_all(db).values()) == T0 + 4 * HOUR


def test_retention_by_size(db_path: str) -> None:
    labels = series_labels(50)
    opts = DBOptions(retention_ms=0, compaction_ranges_ms=(2 * HOUR,))
    with DB.open(db_path, opts) as db:
        fill(db, labels, T0, T0 + 8 * HOUR + 1, step=STEP)
        db.flush_head()
        sizes = [b.size_bytes() for b in db.block_list()]
        assert len(sizes) == 4
        assert db.wal is not None
        # Room for the WAL and the two newest blocks, not for a third.
        db.options.retention_bytes = db.wal.size_bytes() + sum(sizes[-2:]) + min(sizes) // 2
        db.maintain()
        assert [b.mint for b in db.block_list()] == [T0 + 4 * HOUR, T0 + 6 * HOUR]
        assert db.metrics.retention_deletions.labels("size")._value.get() == 2


def test_delete_with_tombstones_in_head_and_blocks(db_path: str) -> None:
    labels = series_labels(6)
    victim = [Matcher(MatchType.EQUAL, "instance", "host-1")]
    with DB.open(db_path) as db:
        written = fill(db, labels, T0, T0 + 5 * HOUR, step=10 * STEP)
        db.maintain()  # [T0, T0+2h) in a block, the rest in the head
        lo, hi = T0 + HOUR, T0 + 3 * HOUR
        db.delete(victim, lo, hi)
        expect = {}
        for ls, vals in written.items():
            ts = [T0 + k * 10 * STEP for k in range(len(vals))]
            if ls.get("instance") == "host-1":
                pairs = [(t, v) for t, v in zip(ts, vals) if not lo <= t <= hi]
            else:
                pairs = list(zip(ts, vals))
            expect[ls] = pairs

        def check(d: DB) -> None:
            got = read_all(d)
            for ls, pairs in expect.items():
                assert list(zip(got[ls][0].tolist(), got[ls][1].tolist())) == pairs

        check(db)
    with DB.open(db_path) as db:  # tombstones survive a restart (block file + WAL)
        check(db)
        db.flush_head()
        db.maintain()
        check(db)


def test_corrupt_block_is_quarantined(db_path: str) -> None:
    labels = series_labels(10)
    with DB.open(db_path) as db:
        fill(db, labels, T0, T0 + 7 * HOUR, step=STEP)
        db.flush_head()
        blocks = db.block_list()
        assert len(blocks) == 3
        bad = blocks[1].path
    chunks = os.path.join(bad, BLOCK_CHUNKS)
    with open(chunks, "r+b") as f:
        f.seek(os.path.getsize(chunks) // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0x40]))
    with DB.open(db_path) as db:
        assert len(db.block_list()) == 2
        assert db.metrics.corrupted_blocks._value.get() == 1
        assert os.path.isdir(os.path.join(db_path, QUARANTINE_DIR, os.path.basename(bad)))
        got = read_all(db)
        assert len(got) == 10  # the other blocks and the head still answer


def test_unreadable_meta_is_quarantined(db_path: str) -> None:
    with DB.open(db_path) as db:
        fill(db, series_labels(2), T0, T0 + 3 * HOUR)
        db.flush_head()
        path = db.block_list()[0].path
    with open(os.path.join(path, BLOCK_META), "w") as f:
        f.write("{not json")
    with DB.open(db_path) as db:
        assert db.block_list() == []


def test_second_process_cannot_open(db_path: str) -> None:
    with DB.open(db_path):
        with pytest.raises(TSDBError, match="in use"):
            DB.open(db_path)
        # Read-only opens (dump, stats) do not need the lock.
        with DB.open(db_path, read_only=True) as ro:
            assert ro.wal is None


def test_block_meta_json_is_prometheus_shaped(db_path: str) -> None:
    with DB.open(db_path) as db:
        fill(db, series_labels(3), T0, T0 + 3 * HOUR)
        db.flush_head()
        path = db.block_list()[0].path
    with open(os.path.join(path, BLOCK_META)) as f:
        meta = json.load(f)
    assert meta["minTime"] == T0 and meta["maxTime"] == T0 + 2 * HOUR
    assert meta["stats"]["numSeries"] == 3 and meta["stats"]["numSamples"] == 3 * 120
    assert meta["compaction"]["level"] == 1 and meta["ulid"] == os.path.basename(path)


def test_leftover_temporary_block_is_removed(db_path: str) -> None:
    os.makedirs(os.path.join(db_path, "01HZZZZZZZZZZZZZZZZZZZZZZZ.tmp"))
    with DB.open(db_path):
        pass
    assert not any(n.endswith(".tmp") for n in os.listdir(db_path))


def test_block_corrupted_while_running_is_skipped_and_quarantined(db_path: str) -> None:
    labels = series_labels(10)
    with DB.open(db_path, DBOptions(verify_blocks_on_open=False)) as db:
        fill(db, labels, T0, T0 + 7 * HOUR, step=STEP)
        db.flush_head()
        bad = db.block_list()[1]
        chunks = os.path.join(bad.path, BLOCK_CHUNKS)
        with open(chunks, "r+b") as f:  # the block is memory-mapped: readers see this
            f.seek(40)
            byte = f.read(1)
            f.seek(40)
            f.write(bytes([byte[0] ^ 0xFF]))
        with db.querier(T0, T0 + 10 * HOUR) as q:
            got = list(q.select([Matcher(MatchType.REGEX, "__name__", ".+")]))
            assert q.warnings and "corrupt" in q.warnings[0]
        assert len(got) == 10
        assert bad.ulid not in {b.ulid for b in db.block_list()}
        assert os.path.isdir(os.path.join(db_path, QUARANTINE_DIR, bad.ulid))
        assert db.metrics.corrupted_blocks._value.get() == 1


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(-3, 3)), max_size=12))
def test_strictly_ordered_agrees_with_the_pairwise_definition(pairs: list[tuple[int, int]]) -> None:
    from vigilops.tsdb.columns import strictly_ordered

    refs = np.array([r for r, _ in pairs], dtype=np.int64)
    ts = np.array([t for _, t in pairs], dtype=np.int64)
    want = all(pairs[i] < pairs[i + 1] for i in range(len(pairs) - 1))
    assert strictly_ordered(refs, ts) is want

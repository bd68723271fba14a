"""The write-ahead log: segments, replay and repair, checkpoints, sync policies, crashes.

Hypothesis deadlines are off everywhere: no test depends on wall time.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from vigilops.tsdb.errors import ClosedError, TSDBError
from vigilops.tsdb.model import STALE_NAN_BITS, Labels
from vigilops.tsdb.wal import (
    WAL,
    Record,
    SamplesRecord,
    SeriesRecord,
    SyncPolicy,
    TombstonesRecord,
    UnsupportedFormatError,
    encode_record,
)
from vigilops.tsdb.wal import wal as wal_module
from vigilops.tsdb.wal.framing import SEGMENT_HEADER, segment_header

_FIXTURE_OK = settings(
    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# --- helpers -------------------------------------------------------------------------------


def _samples(i: int, n: int = 3, shared: bool = True) -> SamplesRecord:
    """A recognisable batch: refs start at `i`, values carry `i` in their bits."""
    refs = np.arange(i, i + n, dtype=np.int64)
    ts = np.array([1_000 * i]) if shared else 1_000 * i + np.arange(n, dtype=np.int64)
    values = np.arange(n, dtype=np.float64) + i
    if n:
        values[0] = np.array([STALE_NAN_BITS], dtype=np.uint64).view(np.float64)[0]
    return SamplesRecord(refs, ts, values)


def _series(i: int) -> SeriesRecord:
    return SeriesRecord(
        np.array([i], dtype=np.int64), [Labels({"__name__": "up", "instance": f"h{i}"})]
    )


def _replay(directory: Path, **kwargs: object) -> list[Record]:
    wal = WAL(str(directory), **kwargs)  # type: ignore[arg-type]
    try:
        return list(wal.replay())
    finally:
        wal.close()


def _corruptions(reg: CollectorRegistry, reason: str) -> float:
    value = reg.get_sample_value("vigilops_tsdb_wal_corruptions_total", {"reason": reason})
    assert value is not None
    return value


def _metric(reg: CollectorRegistry, name: str) -> float:
    value = reg.get_sample_value(name)
    assert value is not None
    return value


def _fsyncs(reg: CollectorRegistry) -> float:
    return _metric(reg, "vigilops_tsdb_wal_fsync_duration_seconds_count")


def _seg(directory: Path, index: int) -> Path:
    return directory / f"{index:08d}"


def _write_log(directory: Path, batches: list[list[Record]], **kwargs: object) -> None:
    wal = WAL(str(directory), **kwargs)  # type: ignore[arg-type]
    assert list(wal.replay()) == []
    for batch in batches:
        wal.log([encode_record(r) for r in batch])
    wal.close()


@pytest.fixture
def no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip real fsyncs in tests that replay thousands of times (logic, not durability)."""
    monkeypatch.setattr(wal_module, "fsync_file", lambda fd: None)
    monkeypatch.setattr(wal_module, "fsync_dir", lambda path: None)


_i64 = st.integers(-(2**63), 2**63 - 1)


@st.composite
def _records(draw: st.DrawFn) -> Record:
    kind = draw(st.sampled_from(["samples", "series", "tombstones"]))
    if kind == "series":
        n = draw(st.integers(0, 4))
        labels = [
            Labels({"__name__": draw(st.sampled_from(["up", "cpu"])), "i": str(draw(_i64))})
            for _ in range(n)
        ]
        return SeriesRecord(np.array(draw(st.lists(_i64, min_size=n, max_size=n))), labels)
    if kind == "tombstones":
        n = draw(st.integers(0, 3))
        cols = [np.array(draw(st.lists(_i64, min_size=n, max_size=n))) for _ in range(3)]
        return TombstonesRecord(cols[0], cols[1], cols[2])
    n = draw(st.integers(0, 30))
    bits = draw(st.lists(st.integers(0, 2**64 - 1), min_size=n, max_size=n))
    values = np.array(bits, dtype=np.uint64).view(np.float64)
    refs = np.array(draw(st.lists(st.integers(0, 10_000), min_size=n, max_size=n)))
    ts = np.array(draw(st.lists(_i64, min_size=1, max_size=1) | st.just(list(range(n)))))
    if len(ts) != n and len(ts) != 1:
        ts = np.array([0])
    return SamplesRecord(refs, ts, values)


_batches = st.lists(st.lists(_records(), min_size=1, max_size=4), max_size=8)


# --- basics --------------------------------------------------------------------------------


def test_new_directory_replays_nothing_and_opening_writes_nothing(tmp_path: Path) -> None:
    d = tmp_path / "wal"
    wal = WAL(str(d))
    assert d.is_dir()
    assert list(wal.replay()) == []
    assert wal.segments() == []
    assert wal.size_bytes() == 0
    wal.close()
    assert list(d.iterdir()) == []


def test_log_then_replay_returns_the_records_in_order(tmp_path: Path) -> None:
    recs: list[Record] = [
        _series(1),
        _samples(1),
        _samples(2, n=500, shared=False),
        TombstonesRecord(np.array([1]), np.array([0]), np.array([10])),
    ]
    _write_log(tmp_path, [recs[:2], recs[2:]])
    assert _replay(tmp_path) == recs


def test_empty_batch_does_nothing(tmp_path: Path) -> None:
    wal = WAL(str(tmp_path))
    wal.log([])
    assert wal.segments() == []
    wal.close()


@given(batches=_batches, segment_size=st.sampled_from([64, 300, 4096, 1 << 20]))
@_FIXTURE_OK
def test_any_sequence_of_batches_round_trips(
    tmp_path: Path, batches: list[list[Record]], segment_size: int
) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        _write_log(Path(d), batches, segment_size=segment_size, sync=SyncPolicy.NEVER)
        expected = [r for batch in batches for r in batch]
        got = _replay(Path(d))
        assert got == expected
        for a, b in zip(got, expected):  # bit-exact, NaN payloads included
            if isinstance(a, SamplesRecord) and isinstance(b, SamplesRecord):
                assert a.values.tobytes() == b.values.tobytes()


def test_after_replay_writes_go_to_a_fresh_segment(tmp_path: Path) -> None:
    _write_log(tmp_path, [[_samples(1)]])
    before = _seg(tmp_path, 1).read_bytes()
    wal = WAL(str(tmp_path))
    assert list(wal.replay()) == [_samples(1)]
    wal.log([encode_record(_samples(2))])
    assert wal.segments() == [1, 2]
    wal.close()
    assert _seg(tmp_path, 1).read_bytes() == before
    assert _replay(tmp_path) == [_samples(1), _samples(2)]


def test_replay_after_a_write_is_refused(tmp_path: Path) -> None:
    wal = WAL(str(tmp_path))
    wal.log([encode_record(_samples(1))])
    with pytest.raises(RuntimeError, match="before the first write"):
        wal.replay()
    wal.close()


def test_log_rejects_bytes_that_are_not_encoded_records(tmp_path: Path) -> None:
    wal = WAL(str(tmp_path))
    frame = encode_record(_samples(1))
    for bad in (b"", b"hello world, not a frame", frame[:-1], frame + b"x"):
        with pytest.raises(ValueError):
            wal.log([frame, bad])
    assert wal.segments() == []  # nothing of a rejected batch is written
    wal.close()


def test_closed_wal_refuses_writes_and_close_is_idempotent(tmp_path: Path) -> None:
    wal = WAL(str(tmp_path))
    wal.log([encode_record(_samples(1))])
    wal.close()
    wal.close()
    wal.sync()  # a no-op, not an error
    with pytest.raises(ClosedError):
        wal.log([encode_record(_samples(2))])
    with pytest.raises(ClosedError):
        wal.cut_segment()
    with pytest.raises(ClosedError):
        wal.replay()


def test_context_manager_closes(tmp_path: Path) -> None:
    with WAL(str(tmp_path)) as wal:
        wal.log([encode_record(_samples(1))])
    with pytest.raises(ClosedError):
        wal.log([encode_record(_samples(2))])


# --- segments ------------------------------------------------------------------------------


def test_segments_rotate_at_segment_size(tmp_path: Path) -> None:
    frames = [encode_record(_samples(i)) for i in range(40)]
    size = SEGMENT_HEADER.size + 3 * max(len(f) for f in frames)
    wal = WAL(str(tmp_path), segment_size=size, sync=SyncPolicy.NEVER)
    for f in frames:
        wal.log([f])
    segs = wal.segments()
    wal.close()
    assert segs == list(range(1, len(segs) + 1))
    assert len(segs) >= 40 // 3
    for i in segs:
        assert _seg(tmp_path, i).stat().st_size <= size
        assert _seg(tmp_path, i).read_bytes()[: SEGMENT_HEADER.size] == segment_header()
    assert _replay(tmp_path) == [_samples(i) for i in range(40)]


def test_a_batch_larger_than_a_segment_gets_a_segment_of_its_own(tmp_path: Path) -> None:
    big = encode_record(_samples(0, n=2_000, shared=False))
    small = encode_record(_samples(1))
    size = SEGMENT_HEADER.size + 4 * len(small)
    assert len(big) > size
    wal = WAL(str(tmp_path), segment_size=size)
    wal.log([small])
    wal.log([big])
    wal.log([small])
    assert wal.segments() == [1, 2, 3]
    wal.close()
    assert _seg(tmp_path, 2).stat().st_size == SEGMENT_HEADER.size + len(big)
    assert _replay(tmp_path) == [_samples(1), _samples(0, n=2_000, shared=False), _samples(1)]


def test_one_batch_is_never_split_across_segments(tmp_path: Path) -> None:
    frames = [encode_record(_samples(i)) for i in range(6)]
    size = SEGMENT_HEADER.size + 4 * len(frames[0])
    wal = WAL(str(tmp_path), segment_size=size)
    wal.log(frames[:3])
    wal.log(frames[3:])  # does not fit after the first three: all three move on
    wal.close()
    assert _seg(tmp_path, 1).stat().st_size == SEGMENT_HEADER.size + sum(map(len, frames[:3]))
    assert _seg(tmp_path, 2).stat().st_size == SEGMENT_HEADER.size + sum(map(len, frames[3:]))


def test_cut_segment_starts_a_new_segment(tmp_path: Path) -> None:
    reg = CollectorRegistry()
    wal = WAL(str(tmp_path), registry=reg)
    assert list(wal.replay()) == []
    assert wal.cut_segment() == 1
    wal.log([encode_record(_samples(1))])
    assert wal.cut_segment() == 2
    assert _metric(reg, "vigilops_tsdb_wal_segment_current") == 2
    wal.log([encode_record(_samples(2))])
    assert wal.segments() == [1, 2]
    wal.close()
    assert _replay(tmp_path) == [_samples(1), _samples(2)]


def test_metrics_follow_writes(tmp_path: Path) -> None:
    reg = CollectorRegistry()
    frames = [encode_record(_samples(i)) for i in range(5)]
    wal = WAL(str(tmp_path), registry=reg, segment_size=SEGMENT_HEADER.size + 2 * len(frames[0]))
    wal.log(frames[:2])
    wal.log(frames[2:])
    on_disk = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert wal.size_bytes() == on_disk
    assert _metric(reg, "vigilops_tsdb_wal_storage_size_bytes") == on_disk
    assert _metric(reg, "vigilops_tsdb_wal_records_written_total") == 5
    assert _metric(reg, "vigilops_tsdb_wal_bytes_written_total") == sum(map(len, frames))
    assert _metric(reg, "vigilops_tsdb_wal_segment_current") == max(wal.segments())
    wal.close()


# --- torn tails and corruption --------------------------------------------------------------


def _one_segment(directory: Path, records: list[Record]) -> tuple[bytes, list[int]]:
    """Write `records` (one per log call) into segment 1; return its bytes and the offset
    at which each record ends."""
    _write_log(directory, [[r] for r in records])
    data = _seg(directory, 1).read_bytes()
    ends, pos = [], SEGMENT_HEADER.size
    for r in records:
        pos += len(encode_record(r))
        ends.append(pos)
    assert ends[-1] == len(data)
    return data, ends


def _check_every_cut(directory: Path, records: list[Record], later: bool) -> None:
    data, ends = _one_segment(directory, records)
    if later:  # a second segment that every repair must remove
        later_bytes = segment_header() + encode_record(_samples(999))
    for cut in range(len(data) + 1):
        for p in directory.iterdir():
            p.unlink()
        _seg(directory, 1).write_bytes(data[:cut])
        if later:
            _seg(directory, 2).write_bytes(later_bytes)
        reg = CollectorRegistry()
        wal = WAL(str(directory), registry=reg)
        got = list(wal.replay())
        whole = sum(1 for e in ends if e <= cut)
        clean = cut in (0, SEGMENT_HEADER.size, *ends)  # an empty file is clean, too
        if clean:
            assert got == records[:whole] + ([_samples(999)] if later else []), cut
            assert _corruptions(reg, "torn") == 0
        else:
            assert got == records[:whole], cut
            assert _corruptions(reg, "torn") == 1, cut
            good = max([e for e in ends if e <= cut], default=SEGMENT_HEADER.size)
            expect_size = good if cut >= SEGMENT_HEADER.size else 0
            assert _seg(directory, 1).stat().st_size == expect_size, cut
            assert not _seg(directory, 2).exists()
        assert _corruptions(reg, "checksum") == 0
        wal.close()


def test_truncating_a_segment_at_every_byte_replays_what_was_complete(
    tmp_path: Path, no_fsync: None
) -> None:
    records: list[Record] = [
        _series(1),
        _samples(1),
        _samples(2, n=40, shared=False),  # compressed
        TombstonesRecord(np.array([1]), np.array([5]), np.array([9])),
        _samples(3, n=0),
    ]
    _check_every_cut(tmp_path, records, later=False)


def test_truncating_a_middle_segment_removes_the_later_ones(
    tmp_path: Path, no_fsync: None
) -> None:
    _check_every_cut(tmp_path, [_samples(1), _samples(2, n=20)], later=True)


@given(records=st.lists(_records(), min_size=1, max_size=4))
@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_truncation_property_for_any_records(
    tmp_path: Path, no_fsync: None, records: list[Record]
) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        _check_every_cut(Path(d), records, later=False)


@given(data=st.data())
@_FIXTURE_OK
def test_a_flipped_byte_is_detected_and_cut_off(
    tmp_path: Path, no_fsync: None, data: st.DataObject
) -> None:
    records: list[Record] = [_samples(i, n=(i * 7) % 50) for i in range(8)]
    with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:
        d = Path(tmp)
        raw, ends = _one_segment(d, records)
        pos = data.draw(st.integers(0, len(raw) - 1), label="offset")
        flipped = bytearray(raw)
        flipped[pos] ^= data.draw(st.integers(1, 255), label="xor")
        _seg(d, 1).write_bytes(bytes(flipped))
        _seg(d, 2).write_bytes(segment_header() + encode_record(_samples(100)))
        reg = CollectorRegistry()
        wal = WAL(str(d), registry=reg)
        got = list(wal.replay())
        hit = sum(1 for e in ends if e <= pos)  # the record holding the byte
        assert got == records[:hit]
        reasons = ["checksum", "segment_header", "torn", "invalid"]
        assert sum(_corruptions(reg, r) for r in reasons) == 1
        assert _corruptions(reg, "torn") == 0
        assert not _seg(d, 2).exists()
        assert _metric(reg, "vigilops_tsdb_wal_truncated_bytes_total") > 0
        # The repaired log is clean and usable.
        wal.log([encode_record(_samples(200))])
        wal.close()
        reg2 = CollectorRegistry()
        again = WAL(str(d), registry=reg2)
        assert list(again.replay()) == got + [_samples(200)]
        assert sum(_corruptions(reg2, r) for r in reasons) == 0
        again.close()


def test_corruption_is_logged_as_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raw, ends = _one_segment(tmp_path, [_samples(1), _samples(2)])
    damaged = bytearray(raw)
    damaged[ends[0] + 20] ^= 0xFF
    _seg(tmp_path, 1).write_bytes(bytes(damaged))
    logger = logging.getLogger("test_wal.corruption")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        wal = WAL(str(tmp_path), logger=logger)
        assert list(wal.replay()) == [_samples(1)]
        wal.close()
    assert any(
        r.levelno == logging.WARNING and "truncated to" in r.getMessage() for r in caplog.records
    )


def test_a_zero_filled_tail_counts_as_torn(tmp_path: Path) -> None:
    raw, _ = _one_segment(tmp_path, [_samples(1), _samples(2)])
    _seg(tmp_path, 1).write_bytes(raw + bytes(4096))
    reg = CollectorRegistry()
    wal = WAL(str(tmp_path), registry=reg)
    assert list(wal.replay()) == [_samples(1), _samples(2)]
    assert _corruptions(reg, "torn") == 1
    assert _corruptions(reg, "checksum") == 0
    wal.close()
    assert _seg(tmp_path, 1).read_bytes() == raw


def test_a_record_that_passes_its_checksums_but_does_not_decode_is_invalid(
    tmp_path: Path,
) -> None:
    from vigilops.tsdb.wal.framing import RecordType, pack_frame

    good = encode_record(_samples(1))
    bad = pack_frame(RecordType.SAMPLES, 0, b"\x05\x00\x00\x00\x01")
    _seg(tmp_path, 1).write_bytes(segment_header() + good + bad + good)
    reg = CollectorRegistry()
    wal = WAL(str(tmp_path), registry=reg)
    assert list(wal.replay()) == [_samples(1)]
    assert _corruptions(reg, "invalid") == 1
    wal.close()
    assert _seg(tmp_path, 1).stat().st_size == SEGMENT_HEADER.size + len(good)


def test_an_empty_segment_file_is_clean(tmp_path: Path) -> None:
    _seg(tmp_path, 1).write_bytes(b"")
    _seg(tmp_path, 2).write_bytes(segment_header() + encode_record(_samples(1)))
    reg = CollectorRegistry()
    wal = WAL(str(tmp_path), registry=reg)
    assert list(wal.replay()) == [_samples(1)]
    assert sum(_corruptions(reg, r) for r in ("torn", "checksum", "segment_header")) == 0
    wal.close()


def test_a_segment_of_an_unknown_format_version_is_not_touched(tmp_path: Path) -> None:
    newer = segment_header(version=99) + encode_record(_samples(1))
    _seg(tmp_path, 1).write_bytes(newer)
    wal = WAL(str(tmp_path))
    with pytest.raises(UnsupportedFormatError, match="version 99"):
        list(wal.replay())
    wal.close()
    assert _seg(tmp_path, 1).read_bytes() == newer


def test_a_missing_segment_is_reported_and_the_rest_replayed(tmp_path: Path) -> None:
    wal = WAL(str(tmp_path), segment_size=64)
    for i in range(4):
        wal.log([encode_record(_samples(i))])
    wal.close()
    _seg(tmp_path, 2).unlink()
    reg = CollectorRegistry()
    wal = WAL(str(tmp_path), registry=reg)
    assert list(wal.replay()) == [_samples(0), _samples(2), _samples(3)]
    assert _corruptions(reg, "missing_segment") == 1
    wal.close()


def test_log_without_replay_repairs_first_so_new_records_survive(tmp_path: Path) -> None:
    raw, ends = _one_segment(tmp_path, [_samples(1), _samples(2)])
    _seg(tmp_path, 1).write_bytes(raw[: ends[1] - 3])  # torn second record
    reg = CollectorRegistry()
    wal = WAL(str(tmp_path), registry=reg)
    wal.log([encode_record(_samples(3))])  # no replay: the WAL checks the log itself
    assert _corruptions(reg, "torn") == 1
    wal.close()
    assert _replay(tmp_path) == [_samples(1), _samples(3)]


def test_replay_stopped_early_is_completed_by_the_first_write(tmp_path: Path) -> None:
    raw, ends = _one_segment(tmp_path, [_samples(1), _samples(2), _samples(3)])
    _seg(tmp_path, 1).write_bytes(raw[: ends[2] - 1])
    wal = WAL(str(tmp_path))
    it = wal.replay()
    assert next(it) == _samples(1)
    wal.log([encode_record(_samples(4))])
    wal.close()
    assert _replay(tmp_path) == [_samples(1), _samples(2), _samples(4)]


# --- checkpoints ---------------------------------------------------------------------------


def test_checkpoint_then_replay_yields_checkpoint_then_later_segments(tmp_path: Path) -> None:
    reg = CollectorRegistry()
    wal = WAL(str(tmp_path), segment_size=200, registry=reg)
    assert list(wal.replay()) == []
    for i in range(10):
        wal.log([encode_record(_series(i)), encode_record(_samples(i))])
    new = wal.cut_segment()
    assert new > 2
    kept = [_series(i) for i in range(0, 10, 2)]
    wal.checkpoint(new - 1, (encode_record(r) for r in kept))
    assert wal.segments() == [new]
    assert (tmp_path / f"checkpoint.{new - 1:08d}").is_dir()
    wal.log([encode_record(_samples(100))])
    assert wal.size_bytes() == sum(
        p.stat().st_size for p in tmp_path.rglob("*") if p.is_file()
    )
    assert _metric(reg, "vigilops_tsdb_wal_checkpoint_creations_total") == 1
    wal.close()

    wal = WAL(str(tmp_path))
    assert list(wal.replay()) == kept + [_samples(100)]
    wal.log([encode_record(_samples(101))])
    n2 = wal.cut_segment()
    wal.checkpoint(n2 - 1, [encode_record(_series(42))])
    wal.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"{n2:08d}", f"checkpoint.{n2 - 1:08d}"]  # older checkpoint gone
    assert _replay(tmp_path) == [_series(42)]


def test_a_large_checkpoint_spans_several_files(tmp_path: Path) -> None:
    wal = WAL(str(tmp_path), segment_size=256)
    wal.log([encode_record(_samples(0))])
    n = wal.cut_segment()
    kept = [_series(i) for i in range(50)]
    wal.checkpoint(n - 1, [encode_record(r) for r in kept])
    wal.close()
    files = sorted((tmp_path / f"checkpoint.{n - 1:08d}").iterdir())
    assert len(files) > 1
    assert [f.name for f in files] == [f"{i:08d}" for i in range(len(files))]
    assert _replay(tmp_path) == kept


def test_checkpoint_of_the_segment_being_written_is_refused(tmp_path: Path) -> None:
    wal = WAL(str(tmp_path))
    wal.log([encode_record(_samples(1))])
    with pytest.raises(ValueError, match="cut_segment"):
        wal.checkpoint(1, [])
    n = wal.cut_segment()
    wal.checkpoint(n - 1, [])
    with pytest.raises(ValueError, match="already covers"):
        wal.checkpoint(n - 1, [])
    wal.close()


def test_a_failed_checkpoint_leaves_everything_as_it_was(tmp_path: Path) -> None:
    reg = CollectorRegistry()
    wal = WAL(str(tmp_path), registry=reg)
    wal.log([encode_record(_samples(1))])
    n = wal.cut_segment()

    def records() -> Iterator[bytes]:
        yield encode_record(_series(1))
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        wal.checkpoint(n - 1, records())
    with pytest.raises(ValueError):
        wal.checkpoint(n - 1, [b"not a record"])
    assert _metric(reg, "vigilops_tsdb_wal_checkpoint_creations_failed_total") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00000001", "00000002"]
    wal.close()
    assert _replay(tmp_path) == [_samples(1)]


def test_leftover_tmp_checkpoint_is_removed_on_open(tmp_path: Path) -> None:
    _write_log(tmp_path, [[_samples(1)]])
    tmp = tmp_path / "checkpoint.00000001.tmp"
    tmp.mkdir()
    (tmp / "00000000").write_bytes(segment_header() + encode_record(_series(9)))
    wal = WAL(str(tmp_path))
    assert not tmp.exists()
    assert list(wal.replay()) == [_samples(1)]
    wal.close()


def test_replay_finishes_the_cleanup_of_an_interrupted_checkpoint(tmp_path: Path) -> None:
    wal = WAL(str(tmp_path), segment_size=64)
    for i in range(4):
        wal.log([encode_record(_samples(i))])
    wal.close()
    assert WAL(str(tmp_path)).segments() == [1, 2, 3, 4]
    # Simulate a crash after the checkpoint was renamed into place, before segments <= 2
    # and the previous checkpoint were deleted.
    for upto, content in ((1, _series(1)), (2, _series(2))):
        cp = tmp_path / f"checkpoint.{upto:08d}"
        cp.mkdir()
        (cp / "00000000").write_bytes(segment_header() + encode_record(content))
    reg = CollectorRegistry()
    wal = WAL(str(tmp_path), registry=reg)
    assert list(wal.replay()) == [_series(2), _samples(2), _samples(3)]
    assert wal.segments() == [3, 4]
    assert not (tmp_path / "checkpoint.00000001").exists()
    assert _corruptions(reg, "missing_segment") == 0
    wal.close()


def test_a_damaged_checkpoint_is_reported_and_segments_still_replayed(tmp_path: Path) -> None:
    wal = WAL(str(tmp_path))
    wal.log([encode_record(_samples(1))])
    n = wal.cut_segment()
    wal.checkpoint(n - 1, [encode_record(_series(i)) for i in range(3)])
    wal.log([encode_record(_samples(2))])
    wal.close()
    cp_file = tmp_path / f"checkpoint.{n - 1:08d}" / "00000000"
    raw = bytearray(cp_file.read_bytes())
    raw[-3] ^= 0x10  # inside the last series record
    cp_file.write_bytes(bytes(raw))
    reg = CollectorRegistry()
    wal = WAL(str(tmp_path), registry=reg)
    assert list(wal.replay()) == [_series(0), _series(1), _samples(2)]
    assert _corruptions(reg, "checksum") == 1
    wal.close()


def test_checkpoint_while_other_threads_log(tmp_path: Path) -> None:
    wal = WAL(str(tmp_path), segment_size=512)
    assert list(wal.replay()) == []
    stop = threading.Event()
    logged: list[int] = []

    def writer() -> None:
        i = 0
        while not stop.is_set() or i < 50:
            wal.log([encode_record(_samples(1_000 + i))])
            logged.append(i)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        while len(logged) < 20:
            threading.Event().wait(0.001)
        n = wal.cut_segment()
        wal.checkpoint(n - 1, [encode_record(_series(7))])
    finally:
        stop.set()
        t.join()
    wal.close()
    got = _replay(tmp_path)
    assert got[0] == _series(7)
    # Everything logged after the cut survives, in order, without gaps.
    idx = [int(r.refs[0]) - 1_000 for r in got[1:]]
    assert idx == list(range(idx[0], len(logged)))


# --- sync policies -------------------------------------------------------------------------


class _FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_sync_always_fsyncs_every_log(tmp_path: Path) -> None:
    reg = CollectorRegistry()
    wal = WAL(str(tmp_path), sync=SyncPolicy.ALWAYS, registry=reg)
    for i in range(5):
        wal.log([encode_record(_samples(i))])
        assert _fsyncs(reg) == i + 1
    wal.close()
    assert _replay(tmp_path) == [_samples(i) for i in range(5)]


def test_sync_commit_fsyncs_on_interval_rotation_and_close(tmp_path: Path) -> None:
    reg = CollectorRegistry()
    clock = _FakeClock()
    frame = encode_record(_samples(1))
    wal = WAL(
        str(tmp_path),
        sync=SyncPolicy.COMMIT,
        sync_interval=10.0,
        registry=reg,
        clock=clock,
        segment_size=SEGMENT_HEADER.size + 3 * len(frame),
    )
    wal.log([frame])
    wal.log([frame])
    assert _fsyncs(reg) == 0  # written to the OS, not yet synced
    clock.now += 10.0
    wal.log([frame])
    assert _fsyncs(reg) == 1  # the interval passed
    wal.log([frame])  # rotation: the full segment is synced first
    assert wal.segments() == [1, 2]
    assert _fsyncs(reg) == 2
    clock.now += 5.0
    wal.log([frame])
    assert _fsyncs(reg) == 2
    wal.sync()
    assert _fsyncs(reg) == 3
    wal.close()
    assert _fsyncs(reg) == 4


def test_sync_never_fsyncs_only_on_close(tmp_path: Path) -> None:
    reg = CollectorRegistry()
    clock = _FakeClock()
    frame = encode_record(_samples(1))
    wal = WAL(
        str(tmp_path),
        sync=SyncPolicy.NEVER,
        registry=reg,
        clock=clock,
        segment_size=SEGMENT_HEADER.size + len(frame),
    )
    for _ in range(4):
        wal.log([frame])
        clock.now += 100.0
    wal.cut_segment()
    assert len(wal.segments()) == 5
    assert _fsyncs(reg) == 0
    wal.close()
    assert _fsyncs(reg) == 1
    assert _replay(tmp_path) == [_samples(1)] * 4


# --- failures ------------------------------------------------------------------------------


def test_a_failed_write_is_undone_and_the_wal_stays_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = CollectorRegistry()
    wal = WAL(str(tmp_path), registry=reg)
    wal.log([encode_record(_samples(1))])
    real_write_all = wal_module.write_all

    def half_then_fail(fd: int, data: bytes | memoryview) -> None:
        os.write(fd, bytes(data)[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(wal_module, "write_all", half_then_fail)
    with pytest.raises(OSError, match="No space"):
        wal.log([encode_record(_samples(2))])
    monkeypatch.setattr(wal_module, "write_all", real_write_all)
    assert _metric(reg, "vigilops_tsdb_wal_writes_failed_total") == 1
    wal.log([encode_record(_samples(3))])
    wal.close()
    reg2 = CollectorRegistry()
    assert _replay(tmp_path, registry=reg2) == [_samples(1), _samples(3)]
    assert _corruptions(reg2, "checksum") + _corruptions(reg2, "torn") == 0


def test_a_failed_fsync_stops_further_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wal = WAL(str(tmp_path), sync=SyncPolicy.ALWAYS)
    wal.log([encode_record(_samples(1))])

    def fail(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(wal_module, "fsync_file", fail)
    with pytest.raises(OSError, match="Input/output"):
        wal.log([encode_record(_samples(2))])
    with pytest.raises(TSDBError, match="unusable"):
        wal.log([encode_record(_samples(3))])
    wal.close()


# --- concurrency and crashes ---------------------------------------------------------------


def test_concurrent_loggers_keep_each_batch_whole_and_in_order(tmp_path: Path) -> None:
    wal = WAL(str(tmp_path), segment_size=4096, sync=SyncPolicy.NEVER)
    assert list(wal.replay()) == []

    def worker(w: int) -> None:
        for i in range(100):
            wal.log([encode_record(_samples(w * 1_000 + i)), encode_record(_series(w))])

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wal.close()
    got = _replay(tmp_path)
    assert len(got) == 800
    seen: dict[int, list[int]] = {w: [] for w in range(4)}
    for samples, series in zip(got[0::2], got[1::2]):
        assert isinstance(samples, SamplesRecord) and isinstance(series, SeriesRecord)
        w, i = divmod(int(samples.refs[0]), 1_000)
        assert series == _series(w)  # the batch's two records stayed together
        seen[w].append(i)
    assert all(v == list(range(100)) for v in seen.values())


_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from vigilops.tsdb.wal import WAL, SamplesRecord, SyncPolicy, encode_record

    wal = WAL(sys.argv[1], segment_size=4096, sync=SyncPolicy(sys.argv[2]))
    assert list(wal.replay()) == []
    i = 0
    while True:
        n = 1 + i % 50
        rec = SamplesRecord(np.full(n, i, dtype=np.int64), np.array([i]), np.arange(n) + 0.5)
        wal.log([encode_record(rec)])
        sys.stdout.write(f"{i}\\n")
        sys.stdout.flush()
        i += 1
    """
)


@pytest.mark.parametrize("policy", list(SyncPolicy))
def test_records_logged_before_sigkill_are_replayed(tmp_path: Path, policy: SyncPolicy) -> None:
    wal_dir = tmp_path / "wal"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(wal_dir), policy.value],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    acknowledged = -1
    try:
        for line in proc.stdout:
            acknowledged = int(line)
            if acknowledged >= 300:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        # Lines already in the pipe were acknowledged before the kill, too.
        for line in proc.stdout:
            acknowledged = int(line)
        proc.wait()
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    assert acknowledged >= 300, err
    assert proc.returncode == -signal.SIGKILL

    got = _replay(wal_dir)
    assert len(got) >= acknowledged + 1
    for i, rec in enumerate(got):
        assert isinstance(rec, SamplesRecord)
        n = 1 + i % 50
        assert rec.refs.tolist() == [i] * n
        assert rec.timestamps.tolist() == [i]
        assert rec.values.tolist() == [k + 0.5 for k in range(n)]
    shutil.rmtree(wal_dir)


# --- read-only -----------------------------------------------------------------------------


def test_read_only_replay_changes_nothing(tmp_path: Path) -> None:
    wal = WAL(str(tmp_path), segment_size=64)
    for i in range(3):
        wal.log([encode_record(_samples(i))])
    n = wal.cut_segment()
    wal.checkpoint(1, [encode_record(_series(1))])
    wal.close()
    assert n == 4
    # A torn tail in segment 2, a leftover segment <= the checkpoint, an unfinished
    # checkpoint: a read-only WAL must leave all of it alone.
    raw = _seg(tmp_path, 2).read_bytes()
    _seg(tmp_path, 2).write_bytes(raw[:-5])
    _seg(tmp_path, 1).write_bytes(segment_header() + encode_record(_samples(77)))
    tmp = tmp_path / "checkpoint.00000003.tmp"
    tmp.mkdir()
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    reg = CollectorRegistry()
    ro = WAL(str(tmp_path), registry=reg, read_only=True)
    assert list(ro.replay()) == [_series(1)]
    assert _corruptions(reg, "torn") == 1
    with pytest.raises(TSDBError, match="read-only"):
        ro.log([encode_record(_samples(9))])
    with pytest.raises(TSDBError, match="read-only"):
        ro.cut_segment()
    ro.close()
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert tmp.is_dir()


def test_read_only_on_a_missing_directory_is_empty(tmp_path: Path) -> None:
    ro = WAL(str(tmp_path / "absent"), read_only=True)
    assert list(ro.replay()) == []
    assert ro.segments() == []
    assert ro.size_bytes() == 0
    ro.close()
    assert not (tmp_path / "absent").exists()

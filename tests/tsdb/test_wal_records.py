"""Record codecs of the WAL: round trips, bit-exact floats, and rejection of bad bytes.

Hypothesis deadlines are off everywhere: no test depends on wall time.
"""

from __future__ import annotations

import struct
import threading
import zlib

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from vigilops.tsdb.errors import CorruptionError
from vigilops.tsdb.model import STALE_NAN_BITS, Labels
from vigilops.tsdb.wal import (
    ChecksumError,
    Record,
    SamplesRecord,
    SeriesRecord,
    TombstonesRecord,
    decode_record,
    encode_record,
)
from vigilops.tsdb.wal.framing import FLAG_ZSTD, FRAME_HEADER, RecordType, pack_frame

I64_MIN, I64_MAX = -(2**63), 2**63 - 1


def _bits(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.uint64).view(np.float64)


def _f64_from_bits() -> st.SearchStrategy[np.ndarray]:
    specials = st.sampled_from(
        [
            STALE_NAN_BITS,
            0x7FF8000000000000,  # the usual quiet NaN
            0xFFF8000000000001,  # negative NaN with a payload
            0x7FF0000000000001,  # signalling NaN
            0x8000000000000000,  # -0.0
            0x7FF0000000000000,  # +Inf
            0xFFF0000000000000,  # -Inf
            0x0000000000000001,  # smallest subnormal
        ]
    )
    word = st.one_of(specials, st.integers(0, 2**64 - 1))
    return st.lists(word, max_size=40).map(_bits)


_label_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12
)
_label_sets = st.dictionaries(
    st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,10}", fullmatch=True), _label_text, max_size=6
).map(Labels)
_i64 = st.integers(I64_MIN, I64_MAX)


@st.composite
def samples_records(draw: st.DrawFn) -> SamplesRecord:
    values = draw(_f64_from_bits())
    n = len(values)
    refs = np.array(draw(st.lists(_i64, min_size=n, max_size=n)), dtype=np.int64)
    if draw(st.booleans()):
        ts = np.array([draw(_i64)], dtype=np.int64)
    else:
        ts = np.array(draw(st.lists(_i64, min_size=n, max_size=n)), dtype=np.int64)
    return SamplesRecord(refs=refs, timestamps=ts, values=values)


@st.composite
def series_records(draw: st.DrawFn) -> SeriesRecord:
    labels = draw(st.lists(_label_sets, max_size=10))
    refs = draw(st.lists(_i64, min_size=len(labels), max_size=len(labels)))
    return SeriesRecord(refs=np.array(refs, dtype=np.int64), labels=labels)


@st.composite
def tombstones_records(draw: st.DrawFn) -> TombstonesRecord:
    rows = draw(st.lists(st.tuples(_i64, _i64, _i64), max_size=20))
    cols = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return TombstonesRecord(refs=cols[:, 0], mint=cols[:, 1], maxt=cols[:, 2])


any_record = st.one_of(samples_records(), series_records(), tombstones_records())


def _same(a: Record, b: Record) -> None:
    assert type(a) is type(b)
    assert a == b
    if isinstance(a, SamplesRecord) and isinstance(b, SamplesRecord):
        assert a.values.view(np.uint64).tolist() == b.values.view(np.uint64).tolist()


@given(any_record)
@settings(deadline=None)
def test_any_record_round_trips(rec: Record) -> None:
    _same(decode_record(encode_record(rec)), rec)


@given(st.lists(any_record, max_size=8))
@settings(deadline=None)
def test_concatenated_records_round_trip_in_order(recs: list[Record]) -> None:
    frames = [encode_record(r) for r in recs]
    blob = memoryview(b"".join(frames))
    pos = 0
    for rec, frame in zip(recs, frames):
        _same(decode_record(blob[pos : pos + len(frame)]), rec)
        pos += len(frame)


def test_special_floats_are_bit_exact() -> None:
    words = [
        STALE_NAN_BITS,
        0x7FF8000000000000,
        0x7FF8DEADBEEF0001,
        0xFFFFFFFFFFFFFFFF,
        0x7FF0000000000001,
        0x8000000000000000,
        0x0000000000000000,
        0x7FF0000000000000,
        0xFFF0000000000000,
        0x000FFFFFFFFFFFFF,
    ] * 20  # long enough to be compressed
    rec = SamplesRecord(np.arange(len(words)), np.array([1_700_000_000_000]), _bits(words))
    frame = encode_record(rec)
    assert frame[1] & FLAG_ZSTD
    out = decode_record(frame)
    assert isinstance(out, SamplesRecord)
    assert out.values.view(np.uint64).tolist() == words


def test_shared_timestamp_is_kept_shared() -> None:
    rec = SamplesRecord(np.arange(5), np.array([42]), np.ones(5))
    out = decode_record(encode_record(rec))
    assert isinstance(out, SamplesRecord)
    assert out.timestamps.tolist() == [42]
    assert out.shared_timestamp
    assert out.timestamps_per_sample().tolist() == [42] * 5

    per_sample = SamplesRecord(np.arange(3), np.array([1, 2, 3]), np.ones(3))
    out = decode_record(encode_record(per_sample))
    assert isinstance(out, SamplesRecord)
    assert out.timestamps.tolist() == [1, 2, 3]
    assert not out.shared_timestamp


@pytest.mark.parametrize("n", [0, 1, 2, 10_000])
def test_decoded_arrays_are_fresh_writable_int64_and_float64(n: int) -> None:
    rng = np.random.default_rng(n)
    recs: list[Record] = [
        SamplesRecord(rng.integers(0, 1 << 40, n), rng.integers(0, 1 << 41, n), rng.random(n)),
        SeriesRecord(np.arange(n), [Labels({"__name__": "up", "i": str(i)}) for i in range(n)]),
        TombstonesRecord(np.arange(n), np.zeros(n, dtype=np.int64), np.arange(n)),
    ]
    for rec in recs:
        out = decode_record(encode_record(rec))
        _same(out, rec)
        for name in ("refs", "timestamps", "values", "mint", "maxt"):
            arr = getattr(out, name, None)
            if arr is None:
                continue
            assert arr.dtype in (np.int64, np.float64)
            assert arr.flags.writeable and arr.flags.c_contiguous
            arr[:] = 0  # must not fail or touch anything shared


def test_large_scrape_batch_round_trips_and_compresses() -> None:
    n = 10_000
    rng = np.random.default_rng(7)
    values = np.where(rng.random(n) < 0.5, np.round(rng.random(n) * 100, 2), np.arange(n) * 3.0)
    rec = SamplesRecord(np.arange(n) + 5_000, np.array([1_700_000_000_000]), values)
    frame = encode_record(rec)
    assert frame[1] & FLAG_ZSTD
    assert len(frame) < 16 * n  # refs and values raw would take 16 bytes a sample
    _same(decode_record(frame), rec)


def test_tiny_record_is_stored_uncompressed() -> None:
    frame = encode_record(SamplesRecord(np.array([1]), np.array([2]), np.array([3.0])))
    assert frame[0] == RecordType.SAMPLES
    assert frame[1] == 0


def test_series_labels_keep_unicode_and_are_labels() -> None:
    labels = [
        Labels({"__name__": "temp", "city": "Zürich", "note": "雪 ❄"}),
        Labels({"__name__": "x", "v": 'quote" back\\slash\nnewline'}),
        Labels(),
    ]
    out = decode_record(encode_record(SeriesRecord(np.array([3, 1, 2]), labels)))
    assert isinstance(out, SeriesRecord)
    assert out.labels == labels
    assert all(type(lbl) is Labels for lbl in out.labels)
    assert out.refs.tolist() == [3, 1, 2]


@pytest.mark.parametrize(
    "make",
    [
        lambda: SamplesRecord(np.arange(3), np.array([1, 2]), np.ones(3)),
        lambda: SamplesRecord(np.arange(3), np.array([1]), np.ones(2)),
        lambda: SeriesRecord(np.arange(2), [Labels()]),
        lambda: TombstonesRecord(np.arange(2), np.arange(2), np.arange(1)),
    ],
)
def test_inconsistent_lengths_are_rejected(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_encode_rejects_other_objects() -> None:
    with pytest.raises(TypeError):
        encode_record("not a record")  # type: ignore[arg-type]


@given(st.binary(max_size=200))
@settings(deadline=None)
def test_random_bytes_raise_only_corruption_error(data: bytes) -> None:
    try:
        decode_record(data)
    except CorruptionError:
        pass


@given(any_record, st.data())
@settings(max_examples=50, deadline=None)
def test_every_flipped_byte_is_a_checksum_error(rec: Record, data: st.DataObject) -> None:
    frame = bytearray(encode_record(rec))
    pos = data.draw(st.integers(0, len(frame) - 1))
    frame[pos] ^= data.draw(st.integers(1, 255))
    with pytest.raises(CorruptionError) as info:
        decode_record(bytes(frame))
    # A changed length makes the header checksum fail before the size is looked at.
    assert isinstance(info.value, ChecksumError) or "payload bytes" in info.value.detail


def test_every_truncation_is_a_corruption_error() -> None:
    frame = encode_record(SamplesRecord(np.arange(100), np.array([5]), np.ones(100)))
    for cut in range(len(frame)):
        with pytest.raises(CorruptionError):
            decode_record(frame[:cut])
    with pytest.raises(CorruptionError):
        decode_record(frame + b"\0")


def _crafted(rtype: int, payload: bytes, flags: int = 0) -> bytes:
    """A frame with valid checksums around an arbitrary payload."""
    return pack_frame(rtype, flags, payload)


@pytest.mark.parametrize(
    ("frame", "needle"),
    [
        (_crafted(9, b""), "unknown record type 9"),
        (_crafted(0, b""), "unknown record type 0"),
        (_crafted(RecordType.SAMPLES, b"", flags=0x80), "unknown flags"),
        (_crafted(RecordType.SAMPLES, b"\x01\x00"), "undecodable samples"),
        (_crafted(RecordType.SAMPLES, struct.pack("<IB", 0, 7)), "timestamp mode"),
        (_crafted(RecordType.SAMPLES, struct.pack("<IB", 1, 0) + bytes(25)), "unexpected"),
        (_crafted(RecordType.SAMPLES, struct.pack("<IB", 5, 1) + bytes(8)), "overruns"),
        (_crafted(RecordType.SAMPLES, b"garbage" * 20, flags=FLAG_ZSTD), "undecodable"),
        (
            _crafted(RecordType.TOMBSTONES, struct.pack("<I", 1) + bytes(24) + b"x"),
            "unexpected",
        ),
        # one series with 3 strings: odd
        (
            _crafted(
                RecordType.SERIES,
                struct.pack("<I", 1) + bytes(8) + struct.pack("<I", 3) + bytes(12),
            ),
            "odd number",
        ),
        # label names out of order
        (
            _crafted(
                RecordType.SERIES,
                struct.pack("<I", 1)
                + bytes(8)
                + struct.pack("<I", 4)
                + struct.pack("<4I", 1, 1, 1, 1)
                + b"bbaa",
            ),
            "not sorted",
        ),
        # invalid UTF-8
        (
            _crafted(
                RecordType.SERIES,
                struct.pack("<I", 1) + bytes(8) + struct.pack("<I", 2) + struct.pack("<2I", 1, 1)
                + b"a\xff",
            ),
            "undecodable series",
        ),
        # string lengths do not add up
        (
            _crafted(
                RecordType.SERIES,
                struct.pack("<I", 1) + bytes(8) + struct.pack("<I", 2) + struct.pack("<2I", 1, 9)
                + b"ab",
            ),
            "label strings",
        ),
    ],
)
def test_checksummed_but_malformed_payloads_are_corruption(frame: bytes, needle: str) -> None:
    with pytest.raises(CorruptionError) as info:
        decode_record(frame, where="probe")
    assert needle in str(info.value)
    assert info.value.path == "probe"
    assert not isinstance(info.value, ChecksumError)


def test_compressed_payload_without_content_size_is_rejected() -> None:
    raw = struct.pack("<IB", 0, 0) + bytes(8)
    packed = zstandard.ZstdCompressor(write_content_size=False).compress(raw)
    with pytest.raises(CorruptionError, match="content size"):
        decode_record(_crafted(RecordType.SAMPLES, packed, flags=FLAG_ZSTD))


def test_frame_header_layout() -> None:
    rec = SamplesRecord(np.array([7]), np.array([8]), np.array([9.0]))
    frame = encode_record(rec)
    rtype, flags, length, crc, hcrc = FRAME_HEADER.unpack_from(frame)
    assert (rtype, flags, length) == (RecordType.SAMPLES, 0, len(frame) - FRAME_HEADER.size)
    assert crc == zlib.crc32(frame[FRAME_HEADER.size :])
    assert hcrc == zlib.crc32(frame[:10])


def test_codecs_are_thread_safe() -> None:
    rng = np.random.default_rng(3)
    recs = [
        SamplesRecord(np.arange(2_000) + i, np.array([i]), rng.random(2_000)) for i in range(8)
    ]
    expected = [encode_record(r) for r in recs]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(20):
                assert encode_record(recs[i]) == expected[i]
                assert decode_record(expected[i]) == recs[i]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(recs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@given(st.sampled_from(list(RecordType)), st.sampled_from([0, FLAG_ZSTD]), st.binary(max_size=300))
@settings(deadline=None)
def test_random_payloads_behind_valid_checksums_raise_only_corruption_error(
    rtype: RecordType, flags: int, payload: bytes
) -> None:
    try:
        decode_record(_crafted(rtype, payload, flags))
    except CorruptionError as exc:
        assert not isinstance(exc, ChecksumError)


@given(any_record)
@settings(deadline=None)
def test_payloads_cut_short_behind_valid_checksums_are_corruption(rec: Record) -> None:
    frame = encode_record(rec)
    if frame[1] & FLAG_ZSTD:
        payload = zstandard.ZstdDecompressor().decompress(frame[FRAME_HEADER.size :])
    else:
        payload = frame[FRAME_HEADER.size :]
    for cut in range(len(payload)):
        with pytest.raises(CorruptionError):
            decode_record(_crafted(frame[0], payload[:cut]))

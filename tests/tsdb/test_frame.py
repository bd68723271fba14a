"""The frame codec: bit-exact round trips of any input, the value mode chosen for each kind
of data, and rejection of every damaged frame with `CorruptionError` and nothing else.

The byte layout under test is specified in ``tsdb/docs/format/frame.md``. No test depends on
wall time; throughput is measured by ``bench/``, not here.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from vigilops.tsdb.chunks import frame_body as fb
from vigilops.tsdb.chunks.frame import (
    MAGIC,
    MAX_DECIMAL_EXP,
    MODE_DECIMAL_DELTA,
    MODE_DECIMAL_DOD,
    MODE_XOR,
    VERSION,
    DecodedFrame,
    decode_frame,
    encode_frame,
    inspect_frame,
)
from vigilops.tsdb.errors import CorruptionError
from vigilops.tsdb.model import STALE_NAN_BITS

I64_MIN, I64_MAX = -(2**63), 2**63 - 1
HEADER = struct.Struct("<2sBBII")  # magic, version, flags, body length, crc32 (frame.md)

# The cheap properties get several times the profile's example budget.
MORE = settings(max_examples=settings.default.max_examples * 4)


def f64(bits: list[int]) -> np.ndarray:
    return np.array(bits, dtype=np.uint64).view(np.float64)


def u64(x: float) -> int:
    return int(np.float64(x).view(np.uint64))


SPECIAL_BITS = [
    STALE_NAN_BITS,
    0x7FF8000000000000,  # the default quiet NaN
    0xFFF8000000000000,  # negative quiet NaN
    0x7FF0000000000001,  # smallest signalling NaN payload
    0x7FF7FFFFFFFFFFFF,  # largest signalling NaN payload
    0xFFFFFFFFFFFFFFFF,  # every bit set: a negative quiet NaN
    0x7FF0000000000000,  # +Inf
    0xFFF0000000000000,  # -Inf
    0x0000000000000000,  # +0.0
    0x8000000000000000,  # -0.0
    0x0000000000000001,  # smallest subnormal
    0x800FFFFFFFFFFFFF,  # largest negative subnormal
    0x0010000000000000,  # smallest normal
    0x7FEFFFFFFFFFFFFF,  # largest finite
    0xFFEFFFFFFFFFFFFF,  # most negative finite
    u64(2.0**53),  # first float beyond the mantissa limit
    u64(2.0**53 - 1),  # last integer with a decimal mantissa
    u64(-(2.0**53 - 1)),
    u64(0.1),
    u64(0.1 + 0.2),  # needs 17 significant digits: no decimal exponent fits
    u64(1e-15),  # decimal only at the largest exponent
    u64(1e-16),  # decimal at no exponent
    u64(123456.789),
    u64(1e300),
]

nan_bits = st.tuples(st.integers(0, 1), st.integers(1, 2**52 - 1)).map(
    lambda t: (t[0] << 63) | 0x7FF0000000000000 | t[1]
)
decimal_values = st.tuples(
    st.integers(-(2**53) + 1, 2**53 - 1), st.integers(0, MAX_DECIMAL_EXP + 2)
).map(lambda t: u64(t[0] / 10.0 ** t[1]))
value_bits = st.one_of(
    st.sampled_from(SPECIAL_BITS),
    st.integers(0, 2**64 - 1),  # any bit pattern at all
    nan_bits,
    decimal_values,
    st.integers(-1000, 1000).map(lambda i: u64(float(i))),
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True).map(u64),
)


@st.composite
def series_values(draw: st.DrawFn, n: int) -> list[int]:
    """The values of one series, shaped like one of the kinds of data a frame meets."""
    kind = draw(st.sampled_from(["any", "constant", "counter", "gauge", "mixed_exponents"]))
    if kind == "any":
        return draw(st.lists(value_bits, min_size=n, max_size=n))
    if kind == "constant":
        return [draw(value_bits)] * n
    if kind == "counter":
        start = draw(st.integers(-(2**40), 2**40))
        step = draw(st.integers(0, 2**20))
        jitter = draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))
        return [u64(float(start + i * step + j)) for i, j in enumerate(jitter)]
    exps = (
        [draw(st.integers(0, 4))] * n
        if kind == "gauge"
        else draw(st.lists(st.integers(0, MAX_DECIMAL_EXP + 1), min_size=n, max_size=n))
    )
    mants = draw(st.lists(st.integers(-(10**9), 10**9), min_size=n, max_size=n))
    return [u64(m / 10.0**e) for m, e in zip(mants, exps)]


@st.composite
def series_timestamps(draw: st.DrawFn, n: int) -> list[int]:
    if draw(st.booleans()):
        return draw(st.lists(st.integers(I64_MIN, I64_MAX), min_size=n, max_size=n))
    start = draw(st.integers(I64_MIN, I64_MAX))
    step = draw(st.integers(-(2**40), 2**40))
    jitter = draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n))
    return [((start + i * step + j + 2**63) % 2**64) - 2**63 for i, j in enumerate(jitter)]


@dataclass
class Input:
    counts: np.ndarray
    timestamps: np.ndarray
    values: np.ndarray


@st.composite
def frame_inputs(draw: st.DrawFn, max_series: int = 8) -> Input:
    if draw(st.booleans()):  # every series the same length (the encoder has a fast path)
        s = draw(st.integers(1, max_series))
        counts = [draw(st.integers(1, 30))] * s
    else:
        counts = draw(st.lists(st.integers(1, 30), min_size=0, max_size=max_series))
    ts: list[int] = []
    vals: list[int] = []
    for c in counts:
        ts += draw(series_timestamps(c))
        vals += draw(series_values(c))
    return Input(
        np.array(counts, dtype=np.int64), np.array(ts, dtype=np.int64), f64(vals)
    )


def assert_same(d: DecodedFrame, inp: Input) -> None:
    assert d.counts.dtype == np.int64 and d.timestamps.dtype == np.int64
    assert d.values.dtype == np.float64
    assert d.counts.tolist() == inp.counts.tolist()
    assert d.timestamps.tolist() == inp.timestamps.tolist()
    assert d.values.view(np.uint64).tolist() == inp.values.view(np.uint64).tolist()


def encode(inp: Input, level: int = 3) -> bytes:
    return encode_frame(inp.counts, inp.timestamps, inp.values, level=level)


def modes_of(buf: bytes) -> list[tuple[int, int]]:
    info = inspect_frame(buf)
    return list(zip(info.modes.tolist(), info.exponents.tolist()))


# --- round trips -----------------------------------------------------------------------------


@MORE
@given(frame_inputs())
def test_any_input_round_trips_bit_exactly(inp: Input) -> None:
    buf = encode(inp)
    assert_same(decode_frame(buf), inp)
    info = inspect_frame(buf)
    assert (info.n_series, info.n_samples) == (len(inp.counts), len(inp.timestamps))
    assert info.compressed_len == len(buf) - HEADER.size


@given(frame_inputs(max_series=3), st.sampled_from([-5, 1, 3, 19]))
def test_round_trip_at_any_zstd_level(inp: Input, level: int) -> None:
    assert_same(decode_frame(encode(inp, level)), inp)


@MORE
@given(st.lists(value_bits, min_size=1, max_size=64))
def test_one_series_of_any_bits_round_trips(bits: list[int]) -> None:
    n = len(bits)
    inp = Input(np.array([n]), np.arange(n, dtype=np.int64) * 15_000, f64(bits))
    assert_same(decode_frame(encode(inp)), inp)


@pytest.mark.parametrize(
    "timestamps",
    [
        [I64_MIN, I64_MAX, I64_MIN, I64_MAX],  # every delta and delta-of-delta wraps
        [I64_MAX, I64_MAX - 1, I64_MIN + 1, I64_MIN],
        [0, -1, 1, -(2**62), 2**62],
        [5, 5, 5, 5],  # duplicates
        [40, 30, 20, 10],  # decreasing
    ],
)
def test_extreme_and_unsorted_timestamps_round_trip(timestamps: list[int]) -> None:
    n = len(timestamps)
    # Two series, so that the first timestamps are delta-coded across series too.
    ts = np.array(timestamps + timestamps[::-1], dtype=np.int64)
    inp = Input(np.array([n, n]), ts, np.arange(2 * n, dtype=np.float64))
    assert_same(decode_frame(encode(inp)), inp)


def test_every_special_value_in_every_position_round_trips() -> None:
    specials = f64(SPECIAL_BITS)
    n = len(specials)
    # Series k is the specials rotated by k, so each special is first, last and in between.
    vals = np.concatenate([np.roll(specials, k) for k in range(n)])
    inp = Input(np.full(n, n), np.arange(n * n, dtype=np.int64), vals)
    assert_same(decode_frame(encode(inp)), inp)


def test_empty_frame() -> None:
    empty = Input(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))
    buf = encode(empty)
    assert buf[:2] == MAGIC and buf[2] == VERSION
    d = decode_frame(buf)
    assert_same(d, empty)
    assert d.offsets().tolist() == [0]
    info = inspect_frame(buf)
    assert (info.n_series, info.n_samples, len(info.modes)) == (0, 0, 0)


def test_single_sample_series_and_offsets() -> None:
    inp = Input(np.array([1, 3, 1]), np.array([7, 1, 2, 3, -7]), np.array([1.5, 2, 3, 4, np.nan]))
    d = decode_frame(encode(inp))
    assert_same(d, inp)
    assert d.offsets().tolist() == [0, 1, 4, 5]


def test_decode_accepts_any_buffer_and_returns_writable_arrays() -> None:
    inp = Input(np.array([2]), np.array([1, 2]), np.array([0.5, 0.25]))
    buf = encode(inp)
    for b in (buf, bytearray(buf), memoryview(buf), np.frombuffer(buf, np.uint8).data):
        d = decode_frame(b)
        assert_same(d, inp)
    d.values[0] = 9.0
    d.timestamps[0] = 9
    assert_same(decode_frame(buf), inp)


@pytest.mark.parametrize(
    "counts, n_ts, n_vals",
    [
        ([2, 2], 3, 3),  # counts do not sum to the columns
        ([2], 2, 3),  # columns differ in length
        ([0, 2], 2, 2),  # empty series
        ([-1, 3], 2, 2),
        ([2**62, 2**62, 2**62, 2**62, 2], 2, 2),  # sums to 2 modulo 2**64
        ([], 1, 1),  # samples without series
    ],
)
def test_encode_rejects_inconsistent_counts(counts: list[int], n_ts: int, n_vals: int) -> None:
    with pytest.raises(ValueError, match="counts"):
        encode_frame(
            np.array(counts, dtype=np.int64), np.zeros(n_ts, np.int64), np.zeros(n_vals)
        )


def test_encode_rejects_two_dimensional_columns() -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        encode_frame(np.array([4]), np.zeros((2, 2), np.int64), np.zeros(4))


# --- value modes ---------------------------------------------------------------------------


def one_series_modes(values: np.ndarray) -> tuple[int, int]:
    n = len(values)
    inp = Input(np.array([n]), np.arange(n, dtype=np.int64) * 15_000, values)
    buf = encode(inp)
    assert_same(decode_frame(buf), inp)
    [mode] = modes_of(buf)
    return mode


rng = np.random.default_rng(20261122)
WALK = np.cumsum(rng.integers(-300, 301, 480))


@pytest.mark.parametrize(
    "name, values, expected",
    [
        ("constant", np.full(480, 42.0), (MODE_DECIMAL_DELTA, 0)),
        ("constant zero", np.zeros(480), (MODE_DECIMAL_DELTA, 0)),
        ("steady counter", 1e6 + 150.0 * np.arange(480), (MODE_DECIMAL_DOD, 0)),
        ("steady decimal counter", 1000 + 0.25 * np.arange(480), (MODE_DECIMAL_DOD, 2)),
        ("gauge, 2 decimals", np.round(50 + WALK / 100, 2), (MODE_DECIMAL_DELTA, 2)),
        ("gauge, 1 decimal", WALK / 10.0, (MODE_DECIMAL_DELTA, 1)),
        ("noisy gauge, 3 decimals", np.round(rng.normal(0, 5, 480), 3), (MODE_DECIMAL_DELTA, 3)),
        ("integer gauge", WALK.astype(np.float64), (MODE_DECIMAL_DELTA, 0)),
        ("random floats", rng.random(480), (MODE_XOR, 0)),
        ("with a NaN", np.r_[1.0, np.nan, 2.0], (MODE_XOR, 0)),
        ("with a stale marker", np.r_[1.0, f64([STALE_NAN_BITS]), 2.0], (MODE_XOR, 0)),
        ("with +Inf", np.r_[1.0, np.inf], (MODE_XOR, 0)),
        ("with -0.0", np.r_[1.0, -0.0, 2.0], (MODE_XOR, 0)),
        ("beyond 2**53", np.r_[2.0**53, 2.0**53 + 2], (MODE_XOR, 0)),
        ("needs 17 digits", np.r_[0.1 + 0.2, 0.5], (MODE_XOR, 0)),
        ("subnormal", f64([1, 2, 3]), (MODE_XOR, 0)),
        # Each value is a decimal at its own exponent (1 and 15), but 1234.5 * 10**15 is past
        # the mantissa limit: no common exponent exists, so the series falls back to XOR.
        ("no common exponent", np.r_[1234.5, 1e-15], (MODE_XOR, 0)),
        ("largest exponent", np.r_[5e-15, 1e-15, 3e-15], (MODE_DECIMAL_DELTA, 15)),
        ("one sample", np.r_[3.5], (MODE_DECIMAL_DELTA, 1)),
    ],
)
def test_value_mode_fits_the_data(name: str, values: np.ndarray, expected: tuple[int, int]) -> None:
    assert one_series_modes(np.asarray(values, dtype=np.float64)) == expected


def test_exponent_is_the_smallest_that_every_value_needs() -> None:
    # Values rounded to two decimals, as exporters print them: every one is exact at
    # exponent <= 2, even those whose product with 10**e is not an integer in float64
    # (1.1 * 10 == 11.000000000000002).
    vals = np.round(rng.normal(50, 10, 1000), 2)
    assert one_series_modes(vals)[1] == 2
    assert one_series_modes(np.array([1.1, 2.2, 3.3]))[1] == 1
    assert one_series_modes(np.array([0.07, 0.5, 3.0]))[1] == 2


def test_modes_are_chosen_per_series_in_a_mixed_frame() -> None:
    n = 100
    columns = [
        (np.full(n, 7.0), (MODE_DECIMAL_DELTA, 0)),
        (np.arange(n) * 60.0, (MODE_DECIMAL_DOD, 0)),
        (rng.random(n), (MODE_XOR, 0)),
        (np.round(20 + np.cumsum(rng.normal(0, 1, n)), 1), (MODE_DECIMAL_DELTA, 1)),
        (np.r_[rng.random(n - 1), f64([STALE_NAN_BITS])], (MODE_XOR, 0)),
    ]
    vals = np.concatenate([c for c, _ in columns])
    inp = Input(np.full(len(columns), n), np.tile(np.arange(n) * 15_000, len(columns)), vals)
    buf = encode(inp)
    assert_same(decode_frame(buf), inp)
    assert modes_of(buf) == [m for _, m in columns]


def test_constant_regular_series_compress_to_almost_nothing() -> None:
    s, n = 1000, 120
    ts = (1_700_000_000_000 + np.arange(s)[:, None] * 7 + 15_000 * np.arange(n)).ravel()
    inp = Input(np.full(s, n), ts, np.repeat(np.arange(s) % 3, n).astype(np.float64))
    buf = encode(inp)
    assert_same(decode_frame(buf), inp)
    info = inspect_frame(buf)
    assert info.widths[2] == 2  # dod column: 0 except the interval at each series' 2nd sample
    assert info.widths[4] == 0  # every later value repeats the first: all-zero column
    assert len(buf) < 0.05 * s * n  # under 0.05 bytes per sample


# --- damaged frames ------------------------------------------------------------------------


def sample_frames() -> list[bytes]:
    """Frames exercising every part of the format: all three modes, ragged and equal counts."""
    mixed = Input(
        np.array([3, 1, 4]),
        np.array([10, 20, 30, 5, 100, 200, 300, 400], dtype=np.int64),
        np.r_[1.5, 2.5, 3.5, f64([STALE_NAN_BITS]), 0.0, 60.0, 120.0, 180.0],
    )
    counters = Input(np.array([4, 4]), np.arange(8, dtype=np.int64), np.arange(8.0) * 10)
    floats = Input(np.array([5]), np.arange(5, dtype=np.int64), rng.random(5))
    empty = Input(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    return [encode(i) for i in (mixed, counters, floats, empty)]


FRAMES = sample_frames()


def assert_rejected(buf: bytes) -> None:
    with pytest.raises(CorruptionError) as exc:
        decode_frame(buf, where="blk/frame")
    assert exc.value.path == "blk/frame" and exc.value.detail
    with pytest.raises(CorruptionError):
        inspect_frame(buf)


def test_every_single_byte_change_is_detected() -> None:
    for buf in FRAMES:
        for pos in range(len(buf)):
            for mask in (0x01, 0x80, 0xFF):
                bad = bytearray(buf)
                bad[pos] ^= mask
                assert_rejected(bytes(bad))


@MORE
@given(st.sampled_from(FRAMES), st.data())
def test_any_byte_flip_raises_corruption_error(buf: bytes, data: st.DataObject) -> None:
    pos = data.draw(st.integers(0, len(buf) - 1))
    mask = data.draw(st.integers(1, 255))
    bad = bytearray(buf)
    bad[pos] ^= mask
    assert_rejected(bytes(bad))


def test_every_truncation_and_extension_is_detected() -> None:
    for buf in FRAMES:
        for end in range(len(buf)):
            assert_rejected(buf[:end])
        for extra in (b"\x00", b"\xff" * 7, buf):
            assert_rejected(buf + extra)


def test_header_fields_are_all_checked() -> None:
    buf = FRAMES[0]
    magic, version, flags, raw_len, crc = HEADER.unpack_from(buf)
    payload = buf[HEADER.size :]
    for fields in [
        (b"XF", version, flags, raw_len, crc),
        (magic, VERSION + 1, flags, raw_len, crc),
        (magic, version, 1, raw_len, crc),  # flags are reserved and must be 0
        (magic, version, flags, raw_len + 1, crc),
        (magic, version, flags, raw_len - 1, crc),
        (magic, version, flags, 0, crc),
        (magic, version, flags, 2**32 - 1, crc),
        (magic, version, flags, raw_len, crc ^ 1),
    ]:
        assert_rejected(HEADER.pack(*fields) + payload)


def reframe(body: bytes, *, content_size: bool = True) -> bytes:
    """Wrap a (possibly damaged) body in a frame with a valid header and checksum."""
    params = zstandard.ZstdCompressionParameters.from_level(3, write_content_size=content_size)
    payload = zstandard.ZstdCompressor(compression_params=params).compress(body)
    return HEADER.pack(MAGIC, VERSION, 0, len(body), zlib.crc32(payload)) + payload


def body_of(buf: bytes) -> bytes:
    raw_len = HEADER.unpack_from(buf)[3]
    return zstandard.ZstdDecompressor().decompress(buf[HEADER.size :], max_output_size=raw_len)


def test_reframed_body_decodes() -> None:
    for buf in FRAMES:
        a, b = decode_frame(buf), decode_frame(reframe(body_of(buf)))
        assert a.counts.tolist() == b.counts.tolist()
        assert a.values.view(np.uint64).tolist() == b.values.view(np.uint64).tolist()


def test_body_without_declared_size_is_rejected() -> None:
    assert_rejected(reframe(body_of(FRAMES[0]), content_size=False))


def decode_or_reject(buf: bytes) -> None:
    """Decode a frame whose checksum is right but whose body may not make sense."""
    try:
        d = decode_frame(buf)
    except CorruptionError:
        return
    assert len(d.timestamps) == len(d.values) == int(d.counts.sum())
    assert (d.counts > 0).all()


@MORE
@given(st.sampled_from(FRAMES[:3]), st.data())
def test_damaged_body_with_valid_checksum_never_escapes_as_another_error(
    buf: bytes, data: st.DataObject
) -> None:
    # Beyond what the checksum guarantees: the body's own structure is validated, so a
    # writer bug or a damage that passes CRC32 is still reported as corruption.
    body = bytearray(body_of(buf))
    pos = data.draw(st.integers(0, len(body) - 1))
    body[pos] ^= data.draw(st.integers(1, 255))
    decode_or_reject(reframe(bytes(body)))


def test_every_body_truncation_with_valid_checksum_is_rejected() -> None:
    for buf in FRAMES:
        body = body_of(buf)
        for end in range(len(body)):
            assert_rejected(reframe(body[:end]))
        assert_rejected(reframe(body + b"\x00"))


def _rejected_with(buf: bytes, words: str) -> None:
    with pytest.raises(CorruptionError) as exc:
        decode_frame(buf, where="blk/frame")
    assert words in exc.value.detail, exc.value.detail


def test_each_structural_check_rejects_its_damage() -> None:
    # One series of whole numbers (decimal), one of arbitrary floats (XOR), 3 samples each.
    buf = encode_frame(np.array([3, 3]), np.arange(6) * 1000, np.array([1.0, 2, 3, 0.1, 0.7, 1e-300]))
    body = body_of(buf)
    info = np.zeros(fb.INFO_SLOTS, dtype=np.int64)
    s, n = struct.unpack_from("<II", body)
    fb.read_columns(np.frombuffer(body, np.uint8), s, n, np.empty(s, np.int64), np.empty(s, np.int64),
                    np.empty(s, np.int64), np.empty(s, np.uint64), info)
    assert info[fb.ERROR] == 0
    modes = int(info[fb.MODES_AT])
    assert body[modes] in (MODE_DECIMAL_DELTA, MODE_DECIMAL_DOD) and body[modes + 1] == MODE_XOR
    assert body[modes + 2] == body[modes + 3] == 0  # exponents: whole numbers; XOR

    def damaged(at: int, byte: int) -> bytes:
        b = bytearray(body)
        b[at] = byte
        return reframe(bytes(b))

    _rejected_with(damaged(modes, 3), "unknown value mode 3")
    _rejected_with(damaged(modes + 2, 16), "decimal exponent 16")
    _rejected_with(damaged(modes + 3, 1), "decimal exponent 1")  # on the XOR series
    _rejected_with(damaged(8, 9), "width 9")  # the counts column's width byte
    _rejected_with(damaged(9, 4), "do not add up")  # first count 2 (zigzag 4): 5 of 6
    _rejected_with(damaged(9, 0), "do not add up")  # a count of 0
    _rejected_with(reframe(struct.pack("<II", 7, 6) + body[8:]), "more series than samples")
    _rejected_with(reframe(body + b"\x00"), "1 bytes left over")


@given(
    st.lists(st.integers(1, 40), min_size=1, max_size=12),
    st.data(),
)
def test_selective_decode_equals_slicing_the_full_decode(counts: list[int], data: st.DataObject) -> None:
    rng = np.random.default_rng(len(counts) * 7919 + sum(counts))
    c = np.array(counts, dtype=np.int64)
    n = int(c.sum())
    ts = np.cumsum(rng.integers(1, 30_000, n)).astype(np.int64)
    kinds = rng.integers(0, 3, len(c))
    vals = np.concatenate(
        [
            np.cumsum(rng.integers(0, 9, k)).astype(np.float64) if kind == 0
            else np.round(rng.random(k) * 100, 2) if kind == 1
            else rng.random(k)
            for k, kind in zip(counts, kinds)
        ]
    )
    frame = encode_frame(c, ts, vals)
    full = decode_frame(frame)
    chosen = sorted(data.draw(st.sets(st.integers(0, len(c) - 1))))
    select = np.array(chosen, dtype=np.int64)
    part = decode_frame(frame, select=select)
    offsets = full.offsets()
    idx = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in chosen]) if chosen else np.zeros(0, dtype=np.int64)
    assert part.counts.tolist() == c[select].tolist()
    assert part.timestamps.tolist() == full.timestamps[idx].tolist()
    assert part.values.view(np.uint64).tolist() == full.values[idx].view(np.uint64).tolist()


@given(
    st.lists(st.lists(st.integers(-50, 50), min_size=1, max_size=10), min_size=1, max_size=6),
    st.integers(-60, 60),
    st.integers(0, 80),
)
def test_time_range_decode_keeps_exactly_the_samples_inside(
    series: list[list[int]], mint: int, width: int
) -> None:
    # Timestamps in any order (the codec allows it); values of all three modes.
    _check_time_range_decode(series, mint, width)


@given(
    # At least three series: values of all three modes (see `_check_time_range_decode`).
    st.lists(st.lists(st.integers(-400, 400), min_size=1, max_size=300), min_size=3, max_size=5),
    st.integers(-500, 500),
    st.integers(0, 900),
)
def test_time_range_decode_of_increasing_timestamps_keeps_exactly_the_samples_inside(
    series: list[list[int]], mint: int, width: int
) -> None:
    # The usual case, where the decoder finds the range by bisection: long series, and
    # ranges that cut either end, both, neither, or fall between two samples.
    _check_time_range_decode([sorted(s) for s in series], mint, width)


def _check_time_range_decode(series: list[list[int]], mint: int, width: int) -> None:
    counts = np.array([len(s) for s in series], dtype=np.int64)
    ts = np.array([t for s in series for t in s], dtype=np.int64)
    vals = np.concatenate([np.array(s, dtype=np.float64) * (0.5 if i % 3 == 1 else 1.0) + (
        np.pi if i % 3 == 2 else 0.0) for i, s in enumerate(series)])
    frame = encode_frame(counts, ts, vals)
    maxt = mint + width
    got = decode_frame(frame, mint=mint, maxt=maxt)
    inside = (ts >= mint) & (ts <= maxt)
    owner = np.repeat(np.arange(len(series)), counts)
    assert got.counts.tolist() == np.bincount(owner[inside], minlength=len(series)).tolist()
    assert got.timestamps.tolist() == ts[inside].tolist()
    assert got.values.view(np.uint64).tolist() == vals[inside].view(np.uint64).tolist()

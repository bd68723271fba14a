"""The frame codec: the samples of many series over one time slice, encoded column by column.

A frame holds, for S series in a fixed order known to the caller, each series' samples
(``counts[s]`` of them) as one concatenated timestamp column and one value column. The
head seals recent samples into frames; blocks store their data as frames. Encoding is
whole-array numpy work; decoding reads the small per-series columns with numpy and
integrates the long ones in one compiled pass (`vigilops.tsdb.chunks.frame_integrate`).
There is no Python loop over samples or series.

Encoding (see ``tsdb/docs/format/frame.md`` for the bytes):

* timestamps: per series the first timestamp, then delta-of-delta (regular scrapes give
  all zeros);
* values, per series, the cheapest exact representation of three:
  ``DECIMAL_DELTA`` / ``DECIMAL_DOD`` when every value is ``m / 10**e`` for an integer
  mantissa ``m`` (``|m| < 2**53``) and the division gives back the very same float64 bits,
  storing the mantissas' deltas (gauges) or delta-of-deltas (steady counters); otherwise
  ``XOR``, the float64 bits XORed with the previous value's bits. Every float64, including
  NaN payloads, ``-0.0`` and the staleness marker, round-trips bit-exactly;
* each integer column is zigzag-coded, cut to the byte width its largest element needs and
  byte-shuffled (all first bytes, then all second bytes, …), so that zstd sees long runs;
* the whole body is zstd-compressed and carries a CRC32.

Integer arithmetic on timestamps and mantissas wraps modulo 2**64 on both sides, so any
int64 timestamps, in any order, round-trip. The decoder checks every header field, the
checksum and the body's structure, and reports any damage as `CorruptionError` only.
"""

from __future__ import annotations

import struct
import threading
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import zstandard

from ..errors import CorruptionError
from . import frame_body as fb
from .frame_integrate import SeriesColumns, integrate, integrate_into

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
U8 = npt.NDArray[np.uint8]
F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

MAGIC = b"VF"
VERSION = 1

MODE_DECIMAL_DELTA = 0
MODE_DECIMAL_DOD = 1
MODE_XOR = 2

#: Decimal exponents tried, 10**0 … 10**MAX_DECIMAL_EXP. 10**22 is the largest exact
#: power of ten in float64; mantissas must stay below 2**53, so larger exponents only
#: help for values smaller than about 1e-6, which are rare in monitoring data.
MAX_DECIMAL_EXP = 15
_POW10 = np.array([10.0**e for e in range(MAX_DECIMAL_EXP + 1)], dtype=np.float64)
_MANTISSA_LIMIT = float(2**53)
_NEG_ZERO_BITS = np.uint64(0x8000000000000000)
_ABS_MASK = np.uint64(0x7FFFFFFFFFFFFFFF)
_MANTISSA_LIMIT_BITS = np.uint64(0x4340000000000000)  # the bits of 2.0**53

_MIN_INT64 = -(2**63)
_MAX_INT64 = 2**63 - 1

#: Sample and series counts are stored as uint32.
MAX_SAMPLES = 2**32 - 1

# header: magic, version, flags (reserved, 0), raw body length, crc32 of the compressed body.
_HEADER = struct.Struct("<2sBBII")
_BODY_HEAD = struct.Struct("<II")  # n_series, n_samples

# zstandard's (de)compressor objects must never be used by two threads at once (blocks are
# encoded on a thread pool, queries decode on executor threads): one set per thread.
_local = threading.local()


@dataclass(frozen=True)
class DecodedFrame:
    """The content of a frame: ``counts[s]`` samples per series, concatenated in order."""

    counts: I64
    timestamps: I64
    values: F64
    #: The series decoded are all stored in a decimal mode: no staleness marker among them.
    stale_free: bool = False

    def offsets(self) -> I64:
        """Start offset of every series in the columns, plus the total at the end."""
        out = np.zeros(len(self.counts) + 1, dtype=np.int64)
        np.cumsum(self.counts, out=out[1:])
        return out


@dataclass(frozen=True)
class FrameInfo:
    """How a frame is laid out, for tests, statistics and debugging (see `inspect_frame`).

    `modes` and `exponents` hold one entry per series (a ``MODE_*`` constant and the
    decimal exponent, 0 for XOR series). `widths` are the byte widths of the five integer
    columns in body order: counts, first timestamps, timestamp delta-of-deltas, first
    values, other values.
    """

    n_series: int
    n_samples: int
    body_len: int
    compressed_len: int
    modes: U8
    exponents: U8
    widths: tuple[int, ...]


def _compressor(level: int) -> zstandard.ZstdCompressor:
    cache: dict[int, zstandard.ZstdCompressor] | None = getattr(_local, "compressors", None)
    if cache is None:
        cache = _local.compressors = {}
    c = cache.get(level)
    if c is None:
        c = cache[level] = zstandard.ZstdCompressor(level=level)
    return c


def _decompressor() -> zstandard.ZstdDecompressor:
    d: zstandard.ZstdDecompressor | None = getattr(_local, "decompressor", None)
    if d is None:
        d = _local.decompressor = zstandard.ZstdDecompressor()
    return d


# --- integer helpers -------------------------------------------------------------------


def _zigzag_(x: I64, scratch: I64 | None = None) -> U64:
    """Zigzag-code `x` in place (0, -1, 1, -2 … → 0, 1, 2, 3 …) and return it as uint64."""
    sign = np.right_shift(x, 63, out=scratch)
    np.left_shift(x, 1, out=x)
    np.bitwise_xor(x, sign, out=x)
    return x.view(np.uint64)


def _offsets(counts: I64) -> I64:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


class _Layout:
    """Where each series starts in the concatenated columns.

    Elements that are not the first of their series ("the rest") are stored in their own
    columns; `take_rest` moves them from full-length to rest-length arrays, as a reshape
    when every series has the same number of samples.
    """

    __slots__ = ("counts", "starts", "n", "s", "_uniform", "_rest")

    def __init__(self, counts: I64, n: int) -> None:
        self.counts = counts
        self.s = len(counts)
        self.n = n
        self.starts: I64 = _offsets(counts)[:-1]
        self._uniform = self.s > 0 and int(counts.min()) == int(counts.max())
        self._rest: Mask | None = None

    def _rest_mask(self) -> Mask:
        if self._rest is None:
            self._rest = np.ones(self.n, dtype=bool)
            self._rest[self.starts] = False
        return self._rest

    def take_rest(self, x: U64) -> U64:
        if self._uniform:
            c = self.n // self.s
            return x.reshape(self.s, c)[:, 1:].reshape(self.s * (c - 1))
        return x[self._rest_mask()]

    def elements(self, series: Mask) -> Mask:
        """Element mask of the selected series."""
        return np.repeat(series, self.counts)


# --- columns ---------------------------------------------------------------------------


def _width(u: U64) -> int:
    """Bytes needed by the largest element of `u` (0 for an all-zero or empty column)."""
    return (int(u.max()).bit_length() + 7) // 8 if len(u) else 0


def _put_column(dst: U8, pos: int, u: U64) -> int:
    """Write a width byte and the byte-shuffled low bytes of `u` at `pos`; return the end."""
    width = _width(u)
    dst[pos] = width
    pos += 1
    if width:
        n = len(u)
        le = np.ascontiguousarray(u, dtype="<u8").view(np.uint8).reshape(n, 8)
        planes = dst[pos : pos + width * n].reshape(width, n)
        for j in range(width):
            planes[j] = le[:, j]
        pos += width * n
    return pos


# --- encoding --------------------------------------------------------------------------


def _min_exponents(v: F64) -> npt.NDArray[np.int8]:
    """Per value, the smallest exponent 1…MAX_DECIMAL_EXP that gives back its bits, or -1.

    The values must be finite, not -0.0 and below 2**53 in magnitude.
    """
    out = np.full(len(v), -1, dtype=np.int8)
    idx = np.arange(len(v))
    for e in range(1, MAX_DECIMAL_EXP + 1):
        if not len(idx):
            break
        p = _POW10[e]
        m = np.rint(v * p)
        ok = (np.abs(m) < _MANTISSA_LIMIT) & ((m / p).view(np.uint64) == v.view(np.uint64))
        out[idx[ok]] = e
        keep = ~ok
        idx, v = idx[keep], v[keep]
    return out


def _decimal_exponents(vals: F64, layout: _Layout) -> I64:
    """Per series, the smallest exponent that makes all its values exact decimals, or -1.

    A value qualifies at exponent ``e`` when ``rint(v * 10**e) / 10**e`` has v's bits and
    the mantissa is below 2**53. -0.0, NaN and infinities never qualify (the decoder's
    integer mantissa cannot carry them). The series' exponent is the largest its values
    need; the caller re-checks exactness at that exponent.
    """
    s, starts = layout.s, layout.starts
    if s == 0:
        return np.zeros(0, dtype=np.int64)
    # Candidates are told apart by their bits: float arithmetic or comparisons on a
    # signalling NaN would raise the invalid-operation flag (a numpy RuntimeWarning).
    bits = vals.view(np.uint64)
    cand = (bits & _ABS_MASK) < _MANTISSA_LIMIT_BITS
    cand &= bits != _NEG_ZERO_BITS
    with np.errstate(invalid="ignore"):
        int_ok = np.rint(vals) == vals
    int_ok &= cand
    if int_ok.all():
        return np.zeros(s, dtype=np.int64)
    alive = np.logical_and.reduceat(cand, starts)
    todo = alive & ~np.logical_and.reduceat(int_ok, starts)
    elem_exp = int_ok.view(np.int8) - np.int8(1)  # 0 where an integer does, else -1
    if todo.any():
        pending_mask = layout.elements(todo)
        pending_mask &= ~int_ok
        pending = np.flatnonzero(pending_mask)
        # Probe the first and last pending value of every series first: one that has no
        # exponent at all rules its whole series out, which spares the loop over
        # exponents for series of arbitrary floats.
        lo = np.searchsorted(pending, layout.starts[todo])
        hi = np.searchsorted(pending, layout.starts[todo] + layout.counts[todo])
        probes = _min_exponents(vals[np.concatenate((pending[lo], pending[hi - 1]))])
        k = len(lo)
        dead = (probes[:k] < 0) | (probes[k:] < 0)
        if dead.any():
            pending = pending[~np.repeat(dead, hi - lo)]
        elem_exp[pending] = _min_exponents(vals[pending])
    series_max = np.maximum.reduceat(elem_exp, starts).astype(np.int64)
    series_min = np.minimum.reduceat(elem_exp, starts)
    series_max[series_min < 0] = -1
    return series_max


def _mantissas(vals: F64, series_exp: I64, layout: _Layout) -> I64:
    """Integer mantissas of the decimal series (0 elsewhere).

    Series where some value does not come back exactly at the series' exponent are
    switched to XOR by setting their entry of `series_exp` to -1.
    """
    n = layout.n
    mant = np.zeros(n, dtype=np.int64)
    for e in np.unique(series_exp[series_exp >= 0]).tolist():
        sel = series_exp == e
        whole = bool(sel.all())
        emask = None if whole else layout.elements(sel)
        v = vals if emask is None else vals[emask]
        if e == 0:
            # Every value of these series passed the integer test in _decimal_exponents.
            m = v.astype(np.int64)
        else:
            p = _POW10[e]
            mf = np.rint(v * p)
            exact = np.abs(mf) < _MANTISSA_LIMIT
            exact &= (mf / p).view(np.uint64) == v.view(np.uint64)
            if not exact.all():
                sub_starts = _offsets(layout.counts[sel])[:-1]
                broken = np.logical_or.reduceat(~exact, sub_starts)
                series_exp[np.flatnonzero(sel)[broken]] = -1
                mf[~exact] = 0.0
            m = mf.astype(np.int64)
        if emask is None:
            mant = m
        else:
            mant[emask] = m
    return mant


def _encode_values(vals: F64, layout: _Layout) -> tuple[U8, U8, U64]:
    """Choose each series' value mode; return modes, exponents and the value stream.

    The stream holds, per element, the zigzagged mantissa delta or delta-of-delta (the
    first element of a series: the mantissa itself) or, for XOR series, the raw XOR word.
    """
    n, s = layout.n, layout.s
    starts, counts = layout.starts, layout.counts
    mode = np.full(s, MODE_XOR, dtype=np.uint8)
    series_exp = _decimal_exponents(vals, layout)
    stream = np.zeros(n, dtype=np.int64)
    if s and series_exp.max() >= 0:
        mant = _mantissas(vals, series_exp, layout)
        dec = series_exp >= 0
        # Deltas, with the first element of each series holding its mantissa.
        md = stream
        md[0] = mant[0]
        np.subtract(mant[1:], mant[:-1], out=md[1:])
        md[starts] = mant[starts]
        mdd = np.empty(n, dtype=np.int64)
        mdd[0] = md[0]
        np.subtract(md[1:], md[:-1], out=mdd[1:])
        mdd[starts] = mant[starts]
        second = starts[counts > 1] + 1
        mdd[second] = md[second]
        # Cost of each mode: the sum of the magnitudes it stores (in float64, so that long
        # series of large mantissas cannot overflow).
        mag = np.abs(md)
        mag[starts] = 0
        cost_delta = np.add.reduceat(mag, starts, dtype=np.float64)
        np.abs(mdd, out=mag)
        mag[starts] = 0
        cost_dod = np.add.reduceat(mag, starts, dtype=np.float64)
        use_dod = dec & (cost_dod < cost_delta)
        mode[dec] = MODE_DECIMAL_DELTA
        mode[use_dod] = MODE_DECIMAL_DOD
        if use_dod.any():
            np.copyto(md, mdd, where=layout.elements(use_dod))
        _zigzag_(md, scratch=mdd)
    xor = mode == MODE_XOR
    out = stream.view(np.uint64)
    if xor.any():
        bits = vals.view(np.uint64)
        words = np.empty(n, dtype=np.uint64)
        words[0] = bits[0]
        np.bitwise_xor(bits[1:], bits[:-1], out=words[1:])
        words[starts] = bits[starts]
        if xor.all():
            out = words
        else:
            np.copyto(out, words, where=layout.elements(xor))
    exps = np.where(xor, 0, series_exp).astype(np.uint8)
    return mode, exps, out


def encode_frame(counts: I64, timestamps: I64, values: F64, level: int = 3) -> bytes:
    """Encode series samples; ``counts`` gives each series' sample count (all > 0).

    Within a series, timestamps should be increasing (any order round-trips, sorted ones
    compress well). `level` is the zstd level. Returns the frame bytes, header and checksum
    included. Raises ValueError if the counts do not match the columns or there are more
    than `MAX_SAMPLES` samples.
    """
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    ts = np.ascontiguousarray(timestamps, dtype=np.int64)
    vals = np.ascontiguousarray(values, dtype=np.float64)
    if counts.ndim != 1 or ts.ndim != 1 or vals.ndim != 1:
        raise ValueError("frame columns must be one-dimensional")
    n, s = len(ts), len(counts)
    if n > MAX_SAMPLES:
        raise ValueError(f"a frame holds at most {MAX_SAMPLES} samples, got {n}")
    # Bounding every count before summing keeps the sum from wrapping around.
    if (
        len(vals) != n
        or (s and (int(counts.min()) <= 0 or int(counts.max()) > n - s + 1))
        or int(counts.sum()) != n
    ):
        raise ValueError("frame counts must be positive and sum to the column lengths")
    layout = _Layout(counts, n)
    starts = layout.starts

    cols: list[U64] = [_zigzag_(counts.copy())]
    # Timestamps: first per series (delta-coded across series), then delta-of-delta.
    firsts = ts[starts]
    fd = np.empty(s, dtype=np.int64)
    fd[:1] = firsts[:1]
    np.subtract(firsts[1:], firsts[:-1], out=fd[1:])
    cols.append(_zigzag_(fd))
    d = np.empty(n, dtype=np.int64)
    dod = np.empty(n, dtype=np.int64)
    if n:
        d[0] = 0
        np.subtract(ts[1:], ts[:-1], out=d[1:])
        d[starts] = 0
        dod[0] = 0
        np.subtract(d[1:], d[:-1], out=dod[1:])
    cols.append(layout.take_rest(_zigzag_(dod, scratch=d)))
    del d, dod

    mode, exps, stream = _encode_values(vals, layout)
    # XOR words are bit patterns, not numbers: they are stored without zigzag.
    tail = [stream[starts], layout.take_rest(stream)]

    sizes = [1 + _width(c) * len(c) for c in cols + tail]
    body = np.empty(_BODY_HEAD.size + sum(sizes) + 2 * s, dtype=np.uint8)
    _BODY_HEAD.pack_into(body, 0, s, n)  # type: ignore[arg-type]
    pos = _BODY_HEAD.size
    for c in cols:
        pos = _put_column(body, pos, c)
    body[pos : pos + s] = mode
    body[pos + s : pos + 2 * s] = exps
    pos += 2 * s
    for c in tail:
        pos = _put_column(body, pos, c)
    assert pos == len(body)
    payload = _compressor(level).compress(body.data)
    return _HEADER.pack(MAGIC, VERSION, 0, len(body), zlib.crc32(payload)) + payload


# --- decoding --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Body:
    """The columns of a frame body, read and checked; the two long ones ("rest" timestamps
    and values: every sample but each series' first) still as byte planes."""

    s: int
    n: int
    counts: I64
    starts: I64  # where each series' first sample is in the full columns
    first_ts: I64  # absolute, per series
    ts_planes: U8  # (width, n - s)
    modes: U8
    exps: U8
    first_vals: U64
    val_planes: U8  # (width, n - s)
    widths: tuple[int, ...]


def _read_body(body: memoryview) -> _Body:
    """Read and check the columns (see the module docstring for the layout)."""
    s, n = _BODY_HEAD.unpack_from(body)
    if s > len(body):  # every series takes a byte of the counts column at least
        raise ValueError(f"{s} series cannot fit in a {len(body)}-byte body")
    data = np.frombuffer(body, dtype=np.uint8)
    counts = np.empty(s, dtype=np.int64)
    starts = np.empty(s, dtype=np.int64)
    first_ts = np.empty(s, dtype=np.int64)
    first_vals = np.empty(s, dtype=np.uint64)
    info = np.zeros(fb.INFO_SLOTS, dtype=np.int64)
    fb.read_columns(data, s, n, counts, starts, first_ts, first_vals, info)
    got = info.tolist()
    error, arg = got[fb.ERROR], got[fb.ERROR_ARG]
    if error:
        raise ValueError(f"{s} series, {n} samples: " + fb.ERRORS[error].format(arg))
    rest = n - s
    ts_w, val_w, modes_at = got[fb.TS_WIDTH], got[fb.VAL_WIDTH], got[fb.MODES_AT]
    ts_at, val_at = got[fb.TS_PLANES_AT], got[fb.VAL_PLANES_AT]
    return _Body(
        s,
        n,
        counts,
        starts,
        first_ts,
        data[ts_at : ts_at + ts_w * rest].reshape(ts_w, rest),
        data[modes_at : modes_at + s],
        data[modes_at + s : modes_at + 2 * s],
        first_vals,
        data[val_at : val_at + val_w * rest].reshape(val_w, rest),
        (got[fb.W_COUNTS], got[fb.W_FIRST_TS], ts_w, got[fb.W_FIRST_VALS], val_w),
    )


def _open(buf: bytes | bytearray | memoryview, where: str) -> tuple[memoryview, int]:
    """Check the header and checksum, decompress; return the body and the payload size."""
    mv = memoryview(buf)
    if mv.ndim != 1 or mv.format != "B":
        mv = mv.cast("B")
    if len(mv) < _HEADER.size:
        raise CorruptionError(where, f"frame of {len(mv)} bytes is shorter than its header")
    magic, version, flags, raw_len, crc = _HEADER.unpack_from(mv)
    if magic != MAGIC or version != VERSION:
        raise CorruptionError(where, f"bad frame magic/version {magic!r}/{version}")
    if flags != 0:
        raise CorruptionError(where, f"unknown frame flags {flags:#04x}")
    payload = mv[_HEADER.size :]
    found = zlib.crc32(payload)
    if found != crc:
        raise CorruptionError(where, f"frame checksum {found:#010x}, expected {crc:#010x}")
    try:
        size = zstandard.frame_content_size(payload)
        if size != raw_len:
            raise ValueError(f"compressed body declares {size} bytes, header {raw_len}")
        body = _decompressor().decompress(payload, max_output_size=raw_len)
    except (zstandard.ZstdError, ValueError) as exc:
        raise CorruptionError(where, f"undecodable frame body: {exc}") from None
    if len(body) != raw_len:
        raise CorruptionError(where, f"frame body of {len(body)} bytes, expected {raw_len}")
    return memoryview(body), len(payload)


@dataclass(frozen=True)
class OpenedFrame:
    """A frame checked, decompressed and read, with the series to integrate (`open_frame`):
    ``counts[j]`` samples for the ``j``-th selected series. `write_into` integrates them."""

    body: _Body
    select: I64
    counts: I64

    def write_into(self, dest: I64, out_ts: I64, out_vs: F64) -> None:
        """All samples of the selected series, series ``j`` at ``[dest[j], dest[j] +
        counts[j])`` of `out_ts` and `out_vs` (the caller sized and placed them)."""
        b, select = self.body, self.select
        if len(dest) != len(select) or (
            len(dest) and (int(dest.min()) < 0 or int((dest + self.counts).max()) > len(out_ts))
        ):
            raise IndexError("frame samples written outside the columns")
        integrate_into(b.ts_planes, b.val_planes, self.series(), _POW10, dest, out_ts, out_vs)

    def stale_free(self) -> bool:
        """Whether the selected series are all stored in a decimal mode, which cannot hold
        a NaN: then they hold no staleness marker."""
        return int(self.body.modes[self.select].max(initial=MODE_DECIMAL_DELTA)) < MODE_XOR

    def series(self) -> SeriesColumns:
        """The selected series and the frame's columns, for `frame_integrate`."""
        b = self.body
        return (self.select, b.starts, b.counts, b.first_ts, b.first_vals, b.modes, b.exps)


def open_frame(
    buf: bytes | bytearray | memoryview, where: str = "frame", select: I64 | None = None
) -> OpenedFrame:
    """Check, decompress and read a frame, not integrating its columns yet; raise
    `CorruptionError` naming `where` if it fails its checks. `select`: as `decode_frame`."""
    body, _ = _open(buf, where)
    try:
        b = _read_body(body)
        if select is None:
            select = np.arange(b.s, dtype=np.int64)
        else:
            # Sorted, so the first and last bound every position the compiled loop reads.
            select = np.ascontiguousarray(select, dtype=np.int64)
            if len(select) and (int(select[0]) < 0 or int(select[-1]) >= b.s):
                raise IndexError(f"series positions {select} outside the frame's {b.s} series")
        return OpenedFrame(b, select, b.counts[select])
    except (ValueError, IndexError, struct.error) as exc:
        raise CorruptionError(where, f"undecodable frame: {exc}") from None


def decode_frame(
    buf: bytes | bytearray | memoryview,
    where: str = "frame",
    select: I64 | None = None,
    mint: int = _MIN_INT64,
    maxt: int = _MAX_INT64,
) -> DecodedFrame:
    """Decode a frame; raise `CorruptionError` naming `where` if it fails its checks.

    With `select`, a sorted array of series positions in the frame, only those series are
    decoded (the result holds just them, in that order): the whole payload is still
    decompressed and checked, but the integration work is proportional to the selection.
    Only samples with timestamps in [`mint`, `maxt`] are returned (``counts`` then says how
    many each series kept, possibly 0). The returned arrays are owned by the caller.
    """
    opened = open_frame(buf, where, select)
    b = opened.body
    try:
        kept, ts, vs = integrate(
            b.ts_planes, b.val_planes, opened.series(), int(opened.counts.sum()), _POW10, mint, maxt
        )
        return DecodedFrame(kept, ts, vs, opened.stale_free())
    except (ValueError, IndexError, struct.error) as exc:
        raise CorruptionError(where, f"undecodable frame: {exc}") from None


def inspect_frame(buf: bytes | bytearray | memoryview, where: str = "frame") -> FrameInfo:
    """Describe a frame's layout without integrating its columns.

    Checks the frame like `decode_frame` and raises `CorruptionError` in the same cases.
    """
    body, payload_len = _open(buf, where)
    try:
        b = _read_body(body)
    except (ValueError, IndexError, struct.error) as exc:
        raise CorruptionError(where, f"undecodable frame: {exc}") from None
    return FrameInfo(
        n_series=b.s,
        n_samples=b.n,
        body_len=len(body),
        compressed_len=payload_len,
        modes=b.modes.copy(),
        exponents=b.exps.copy(),
        widths=b.widths,
    )

"""The frame codec: the samples of many series over one time slice, encoded column by column.

A frame holds, for S series in a fixed order known to the caller, each series' samples
(``counts[s]`` of them) as one concatenated timestamp column and one value column. The
head seals recent samples into frames; blocks store their data as frames. Every step is a
whole-array numpy operation: there is no Python loop over samples or series.

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
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import zstandard

from ..errors import CorruptionError

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]

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

# header: magic, version, flags, raw body length, crc32 of the compressed body.
_HEADER = struct.Struct("<2sBBII")
_BODY_HEAD = struct.Struct("<II")  # n_series, n_samples

_compressors: dict[int, zstandard.ZstdCompressor] = {}
_decompressor = zstandard.ZstdDecompressor()


@dataclass(frozen=True)
class DecodedFrame:
    """The content of a frame: ``counts[s]`` samples per series, concatenated in order."""

    counts: I64
    timestamps: I64
    values: F64

    def offsets(self) -> I64:
        """Start offset of every series in the columns, plus the total at the end."""
        out = np.zeros(len(self.counts) + 1, dtype=np.int64)
        np.cumsum(self.counts, out=out[1:])
        return out


def _compressor(level: int) -> zstandard.ZstdCompressor:
    c = _compressors.get(level)
    if c is None:
        c = _compressors[level] = zstandard.ZstdCompressor(level=level)
    return c


def _zigzag(x: I64) -> U64:
    return ((x << 1) ^ (x >> 63)).view(np.uint64)


def _unzigzag(u: U64) -> I64:
    low = (u & np.uint64(1)).view(np.int64)
    return (u >> np.uint64(1)).view(np.int64) ^ -low


def _put_column(out: list[bytes], u: U64) -> None:
    """Append a byte-width byte and the byte-shuffled low `width` bytes of each element."""
    top = int(u.max()) if len(u) else 0
    width = (top.bit_length() + 7) // 8
    out.append(bytes((width,)))
    if width:
        planes = u.astype("<u8", copy=False).view(np.uint8).reshape(-1, 8)[:, :width]
        out.append(np.ascontiguousarray(planes.T).tobytes())


def _get_column(body: memoryview, pos: int, n: int) -> tuple[U64, int]:
    width = body[pos]
    pos += 1
    out = np.zeros((n, 8), dtype=np.uint8)
    if width:
        size = n * width
        if width > 8 or pos + size > len(body):
            raise ValueError(f"column of {n} x {width} bytes overruns the frame")
        out[:, :width] = np.frombuffer(body, dtype=np.uint8, count=size, offset=pos).reshape(
            width, n
        ).T
        pos += size
    return out.view("<u8").reshape(n).astype(np.uint64, copy=False), pos


def _segment_starts(counts: I64) -> I64:
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts


def _segmented_cumsum(x: I64, counts: I64, starts: I64) -> I64:
    """Cumulative sum restarting at every series boundary (wrapping like int64)."""
    c = np.cumsum(x, dtype=np.int64)
    before = np.zeros(len(counts), dtype=np.int64)
    before[1:] = c[starts[1:] - 1]
    return c - np.repeat(before, counts)


def _decimal_exponents(values: F64, counts: I64, starts: I64) -> npt.NDArray[np.int64]:
    """Per series, the smallest exponent that makes all its values exact decimals, or -1."""
    n = len(values)
    exp = np.full(n, -1, dtype=np.int64)
    pending = np.flatnonzero(np.isfinite(values))
    for e in range(MAX_DECIMAL_EXP + 1):
        if not len(pending):
            break
        v = values[pending]
        scaled = v * _POW10[e]
        m = np.round(scaled)
        ok = (m == scaled) & (np.abs(m) < _MANTISSA_LIMIT)
        if e:
            ok &= (m / _POW10[e]).view(np.uint64) == v.view(np.uint64)
        else:
            ok &= m.view(np.uint64) == v.view(np.uint64)  # rejects -0.0
        exp[pending[ok]] = e
        pending = pending[~ok]
    # A series qualifies only if every one of its values has an exponent.
    bad = (exp < 0).astype(np.int64)
    series_bad = np.add.reduceat(bad, starts) > 0 if n else np.zeros(0, dtype=bool)
    series_exp = np.maximum.reduceat(exp, starts) if n else np.zeros(0, dtype=np.int64)
    series_exp[series_bad] = -1
    return series_exp


def encode_frame(counts: I64, timestamps: I64, values: F64, level: int = 3) -> bytes:
    """Encode series samples; ``counts`` gives each series' sample count (all > 0).

    Within a series, timestamps should be increasing (any order round-trips, sorted ones
    compress well). Returns the frame bytes, header and checksum included.
    """
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    ts = np.ascontiguousarray(timestamps, dtype=np.int64)
    vals = np.ascontiguousarray(values, dtype=np.float64)
    n, s = len(ts), len(counts)
    if len(vals) != n or int(counts.sum()) != n or (s and int(counts.min()) <= 0):
        raise ValueError("frame counts must be positive and sum to the column lengths")
    starts = _segment_starts(counts)
    is_start = np.zeros(n, dtype=bool)
    is_start[starts] = True
    rest = ~is_start

    out: list[bytes] = [_BODY_HEAD.pack(s, n)]
    _put_column(out, _zigzag(counts))

    # Timestamps: first per series (delta-coded across series), then delta-of-delta.
    firsts = ts[starts] if s else np.zeros(0, dtype=np.int64)
    _put_column(out, _zigzag(np.diff(firsts, prepend=np.int64(0))))
    d = np.diff(ts, prepend=np.int64(0))
    d[is_start] = 0
    dod = np.diff(d, prepend=np.int64(0))
    _put_column(out, _zigzag(dod[rest]))

    # Values.
    series_exp = _decimal_exponents(vals, counts, starts)
    decimal_series = series_exp >= 0
    mode = np.full(s, MODE_XOR, dtype=np.uint8)
    elem_exp = np.repeat(series_exp, counts)
    elem_decimal = elem_exp >= 0
    mant = np.zeros(n, dtype=np.int64)
    if elem_decimal.any():
        # A series' exponent is the largest its values need; check that every value still
        # round-trips at that exponent and fall back to XOR for series where one does not.
        e = elem_exp[elem_decimal]
        m = np.round(vals[elem_decimal] * _POW10[e])
        exact = (np.abs(m) < _MANTISSA_LIMIT) & (
            (m / _POW10[e]).view(np.uint64) == vals[elem_decimal].view(np.uint64)
        )
        mant[elem_decimal] = np.where(exact, m, 0).astype(np.int64)
        if not exact.all():
            broken = np.zeros(n, dtype=np.int64)
            broken[np.flatnonzero(elem_decimal)[~exact]] = 1
            series_exp[np.add.reduceat(broken, starts) > 0] = -1
            decimal_series = series_exp >= 0
    bits = vals.view(np.int64)
    # delta of mantissas, with the first of each series kept as it is
    md = np.diff(mant, prepend=np.int64(0))
    md[is_start] = mant[is_start]
    mdd = md.copy()
    mdd[rest] = np.diff(np.where(is_start, 0, md), prepend=np.int64(0))[rest]
    if s:
        cost_delta = np.add.reduceat(np.abs(md) * rest, starts)
        cost_dod = np.add.reduceat(np.abs(mdd) * rest, starts)
        mode[decimal_series] = np.where(
            cost_dod[decimal_series] < cost_delta[decimal_series],
            MODE_DECIMAL_DOD,
            MODE_DECIMAL_DELTA,
        )
    elem_mode = np.repeat(mode, counts)
    xored = bits ^ np.concatenate(([np.int64(0)], bits[:-1]))
    xored[is_start] = bits[is_start]
    stream = np.where(
        elem_mode == MODE_XOR, xored, np.where(elem_mode == MODE_DECIMAL_DOD, mdd, md)
    )
    out.append(mode.tobytes())
    out.append(np.where(decimal_series, series_exp, 0).astype(np.uint8).tobytes())
    xor_elem = elem_mode == MODE_XOR
    # XOR words are bit patterns, not numbers: they are stored without zigzag.
    firsts_v = stream[starts] if s else np.zeros(0, dtype=np.int64)
    first_xor = xor_elem[starts] if s else np.zeros(0, dtype=bool)
    _put_column(out, np.where(first_xor, firsts_v.view(np.uint64), _zigzag(firsts_v)))
    rest_stream = stream[rest]
    rest_xor = xor_elem[rest]
    _put_column(out, np.where(rest_xor, rest_stream.view(np.uint64), _zigzag(rest_stream)))

    body = b"".join(out)
    payload = _compressor(level).compress(body)
    return _HEADER.pack(MAGIC, VERSION, 0, len(body), zlib.crc32(payload)) + payload


def decode_frame(buf: bytes | memoryview, where: str = "frame") -> DecodedFrame:
    """Decode a frame; raise `CorruptionError` naming `where` if it fails its checks."""
    mv = memoryview(buf)
    if len(mv) < _HEADER.size:
        raise CorruptionError(where, f"frame of {len(mv)} bytes is shorter than its header")
    magic, version, _flags, raw_len, crc = _HEADER.unpack_from(mv)
    if magic != MAGIC or version != VERSION:
        raise CorruptionError(where, f"bad frame magic/version {magic!r}/{version}")
    payload = mv[_HEADER.size :]
    found = zlib.crc32(payload)
    if found != crc:
        raise CorruptionError(where, f"frame checksum {found:#010x}, expected {crc:#010x}")
    try:
        body = memoryview(_decompressor.decompress(payload, max_output_size=raw_len))
        return _decode_body(body)
    except (zstandard.ZstdError, ValueError, IndexError, struct.error) as exc:
        raise CorruptionError(where, f"undecodable frame: {exc}") from None


def _decode_body(body: memoryview) -> DecodedFrame:
    s, n = _BODY_HEAD.unpack_from(body)
    pos = _BODY_HEAD.size
    cu, pos = _get_column(body, pos, s)
    counts = _unzigzag(cu)
    if s and (int(counts.min()) <= 0 or int(counts.sum()) != n):
        raise ValueError("series counts do not add up to the sample count")
    starts = _segment_starts(counts)
    is_start = np.zeros(n, dtype=bool)
    is_start[starts] = True
    rest = ~is_start
    n_rest = n - s

    fu, pos = _get_column(body, pos, s)
    firsts = np.cumsum(_unzigzag(fu), dtype=np.int64)
    du, pos = _get_column(body, pos, n_rest)
    dod = np.zeros(n, dtype=np.int64)
    dod[rest] = _unzigzag(du)
    deltas = _segmented_cumsum(dod, counts, starts)
    deltas[is_start] = firsts
    ts = _segmented_cumsum(deltas, counts, starts)

    mode = np.frombuffer(body, dtype=np.uint8, count=s, offset=pos)
    pos += s
    exps = np.frombuffer(body, dtype=np.uint8, count=s, offset=pos).astype(np.int64)
    pos += s
    if s and (int(mode.max()) > MODE_XOR or int(exps.max()) > MAX_DECIMAL_EXP):
        raise ValueError("unknown value mode or exponent")
    vfu, pos = _get_column(body, pos, s)
    vru, pos = _get_column(body, pos, n_rest)
    elem_mode = np.repeat(mode, counts)
    xor_elem = elem_mode == MODE_XOR
    raw = np.zeros(n, dtype=np.uint64)
    raw[starts] = vfu
    raw[rest] = vru
    stream = np.where(xor_elem, raw.view(np.int64), _unzigzag(raw))

    values = np.empty(n, dtype=np.float64)
    if xor_elem.any():
        acc = np.bitwise_xor.accumulate(np.where(xor_elem, stream, 0))
        before = np.zeros(s, dtype=np.int64)
        before[1:] = acc[starts[1:] - 1]
        values.view(np.int64)[xor_elem] = (acc ^ np.repeat(before, counts))[xor_elem]
    dec = ~xor_elem
    if dec.any():
        dod_elem = elem_mode == MODE_DECIMAL_DOD
        first_pass = np.where(dec, stream, 0)
        step = np.where(dod_elem & rest, first_pass, 0)
        md = np.where(dod_elem, _segmented_cumsum(step, counts, starts), first_pass)
        md[is_start] = first_pass[is_start]
        mant = _segmented_cumsum(np.where(dec, md, 0), counts, starts)
        e = np.repeat(exps, counts)
        values[dec] = mant[dec].astype(np.float64) / _POW10[e[dec]]
    return DecodedFrame(counts=counts, timestamps=ts, values=values)

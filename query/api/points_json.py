"""Sample values and matrices as Prometheus's JSON text, in compiled loops.

A sample value is written like Prometheus's `jsonutil.MarshalValue`: Go's
``strconv.FormatFloat(v, 'f', -1, 64)``, or ``'e'`` when ``|v| < 1e-6`` or ``|v| >= 1e21``;
``NaN``, ``+Inf``, ``-Inf``. "-1" asks for the shortest digits that read back as the same
float64, and of those the closest to it. Go finds them with Ryū (Ulf Adams, PLDI 2018), and
so does `_shortest`: the bounds of the interval of reals that round to the value are
scaled by a power of ten to integers (a 55-bit mantissa times a 128-bit approximation of
10^q, whose exactness is tracked), then decimal digits are removed while the interval still
holds a number with fewer digits.

`matrix_pieces` and `vector_pieces` lay a matrix's or an instant vector's whole ``result``
array out in one pass (metrics, timestamps as `MarshalTimestamp` writes them, values), on
several threads for large results (the loop releases the GIL); `value_texts` formats an
array of values. All three run the same loop (`_write_loop`).

The loops are compiled by numba (`vigilops.tsdb.compiled`). Everything they call is in
this module, so that a change to any of it invalidates the cached machine code.
"""

from __future__ import annotations

import sys
from typing import Any
import numba
import numpy as np
import numpy.typing as npt

from vigilops.tsdb.compiled import compile_loop, readonly
from vigilops.tsdb.workers import ordered_map, piece_count

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
U8 = npt.NDArray[np.uint8]
F64 = npt.NDArray[np.float64]

# ---- powers of ten -------------------------------------------------------------------------
_Q_MIN, _Q_MAX = -300, 330  # the exponents `_shortest` scales by lie in [-292, 324]


def _powers_of_ten() -> tuple[U64, U64, I64]:
    """10^q ≈ (hi·2^64 + lo)·2^e with the 128-bit mantissa's top bit set: truncated for
    q >= 0 (exact up to q = 55, as 5^55 < 2^128), rounded up for q < 0."""
    his, los, exps = [], [], []
    for q in range(_Q_MIN, _Q_MAX + 1):
        if q >= 0:
            power = 10**q
            e = power.bit_length() - 128
            mant = power >> e if e >= 0 else power << -e
        else:
            divisor = 10**-q
            k = divisor.bit_length() + 127
            mant = -(-(1 << k) // divisor)
            e = -k
        assert 1 << 127 <= mant < 1 << 128
        his.append(mant >> 64)
        los.append(mant & (2**64 - 1))
        exps.append(e)
    return np.array(his, np.uint64), np.array(los, np.uint64), np.array(exps, np.int64)


_POW10_HI, _POW10_LO, _POW10_EXP = _powers_of_ten()
_POW5 = np.array([5**n for n in range(25)], np.uint64)

_MANT_BITS = 52
_HIDDEN = np.uint64(1 << _MANT_BITS)
_MANT_MASK = np.uint64((1 << _MANT_BITS) - 1)
_ONE = np.uint64(1)
_TEN = np.uint64(10)
_LOW32 = np.uint64(0xFFFFFFFF)
_U32 = np.uint64(32)

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


@_jit
def _mul_64x64(a: np.uint64, b: np.uint64) -> tuple[np.uint64, np.uint64]:
    """The 128-bit product of two 64-bit integers as (high, low) words."""
    a_lo, a_hi = a & _LOW32, a >> _U32
    b_lo, b_hi = b & _LOW32, b >> _U32
    p0 = a_lo * b_lo
    p1 = a_lo * b_hi
    p2 = a_hi * b_lo
    p3 = a_hi * b_hi
    mid = (p0 >> _U32) + (p1 & _LOW32) + (p2 & _LOW32)
    return p3 + (p1 >> _U32) + (p2 >> _U32) + (mid >> _U32), (mid << _U32) | (p0 & _LOW32)


@_jit
def _scale(m: np.uint64, q: int) -> tuple[np.uint64, bool]:
    """``m · 10^q`` as a 64-bit mantissa: the 183-bit product of `m` (at most 55 bits) and
    the 128-bit mantissa of 10^q, shifted right by 119; and whether the bits shifted out
    were all zero. Its binary exponent is ``_POW10_EXP[q] + 119``."""
    i = q - _Q_MIN
    h1, l1 = _mul_64x64(m, _POW10_LO[i])
    h2, l2 = _mul_64x64(m, _POW10_HI[i])
    mid = l2 + h1
    hi = h2 + (_ONE if mid < l2 else np.uint64(0))
    return (hi << np.uint64(9)) | (mid >> np.uint64(55)), (mid << np.uint64(9)) == 0 and l1 == 0


@_jit
def _floor_log10_pow2(e: int) -> int:
    """floor(e · log10(2)) for |e| <= 1650."""
    return (e * 78913) >> 18


@_jit
def _exact_scaled(m: np.uint64, q: int, computed: bool) -> bool:
    """Whether ``m · 10^q`` (times a power of two) was computed exactly by `_scale`."""
    if q > 55:  # 10^q itself was truncated
        return False
    if q < 0:  # exact only when m / 5^-q is an integer
        return q >= -24 and m % _POW5[-q] == 0
    return computed


@_jit
def _remove_digits(
    lower: np.uint64, central: np.uint64, upper: np.uint64, c_exact: bool, c_up: bool
) -> tuple[np.uint64, int]:
    """The fewest digits in [lower, upper]: drop the last decimal digit of all three while
    the interval still holds a whole number of tens; round `central` half to even at the
    end (`c_exact`: nothing below `central` was cut before; `c_up`: what was cut before
    is more than a half). Returns the digits and how many were removed."""
    removed = 0
    last = np.uint64(0)
    while upper > 0:
        lo = (lower + np.uint64(9)) // _TEN
        c = central // _TEN
        digit = central % _TEN
        up = upper // _TEN
        if lo > up:
            break
        if lo == c + _ONE and c < up:  # central sits just below a multiple of ten
            c += _ONE
            digit = np.uint64(0)
            c_up = False
        removed += 1
        c_exact = c_exact and bool(last == 0)
        last = digit
        lower, central, upper = lo, c, up
    if removed:
        c_up = bool(last > 5 or (last == 5 and (not c_exact or (central & _ONE) == 1)))
    if central < upper and c_up:
        central += _ONE
    return central, removed


@_jit
def _shortest(bits: np.uint64) -> tuple[np.uint64, int]:
    """The shortest decimal that reads back as the positive finite float64 with these bits
    (of those the closest): ``(digits, exp10)`` with value ``digits · 10^exp10``."""
    frac = bits & _MANT_MASK
    biased = int((bits >> np.uint64(_MANT_BITS)) & np.uint64(0x7FF))
    if biased == 0:
        mant, exp2 = frac, -1074
    else:
        mant, exp2 = frac | _HIDDEN, biased - 1075
    if exp2 <= 0 and -exp2 < 53 and (mant & ((_ONE << np.uint64(-exp2)) - _ONE)) == 0:
        return mant >> np.uint64(-exp2), 0  # a whole number below 2^53
    # The interval of reals that round to the value, as (lower, central, upper)·2^e2; at a
    # power of two (but not the smallest normal) the gap below is half the gap above.
    if mant != _HIDDEN or biased <= 1:
        two = np.uint64(2)
        lower, central, upper = two * mant - _ONE, two * mant, two * mant + _ONE
        e2 = exp2 - 1
    else:
        four = np.uint64(4)
        lower, central, upper = four * mant - _ONE, four * mant, four * mant + np.uint64(2)
        e2 = exp2 - 2
    if e2 == 0:
        digits, removed = _remove_digits(lower, central, upper, True, False)
        return digits, removed
    q = _floor_log10_pow2(-e2) + 1  # 10^q is the smallest power of ten above 2^-e2
    dl, l_computed = _scale(lower, q)
    dc, c_computed = _scale(central, q)
    du, u_computed = _scale(upper, q)
    l_exact = _exact_scaled(lower, q, l_computed)
    c_exact = _exact_scaled(central, q, c_computed)
    u_exact = _exact_scaled(upper, q, u_computed)
    extra = np.uint64(-(e2 + _POW10_EXP[q - _Q_MIN] + 119))  # fraction bits of dl, dc, du
    mask = (_ONE << extra) - _ONE
    half = _ONE << (extra - _ONE)
    fl, fc, fu = dl & mask, dc & mask, du & mask
    dl, dc, du = dl >> extra, dc >> extra, du >> extra
    even = bool((mant & _ONE) == 0)  # bounds of an even mantissa read back to it (ties to even)
    if u_exact and fu == 0 and not even:
        du -= _ONE
    if c_exact:
        c_up = bool(fc > half or (fc == half and (dc & _ONE) == 1))
    else:  # dc is truncated: the true value is a little above
        c_up = bool(fc >= half)
    if not (l_exact and fl == 0 and even):
        dl += _ONE
    digits, removed = _remove_digits(dl, dc, du, bool(c_exact and fc == 0), c_up)
    return digits, removed - q


# ---- text ------------------------------------------------------------------------------------
# All the writing is in one loop body (`_write_loop`). A compiled helper that takes arrays
# counts references to them at every call, atomic increments and decrements that cost more
# than formatting a value, and inlining does not remove them: the helpers here take and
# return numbers only.
_ZERO, _DOT, _MINUS, _PLUS, _E = 48, 46, 45, 43, 101
_OPEN, _CLOSE, _COMMA, _QUOTE = 91, 93, 44, 34
_CLOSE_OBJECT = 125
_METRIC_KEY = np.frombuffer(b'{"metric":', dtype=np.uint8)
_VALUES_KEY = np.frombuffer(b',"values":[', dtype=np.uint8)
_VALUE_KEY = np.frombuffer(b',"value":', dtype=np.uint8)

# What `_write_loop` lays out.
MATRIX = 0  # {"metric":…,"values":[[<t>,"<v>"],…]},…
VECTOR = 1  # {"metric":…,"value":[<t>,"<v>"]},…  (one point per series)
VALUES = 2  # the value texts one after the other

#: ``n`` < 100 as two ASCII digits in a word, the tens in the low byte.
_PAIR_WORDS = np.array([(48 + n // 10) | (48 + n % 10) << 8 for n in range(100)], np.uint64)
_E2, _E4, _E8, _E16 = np.uint64(100), np.uint64(10**4), np.uint64(10**8), np.uint64(10**16)
_B16, _B32, _B48 = np.uint64(16), np.uint64(32), np.uint64(48)
#: `_decimal_words` text: 24 bytes, "0000" and then the 20 digits of a uint64.
_TEXT_BYTES = 24
_DIGITS_AT = 4
if sys.byteorder != "little":  # the digit words are read back as bytes in memory order
    raise ImportError("vigilops's JSON writer needs a little-endian machine")


@_jit
def _eight_digits(v: np.uint64) -> np.uint64:
    """The eight digits of ``v < 10^8``, zero-padded, as ASCII in a word (the first digit
    in the low byte)."""
    high = v // _E4
    low = v - high * _E4
    h = high // _E2
    lo = low // _E2
    word: np.uint64 = (_PAIR_WORDS[int(h)] | (_PAIR_WORDS[int(high - h * _E2)] << _B16)
                       | (_PAIR_WORDS[int(lo)] << _B32) | (_PAIR_WORDS[int(low - lo * _E2)] << _B48))
    return word


@_jit
def _decimal_words(x: np.uint64) -> tuple[np.uint64, np.uint64, np.uint64]:
    """The 20 digits of `x`, zero-padded, as ASCII in three words: stored one after the
    other (little-endian), the 24 bytes of a `_TEXT_BYTES` text. The number is cut into
    pieces of eight digits by independent divisions, where producing one digit at a time
    waits for each division before the next."""
    top = x // _E16
    rest = x - top * _E16
    mid = rest // _E8
    return _eight_digits(top), _eight_digits(mid), _eight_digits(rest - mid * _E8)


def _writable_copy(a: npt.NDArray[Any], dtype: type) -> npt.NDArray[Any]:
    """`a` as a contiguous writable array of `dtype` (numba compiles one version of a loop
    per combination of read-only and writable arguments: keep to the warmed-up one)."""
    out: npt.NDArray[Any] = np.ascontiguousarray(a, dtype=dtype)
    return out if out.flags.writeable else out.copy()


#: Bytes of the longest value text, "-0.0000012345678901234567", and timestamp text,
#: "-9223372036854775.808".
MAX_VALUE_TEXT = 25
_MAX_TS_TEXT = 21


def _write_loop(
    metric_offsets: I64,
    metric_data: U8,
    ts: I64,
    values: F64,
    bits: U64,
    point_offsets: I64,
    layout: int,
    out: U8,
    ends: I64,
    used: I64,
) -> None:
    """Series ``s`` (its points from ``point_offsets[s]`` to ``point_offsets[s + 1]``) as
    `layout` says, comma-separated, without the enclosing brackets; `VALUES`: each value's
    end in `ends`. ``used[0]``: the bytes written."""
    words = np.empty(3, dtype=np.uint64)
    text = words.view(np.uint8)  # the digits of a value (`_decimal_words`)
    high_words = np.empty(3, dtype=np.uint64)
    high_text = high_words.view(np.uint8)  # the digits of last_high
    last_high = ~np.uint64(0)  # no timestamp's
    high_start = _TEXT_BYTES
    ten_3 = np.uint64(1000)
    p = 0
    values_only = layout == VALUES
    for s in range(len(point_offsets) - 1):
        if not values_only:
            if s:
                out[p] = _COMMA
                p += 1
            for b in range(len(_METRIC_KEY)):
                out[p + b] = _METRIC_KEY[b]
            p += len(_METRIC_KEY)
            for b in range(metric_offsets[s], metric_offsets[s + 1]):
                out[p] = metric_data[b]
                p += 1
            if layout == MATRIX:
                for b in range(len(_VALUES_KEY)):
                    out[p + b] = _VALUES_KEY[b]
                p += len(_VALUES_KEY)
            else:
                for b in range(len(_VALUE_KEY)):
                    out[p + b] = _VALUE_KEY[b]
                p += len(_VALUE_KEY)
        for i in range(point_offsets[s], point_offsets[s + 1]):
            if not values_only:
                if i > point_offsets[s]:
                    out[p] = _COMMA
                    p += 1
                out[p] = _OPEN
                p += 1
                # The timestamp (`MarshalTimestamp`): seconds, then ".fff" when there are
                # milliseconds. A series' points lie close together: the digits above the
                # last four mostly stay those of the point before.
                ms = ts[i]
                if ms < 0:
                    out[p] = _MINUS
                    p += 1
                    ms = -ms
                whole = np.uint64(ms) // ten_3
                frac = int(np.uint64(ms) - whole * ten_3)
                high = whole // _E4
                if high != last_high:
                    last_high = high
                    high_words[0], high_words[1], high_words[2] = _decimal_words(high)
                    high_start = _DIGITS_AT
                    while high_start < _TEXT_BYTES and high_text[high_start] == _ZERO:
                        high_start += 1
                for b in range(high_start, _TEXT_BYTES):
                    out[p] = high_text[b]
                    p += 1
                low = int(whole - high * _E4)
                four = _PAIR_WORDS[low // 100] | (_PAIR_WORDS[low % 100] << _B16)
                shown = 4 if high else 1 + (low >= 10) + (low >= 100) + (low >= 1000)
                for k in range(4 - shown, 4):
                    out[p] = (four >> np.uint64(8 * k)) & np.uint64(0xFF)
                    p += 1
                if frac:
                    out[p] = _DOT
                    out[p + 1] = _ZERO + frac // 100
                    pair = _PAIR_WORDS[frac % 100]
                    out[p + 2] = pair & np.uint64(0xFF)
                    out[p + 3] = pair >> np.uint64(8)
                    p += 4
                out[p] = _COMMA
                out[p + 1] = _QUOTE
                p += 2
            # The value (`jsonutil.MarshalValue`), at most MAX_VALUE_TEXT bytes.
            x = values[i]
            xb = bits[i]
            if x != x:
                out[p], out[p + 1], out[p + 2] = 78, 97, 78  # NaN
                p += 3
            elif x == np.inf or x == -np.inf:
                out[p] = _PLUS if x > 0 else _MINUS
                out[p + 1], out[p + 2], out[p + 3] = 73, 110, 102  # Inf
                p += 4
            else:
                if xb >> np.uint64(63):
                    out[p] = _MINUS
                    p += 1
                    x = -x
                    xb &= ~(_ONE << np.uint64(63))
                if x == 0:
                    out[p] = _ZERO
                    p += 1
                else:
                    digits, exp10 = _shortest(xb)
                    words[0], words[1], words[2] = _decimal_words(digits)
                    first = _DIGITS_AT
                    while text[first] == _ZERO:  # digits > 0: stops at a significant one
                        first += 1
                    last = _TEXT_BYTES
                    while text[last - 1] == _ZERO:
                        last -= 1
                    nd = last - first
                    # text[first:last] holds the digits; the value is 0.d1d2… × 10^point.
                    point = nd + exp10 + _TEXT_BYTES - last
                    if x < 1e-6 or x >= 1e21:  # Go's 'e': d[.ddd]e±XX
                        out[p] = text[first]
                        p += 1
                        if nd > 1:
                            out[p] = _DOT
                            p += 1
                            for k in range(first + 1, last):
                                out[p] = text[k]
                                p += 1
                        exp = point - 1
                        out[p] = _E
                        out[p + 1] = _MINUS if exp < 0 else _PLUS
                        p += 2
                        exp = abs(exp)
                        if exp >= 100:
                            out[p] = _ZERO + exp // 100
                            p += 1
                        out[p] = _ZERO + exp // 10 % 10
                        out[p + 1] = _ZERO + exp % 10
                        p += 2
                    elif point <= 0:  # 0.000ddd
                        out[p] = _ZERO
                        out[p + 1] = _DOT
                        p += 2
                        for _ in range(-point):
                            out[p] = _ZERO
                            p += 1
                        for k in range(first, last):
                            out[p] = text[k]
                            p += 1
                    else:  # ddd[.ddd] or ddd000
                        for k in range(nd):
                            if k == point:
                                out[p] = _DOT
                                p += 1
                            out[p] = text[first + k]
                            p += 1
                        for _ in range(point - nd):
                            out[p] = _ZERO
                            p += 1
            if values_only:
                ends[i] = p
            else:
                out[p] = _QUOTE
                out[p + 1] = _CLOSE
                p += 2
        if layout == MATRIX:
            out[p] = _CLOSE
            p += 1
        if not values_only:
            out[p] = _CLOSE_OBJECT
            p += 1
    used[0] = p


_write = compile_loop(
    # The metrics' bytes come read-only (`np.frombuffer` of bytes).
    _write_loop,
    lambda: (np.array([0, 2], np.int64), readonly(np.array([123, 125], np.uint8)), np.zeros(1, np.int64),
             np.array([0.5]), np.array([0.5]).view(np.uint64), np.array([0, 1], np.int64), MATRIX,
             np.zeros(128, np.uint8), np.zeros(1, np.int64), np.zeros(1, np.int64)),
)


def value_texts(values: F64) -> list[str]:
    """`jsonutil.MarshalValue`'s text of every value."""
    v = _writable_copy(values, np.float64)
    out = np.empty(len(v) * MAX_VALUE_TEXT, dtype=np.uint8)
    ends = np.empty(len(v), dtype=np.int64)
    none = np.zeros(2, dtype=np.int64)
    _write(none, np.frombuffer(b"", dtype=np.uint8), np.zeros(len(v), dtype=np.int64), v,
           v.view(np.uint64), np.array([0, len(v)], dtype=np.int64), VALUES, out, ends,
           np.zeros(1, dtype=np.int64))
    text = out[: int(ends[-1]) if len(v) else 0].tobytes().decode("ascii")
    starts = [0, *ends[:-1].tolist()]
    return [text[a:b] for a, b in zip(starts, ends.tolist())]


# ---- matrices --------------------------------------------------------------------------------
#: Points per piece at least when a matrix is laid out on several threads.
_PARALLEL_POINTS = 1 << 13


def _write_series(
    metric_offsets: I64, metric_data: U8, ts: I64, values: F64, point_offsets: I64, layout: int
) -> memoryview:
    points = int(point_offsets[-1] - point_offsets[0])
    series = len(point_offsets) - 1
    size = (
        points * (_MAX_TS_TEXT + MAX_VALUE_TEXT + 6) + int(metric_offsets[-1] - metric_offsets[0])
        + series * (len(_METRIC_KEY) + len(_VALUES_KEY) + 5)
    )
    out = np.empty(size, dtype=np.uint8)
    used = np.zeros(1, dtype=np.int64)
    _write(metric_offsets, metric_data, ts, values, values.view(np.uint64), point_offsets, layout, out,
           used, used)
    return memoryview(out[: int(used[0])])  # type: ignore[arg-type]


def write_matrix(metrics: list[bytes], ts: I64, values: F64, lengths: I64) -> bytes:
    """A matrix's ``result`` array, ``[{"metric":…,"values":[[<t>,"<v>"],…]},…]``, as JSON:
    series ``j`` has the JSON object `metrics[j]` and the next ``lengths[j]`` points
    (`ts` in milliseconds, `values` the samples)."""
    return b"".join(matrix_pieces(metrics, ts, values, lengths))


def matrix_pieces(
    metrics: list[bytes], ts: I64, values: F64, lengths: I64
) -> list[bytes | memoryview]:
    """`write_matrix` as pieces to join (the large ones views of the buffers they were
    written in): a caller adding an envelope copies the text once."""
    point_offsets = np.zeros(len(metrics) + 1, dtype=np.int64)
    np.cumsum(lengths, out=point_offsets[1:])
    return _pieces(metrics, ts, values, point_offsets, MATRIX)


def vector_pieces(metrics: list[bytes], t: int, values: F64) -> list[bytes | memoryview]:
    """An instant vector's ``result`` array, ``[{"metric":…,"value":[<t>,"<v>"]},…]``, as
    pieces to join: series ``j`` has the JSON object `metrics[j]` and ``values[j]`` at `t`."""
    ts = np.empty(len(metrics), dtype=np.int64)
    ts.fill(t)
    return _pieces(metrics, ts, values, np.arange(len(metrics) + 1, dtype=np.int64), VECTOR)


def _pieces(
    metrics: list[bytes], ts: I64, values: F64, point_offsets: I64, layout: int
) -> list[bytes | memoryview]:
    """Series ``j``'s points are ``point_offsets[j]`` to ``point_offsets[j + 1]``."""
    if not metrics:
        return [b"[]"]
    ts = _writable_copy(ts, np.int64)
    values = _writable_copy(values, np.float64)
    metric_offsets = np.zeros(len(metrics) + 1, dtype=np.int64)
    np.cumsum([len(m) for m in metrics], out=metric_offsets[1:])
    metric_data = np.frombuffer(b"".join(metrics), dtype=np.uint8)
    pieces = min(piece_count(len(ts), _PARALLEL_POINTS), len(metrics))
    if pieces < 2:
        return [b"[", _write_series(metric_offsets, metric_data, ts, values, point_offsets, layout), b"]"]
    # Cut the series into runs of about equal points, several per thread.
    cuts = np.searchsorted(point_offsets, [len(ts) * k // pieces for k in range(1, pieces)])
    bounds = [0, *cuts.tolist(), len(metrics)]
    runs = [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]

    def run(ab: tuple[int, int]) -> memoryview:
        a, b = ab
        return _write_series(
            metric_offsets[a : b + 1], metric_data, ts, values, point_offsets[a : b + 1], layout
        )

    out: list[bytes | memoryview] = [b"["]
    for k, piece in enumerate(ordered_map(run, runs)):
        if k:
            out.append(b",")
        out.append(piece)
    out.append(b"]")
    return out

"""Reading and checking a frame body's per-series columns, one compiled pass.

A body (``tsdb/docs/format/frame.md``) holds five integer columns and the value modes and
exponents. The per-series ones (counts, first timestamps, first values, modes, exponents)
are read here, checked, and unshuffled; the two long columns are only located: their byte
planes are integrated later, for the series a query selects
(`vigilops.tsdb.chunks.frame_integrate`). Done as a dozen numpy calls, this cost some
40 µs a frame whatever its size, more than decompressing a small one.

Damage is reported as a code and an argument (`ERRORS` says what they mean); the caller
raises. Nothing is read outside the body, whatever its bytes say.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..compiled import compile_helper, compile_loop, readonly

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
U8 = npt.NDArray[np.uint8]

# `info` slots filled by `read_columns`.
ERROR, ERROR_ARG = 0, 1
TS_PLANES_AT, TS_WIDTH = 2, 3  # the timestamp delta-of-deltas' planes: offset, width
MODES_AT = 4  # the modes (S bytes), then the exponents (S bytes)
VAL_PLANES_AT, VAL_WIDTH = 5, 6  # the other values' planes
W_COUNTS, W_FIRST_TS, W_FIRST_VALS = 7, 8, 9  # the widths of the per-series columns
INFO_SLOTS = 10

#: `info[ERROR]` codes: the message, with `info[ERROR_ARG]` where it says {}.
ERRORS = {
    1: "more series than samples, or samples without series",
    2: "a column starting at {} lies past the end of the body",
    3: "a column has width {}, more than 8",
    4: "a column overruns the body at {}",
    5: "series counts do not add up to the sample count (a count of {})",
    6: "the value modes and exponents overrun the body at {}",
    7: "unknown value mode {}",
    8: "decimal exponent {} out of range or set on an XOR series",
    9: "{} bytes left over after the last column",
}

_MODE_XOR = 2  # `frame.MODE_XOR`
_MAX_DECIMAL_EXP = 15  # `frame.MAX_DECIMAL_EXP`
_HEAD = 8  # S and N, u32 each


@compile_helper
def _fail(info: I64, error: int, arg: int) -> int:
    info[ERROR] = error
    info[ERROR_ARG] = arg
    return -1


@compile_helper
def _column(body: U8, pos: int, count: int, out: U64, info: I64, width_slot: int) -> int:
    """The column of `count` elements at `pos` into `out` (unshuffled), its width into
    ``info[width_slot]``; returns where it ends, or -1 with the damage in `info`."""
    if pos >= len(body):
        return _fail(info, 2, pos)
    width = int(body[pos])
    info[width_slot] = width
    pos += 1
    if width > 8:
        return _fail(info, 3, width)
    if pos + width * count > len(body):
        return _fail(info, 4, pos)
    for k in range(count):
        out[k] = 0
    for b in range(width):
        shift = np.uint64(8 * b)
        at = np.uint64(pos + b * count)  # unsigned: see `frame_integrate`
        for k in range(np.uint64(0), np.uint64(count)):
            out[k] |= np.uint64(body[at + k]) << shift
    return pos + width * count


@compile_helper
def _planes(body: U8, pos: int, count: int, info: I64, at_slot: int, width_slot: int) -> int:
    """Locate the planes of a long column of `count` elements: their offset and width into
    `info`; returns where they end, or -1 with the damage in `info`."""
    if pos >= len(body):
        return _fail(info, 2, pos)
    width = int(body[pos])
    info[at_slot] = pos + 1
    info[width_slot] = width
    if width > 8:
        return _fail(info, 3, width)
    if pos + 1 + width * count > len(body):
        return _fail(info, 4, pos + 1)
    return pos + 1 + width * count


def _read_columns_loop(
    body: U8, s: int, n: int, counts: I64, starts: I64, first_ts: I64, first_vals: U64,
    info: I64,
) -> None:
    one, zero = np.uint64(1), np.uint64(0)
    info[ERROR] = 0
    if s > n or (n and not s):
        _fail(info, 1, 0)
        return
    words = np.empty(s, dtype=np.uint64)
    # counts: zigzagged; each in [1, n - s + 1] (so that the sum cannot wrap), summing to n.
    pos = _column(body, _HEAD, s, words, info, W_COUNTS)
    if pos < 0:
        return
    total = 0
    for j in range(s):
        c = int(np.int64((words[j] >> one) ^ (zero - (words[j] & one))))
        if c < 1 or c > n - s + 1:
            _fail(info, 5, c)
            return
        counts[j] = c
        starts[j] = total
        total += c
    if total != n:
        _fail(info, 5, total)
        return
    # first timestamps: zigzagged deltas from series to series.
    pos = _column(body, pos, s, words, info, W_FIRST_TS)
    if pos < 0:
        return
    t = zero
    for j in range(s):
        t += (words[j] >> one) ^ (zero - (words[j] & one))
        first_ts[j] = np.int64(t)
    pos = _planes(body, pos, n - s, info, TS_PLANES_AT, TS_WIDTH)
    if pos < 0:
        return
    if pos + 2 * s > len(body):
        _fail(info, 6, pos)
        return
    info[MODES_AT] = pos
    for j in range(s):
        mode = body[pos + j]
        exp = body[pos + s + j]
        if mode > _MODE_XOR:
            _fail(info, 7, mode)
            return
        if exp > _MAX_DECIMAL_EXP or (mode == _MODE_XOR and exp != 0):
            _fail(info, 8, exp)
            return
    pos = _column(body, pos + 2 * s, s, first_vals, info, W_FIRST_VALS)
    if pos < 0:
        return
    pos = _planes(body, pos, n - s, info, VAL_PLANES_AT, VAL_WIDTH)
    if pos < 0:
        return
    if pos != len(body):
        _fail(info, 9, len(body) - pos)


#: Fills `counts`, `starts` (each series' first sample), `first_ts` (absolute),
#: `first_vals` (as stored) and `info` from a body with `s` series and `n` samples.
read_columns = compile_loop(
    _read_columns_loop,
    lambda: (readonly(np.array([1, 0, 0, 0, 1, 0, 0, 0, 1, 2, 1, 2, 0, 0, 0, 1, 0, 0], np.uint8)), 1, 1,
             np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64),
             np.zeros(1, np.uint64), np.zeros(INFO_SLOTS, np.int64)),
)

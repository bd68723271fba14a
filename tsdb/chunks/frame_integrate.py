"""Integrating a frame's stored columns back into timestamps and values, one compiled pass.

The encoder (`vigilops.tsdb.chunks.frame`) stores, for every sample after a series' first,
byte-shuffled zigzag integers: timestamp delta-of-deltas, and per the series' value mode
mantissa deltas, mantissa delta-of-deltas or XORed float bits. Undoing that is a running
sum (or XOR) per series; as whole-array numpy it took a dozen passes over memory per
column. Here each selected series' column is gathered from its byte planes in one pass,
integrated by a running sum, and (decimal values) converted and divided in a loop that
vectorizes. With a time range, a series' timestamps are integrated first, the range found
by bisection, and only its samples converted and written out: an instant query needs the
last minutes of frames that hold an hour.

Indices in the inner loops are unsigned: with a signed ``a + k`` index numba checks for a
negative (from-the-end) index at every element, and the loop does not vectorize.

Integer arithmetic is on uint64 and wraps modulo 2**64, exactly as the encoder's does.
"""

from __future__ import annotations


import numpy as np
import numpy.typing as npt

from ..compiled import compile_helper, compile_loop, readonly

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
U8 = npt.NDArray[np.uint8]
F64 = npt.NDArray[np.float64]

# The value modes (the same numbers as `frame.MODE_*`, which this module must not import).
_DECIMAL_DELTA = 0
_DECIMAL_DOD = 1
_MIN_INT64, _MAX_INT64 = -(2**63), 2**63 - 1


@compile_helper
def _gather_planes(planes: U8, r: int, c: int, rest: U64) -> None:
    """``rest[k]`` (1 <= k < c) = the element at ``r + k`` of a column stored as byte
    planes: one pass per series for the usual widths (1 to 4 bytes), so that the loop
    vectorizes; wider columns add their further planes one pass each (unsigned indices:
    with signed ones this was nine times slower)."""
    w = planes.shape[0]
    one = np.uint64(1)
    n = np.uint64(c)
    at = np.uint64(r)
    if w == 0:
        for k in range(one, n):
            rest[k] = 0
        return
    if w == 1:
        for k in range(one, n):
            rest[k] = np.uint64(planes[0, at + k])
        return
    if w == 2:
        for k in range(one, n):
            rest[k] = np.uint64(planes[0, at + k]) | (np.uint64(planes[1, at + k]) << np.uint64(8))
        return
    if w == 3:
        for k in range(one, n):
            rest[k] = (np.uint64(planes[0, at + k]) | (np.uint64(planes[1, at + k]) << np.uint64(8))
                       | (np.uint64(planes[2, at + k]) << np.uint64(16)))
        return
    for k in range(one, n):
        rest[k] = (np.uint64(planes[0, at + k]) | (np.uint64(planes[1, at + k]) << np.uint64(8))
                   | (np.uint64(planes[2, at + k]) << np.uint64(16))
                   | (np.uint64(planes[3, at + k]) << np.uint64(24)))
    for b in range(4, w):
        shift = np.uint64(8 * b)
        for k in range(one, n):
            rest[k] |= np.uint64(planes[b, at + k]) << shift


def _integrate_loop(
    ts_planes: U8,
    val_planes: U8,
    select: I64,
    starts: I64,
    counts: I64,
    first_ts: U64,
    first_vals: U64,
    modes: U8,
    exps: U8,
    pow10: F64,
    mint: int,
    maxt: int,
    out_ts: U64,
    out_vs: F64,
    out_bits: U64,
    kept: I64,
    dest: I64,
) -> None:
    one = np.uint64(1)
    zero = np.uint64(0)
    filtering = mint != _MIN_INT64 or maxt != _MAX_INT64
    p = 0
    longest = 0
    for j in range(len(select)):
        longest = max(longest, counts[select[j]])
    # A series' stored elements, gathered from the byte planes, then integrated in place.
    rest = np.zeros(longest, dtype=np.uint64)
    # With a time range, the values too get a scratch column: only the samples kept are
    # converted and written out (an instant query keeps a few minutes of a frame's hour).
    vrest = np.zeros(longest if filtering else 0, dtype=np.uint64)
    for j in range(len(select)):
        s = select[j]  # the series' position in the frame
        r = starts[s] - s - 1  # its k-th sample (k >= 1) is at r + k in the planes
        c = counts[s]
        if len(dest):
            p = dest[j]
        if filtering:
            # With a time range: timestamps integrated in `rest`, values only up to the
            # last sample kept, in `vrest`; the samples in [mint, maxt] written from `p`
            # on. (Inline, not a helper: numba counts references to every array passed
            # to a helper at every call, which made frames of many short series 25 %
            # slower.)
            n = np.uint64(c)
            _gather_planes(ts_planes, r, c, rest)
            t = first_ts[s]
            u = first_vals[s]
            mode = modes[s]
            scale = pow10[exps[s]]
            t_step = zero
            steps = zero  # ORed: its top bit is set if the timestamps ever go back
            rest[0] = t
            for k in range(one, n):
                u_k = rest[k]
                t_step += (u_k >> one) ^ (zero - (u_k & one))
                steps |= t_step
                t += t_step
                rest[k] = t
            # [lo, hi): from the first sample in [mint, maxt] to the last, found by
            # bisection when the timestamps increase (as they do, but the codec allows
            # any order: then all).
            lo, hi = zero, n
            if steps >> np.uint64(63) == zero:
                lo = _first_at_least(rest, n, mint)
                if maxt < _MAX_INT64:
                    hi = _first_at_least(rest, n, maxt + 1)
            if lo >= hi:
                kept[j] = 0
                continue
            inside = 0
            for k in range(lo, hi):
                t_k = np.int64(rest[k])
                inside += int((mint <= t_k) & (t_k <= maxt))
            _gather_planes(val_planes, r, int(hi), vrest)
            xor = mode != _DECIMAL_DELTA and mode != _DECIMAL_DOD
            if xor:
                bits = u
                vrest[0] = bits
                for k in range(one, hi):
                    bits ^= vrest[k]
                    vrest[k] = bits
            else:
                _sum_mantissas(vrest, u, int(hi), mode == _DECIMAL_DOD)
            at = np.uint64(p)
            m = hi - lo
            if inside == np.int64(m):
                for k in range(zero, m):
                    out_ts[at + k] = rest[lo + k]
                if xor:
                    for k in range(zero, m):
                        out_bits[at + k] = vrest[lo + k]
                elif scale != 1.0:
                    for k in range(zero, m):
                        out_vs[at + k] = float(np.int64(vrest[lo + k])) / scale
                else:  # integers (most counters): no division
                    for k in range(zero, m):
                        out_vs[at + k] = float(np.int64(vrest[lo + k]))
                kept[j] = inside
                p += inside
                continue
            start = p
            for k in range(lo, hi):
                t_k = np.int64(rest[k])
                if mint <= t_k <= maxt:
                    out_ts[p] = rest[k]
                    if xor:
                        out_bits[p] = vrest[k]
                    else:
                        out_vs[p] = float(np.int64(vrest[k])) / scale
                    p += 1
            kept[j] = p - start
            continue
        # Timestamps: the running sum of the running sum of the delta-of-deltas.
        _gather_planes(ts_planes, r, c, rest)
        at = np.uint64(p)
        n = np.uint64(c)
        t = first_ts[s]
        t_step = zero
        out_ts[at] = t
        for k in range(one, n):
            u = rest[k]
            t_step += (u >> one) ^ (zero - (u & one))
            t += t_step
            out_ts[at + k] = t
        # Values: the running XOR of the words, or the mantissas' running sum(s) and then,
        # in a loop of its own (which vectorizes), their conversion and division.
        _gather_planes(val_planes, r, c, rest)
        mode = modes[s]
        if mode != _DECIMAL_DELTA and mode != _DECIMAL_DOD:
            bits = first_vals[s]
            out_bits[at] = bits
            for k in range(one, n):
                bits ^= rest[k]
                out_bits[at + k] = bits
        else:
            _sum_mantissas(rest, first_vals[s], c, mode == _DECIMAL_DOD)
            if exps[s] != 0:
                scale = pow10[exps[s]]
                for k in range(zero, n):
                    out_vs[at + k] = float(np.int64(rest[k])) / scale
            else:  # integers (most counters): no division
                for k in range(zero, n):
                    out_vs[at + k] = float(np.int64(rest[k]))
        kept[j] = c
        p += c


@compile_helper
def _sum_mantissas(rest: U64, u: np.uint64, c: int, dod: bool) -> None:
    """``rest[:c]`` = the mantissas of a decimal series: its first (zigzag `u`) and the
    running sum of ``rest[1:c]`` (of their running sum with `dod`), modulo 2**64."""
    one = np.uint64(1)
    zero = np.uint64(0)
    n = np.uint64(c)
    m = (u >> one) ^ (zero - (u & one))
    rest[0] = m
    if dod:
        m_step = zero
        for k in range(one, n):
            u = rest[k]
            m_step += (u >> one) ^ (zero - (u & one))
            m += m_step
            rest[k] = m
    else:
        for k in range(one, n):
            u = rest[k]
            m += (u >> one) ^ (zero - (u & one))
            rest[k] = m


@compile_helper
def _first_at_least(ts: U64, n: np.uint64, t: int) -> np.uint64:
    """The first position k < n with ``int64(ts[k]) >= t`` (n if none), by bisection."""
    lo = np.uint64(0)
    hi = n
    while lo < hi:
        mid = (lo + hi) >> np.uint64(1)
        if np.int64(ts[mid]) < t:
            lo = mid + np.uint64(1)
        else:
            hi = mid
    return lo


_integrate = compile_loop(
    _integrate_loop,
    lambda: (
        readonly(np.zeros((1, 1), np.uint8)), readonly(np.zeros((1, 1), np.uint8)),
        np.zeros(1, np.int64), np.zeros(1, np.int64), np.ones(1, np.int64), np.zeros(1, np.uint64),
        # A frame body's modes and exponents are views of the decompressed bytes.
        np.zeros(1, np.uint64), readonly(np.zeros(1, np.uint8)), readonly(np.zeros(1, np.uint8)),
        np.ones(16), 0, 0, np.zeros(1, np.uint64), np.zeros(1), np.zeros(1, np.uint64),
        np.zeros(1, np.int64), np.zeros(0, np.int64),
    ),
)

_NO_DEST = np.zeros(0, dtype=np.int64)


#: The series of a frame to integrate: (select, starts, counts, first_ts, first_vals,
#: modes, exps). ``select`` holds the positions in the frame of the series wanted, the
#: others one element per series of the frame: series ``s`` has ``counts[s]`` samples,
#: the first given by ``first_ts[s]``/``first_vals[s]``, the others at positions
#: ``starts[s] - s …`` of the "rest" byte planes; `modes`/`exps` say how its values are
#: stored. Picking the selected series' elements is the compiled loop's job: done with
#: numpy, it was six more array operations per frame read.
SeriesColumns = tuple[I64, I64, I64, I64, U64, U8, U8]


def _run(
    ts_planes: U8,
    val_planes: U8,
    series: SeriesColumns,
    pow10: F64,
    mint: int,
    maxt: int,
    out_ts: I64,
    out_vs: F64,
    kept: I64,
    dest: I64,
) -> None:
    """`_integrate` with the columns in the types the compiled loop takes."""
    select, starts, counts, first_ts, first_vals, modes, exps = series
    _integrate(
        ts_planes, val_planes, select, starts, counts, first_ts.view(np.uint64), first_vals,
        modes, exps, pow10, mint, maxt, out_ts.view(np.uint64), out_vs, out_vs.view(np.uint64),
        kept, dest,
    )


def integrate(
    ts_planes: U8, val_planes: U8, series: SeriesColumns, total: int, pow10: F64, mint: int,
    maxt: int,
) -> tuple[I64, I64, F64]:
    """Samples per selected series, timestamps and values of `series` (`total` samples in
    all), concatenated, keeping only samples in [mint, maxt] (all are integrated).

    `ts_planes` and `val_planes` are the (width, n) byte planes of the "rest" columns
    (every sample but each series' first). The arrays are contiguous, of the declared
    types; callers check all bounds beforehand.
    """
    ts = np.empty(total, dtype=np.int64)
    vs = np.empty(total, dtype=np.float64)
    kept = np.empty(len(series[0]), dtype=np.int64)
    _run(ts_planes, val_planes, series, pow10, mint, maxt, ts, vs, kept, _NO_DEST)
    n = int(kept.sum())
    if n == total:
        return kept, ts, vs
    if n > total // 2:
        return kept, ts[:n], vs[:n]
    return kept, ts[:n].copy(), vs[:n].copy()  # do not hold on to the whole frame


def integrate_into(
    ts_planes: U8, val_planes: U8, series: SeriesColumns, pow10: F64,
    dest: I64, out_ts: I64, out_vs: F64,
) -> None:
    """Like `integrate`, all samples, each series ``j`` written at ``out_ts[dest[j] :
    dest[j] + counts[j]]`` (and `out_vs`): straight into a larger column set. Callers
    check all bounds beforehand, destinations included."""
    kept = np.empty(len(series[0]), dtype=np.int64)
    _run(ts_planes, val_planes, series, pow10, _MIN_INT64, _MAX_INT64, out_ts, out_vs, kept, dest)

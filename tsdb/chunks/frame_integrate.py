"""Integrating a frame's stored columns back into timestamps and values, one compiled pass.

The encoder (`vigilops.tsdb.chunks.frame`) stores, for every sample after a series' first,
byte-shuffled zigzag integers: timestamp delta-of-deltas, and per the series' value mode
mantissa deltas, mantissa delta-of-deltas or XORed float bits. Undoing that is a running
sum (or XOR) per series; as whole-array numpy it took a dozen passes over memory per
column. Here each selected series is walked once, reading the byte planes in place and
writing out only the samples of the time range asked for.

Integer arithmetic is on uint64 and wraps modulo 2**64, exactly as the encoder's does.
"""

from __future__ import annotations


import numpy as np
import numpy.typing as npt

from ..compiled import compile_loop, readonly

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
U8 = npt.NDArray[np.uint8]
F64 = npt.NDArray[np.float64]

# The value modes (the same numbers as `frame.MODE_*`, which this module must not import).
_DECIMAL_DELTA = 0
_DECIMAL_DOD = 1
_MIN_INT64, _MAX_INT64 = -(2**63), 2**63 - 1


def _integrate_loop(
    ts_planes: U8,
    val_planes: U8,
    rest_start: I64,
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
    p = 0
    longest = 0
    for j in range(len(counts)):
        longest = max(longest, counts[j])
    # A series' rest elements, gathered plane by plane (sequential, vectorizable reads).
    t_rest = np.zeros(longest, dtype=np.uint64)
    v_rest = np.zeros(longest, dtype=np.uint64)
    for j in range(len(counts)):
        r = rest_start[j] - 1  # the k-th sample (k >= 1) is at r + k in the planes
        c = counts[j]
        t_rest[:c] = 0
        v_rest[:c] = 0
        for b in range(ts_planes.shape[0]):
            shift = np.uint64(8 * b)
            for k in range(1, c):
                t_rest[k] |= np.uint64(ts_planes[b, r + k]) << shift
        for b in range(val_planes.shape[0]):
            shift = np.uint64(8 * b)
            for k in range(1, c):
                v_rest[k] |= np.uint64(val_planes[b, r + k]) << shift
        mode = modes[j]
        decimal = mode == _DECIMAL_DELTA or mode == _DECIMAL_DOD
        scale = pow10[exps[j]]
        divide = exps[j] != 0
        t = first_ts[j]
        t_step = zero
        u = first_vals[j]
        bits = u  # XOR: the float64 bits
        m = (u >> one) ^ (zero - (u & one))  # decimal: the mantissa
        m_step = zero
        if len(dest):
            p = dest[j]
        start = p
        for k in range(counts[j]):
            if k:
                u = t_rest[k]
                t_step += (u >> one) ^ (zero - (u & one))
                t += t_step
                u = v_rest[k]
                if decimal:
                    d = (u >> one) ^ (zero - (u & one))
                    if mode == _DECIMAL_DOD:
                        m_step += d
                        m += m_step
                    else:
                        m += d
                else:
                    bits ^= u
            if mint <= np.int64(t) <= maxt:
                out_ts[p] = t
                if decimal:
                    v = float(np.int64(m))
                    out_vs[p] = v / scale if divide else v
                else:
                    out_bits[p] = bits
                p += 1
        kept[j] = p - start


_integrate = compile_loop(
    _integrate_loop,
    lambda: (
        readonly(np.zeros((1, 1), np.uint8)), readonly(np.zeros((1, 1), np.uint8)),
        np.zeros(1, np.int64), np.ones(1, np.int64), np.zeros(1, np.uint64),
        np.zeros(1, np.uint64), np.zeros(1, np.uint8), np.zeros(1, np.uint8),
        np.ones(16), 0, 0, np.zeros(1, np.uint64), np.zeros(1), np.zeros(1, np.uint64),
        np.zeros(1, np.int64), np.zeros(0, np.int64),
    ),
)

_NO_DEST = np.zeros(0, dtype=np.int64)


#: The selected series of a frame, one element each: (rest_start, counts, first_ts,
#: first_vals, modes, exps). Series ``j`` has ``counts[j]`` samples, the first given by
#: ``first_ts[j]``/``first_vals[j]``, the others at positions ``rest_start[j] …`` of the
#: "rest" byte planes; `modes`/`exps` say how its values are stored.
SeriesColumns = tuple[I64, I64, I64, U64, U8, U8]


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
    """`_integrate` with the per-series columns in the types the compiled loop takes."""
    rest_start, counts, first_ts, first_vals, modes, exps = series
    _integrate(
        ts_planes,
        val_planes,
        np.ascontiguousarray(rest_start, dtype=np.int64),
        np.ascontiguousarray(counts, dtype=np.int64),
        np.ascontiguousarray(first_ts, dtype=np.int64).view(np.uint64),
        np.ascontiguousarray(first_vals, dtype=np.uint64),
        np.ascontiguousarray(modes, dtype=np.uint8),
        np.ascontiguousarray(exps, dtype=np.uint8),
        pow10,
        mint,
        maxt,
        out_ts.view(np.uint64),
        out_vs,
        out_vs.view(np.uint64),
        kept,
        np.ascontiguousarray(dest, dtype=np.int64),
    )


def integrate(
    ts_planes: U8, val_planes: U8, series: SeriesColumns, pow10: F64, mint: int, maxt: int
) -> tuple[I64, I64, F64]:
    """Samples per series, timestamps and values of `series`, concatenated, keeping only
    samples in [mint, maxt] (all are integrated).

    `ts_planes` and `val_planes` are the (width, n) byte planes of the "rest" columns
    (every sample but each series' first). Callers check all bounds beforehand.
    """
    counts = series[1]
    total = int(counts.sum())
    ts = np.empty(total, dtype=np.int64)
    vs = np.empty(total, dtype=np.float64)
    kept = np.empty(len(counts), dtype=np.int64)
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
    kept = np.empty(len(series[1]), dtype=np.int64)
    _run(ts_planes, val_planes, series, pow10, _MIN_INT64, _MAX_INT64, out_ts, out_vs, kept, dest)

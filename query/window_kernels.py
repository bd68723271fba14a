"""Compiled loops for the selection hot paths: window bounds, the rate family, and the
points an instant vector selector picks.

Whole-array numpy work costs one pass over memory per operation; finding every window's
samples and extrapolating a rate took some thirty such passes over the (series x steps)
grid. These loops do each in one pass, compiled by numba (`vigilops.tsdb.compiled`, whose
`warm_up` compiles them, or loads them from numba's cache, ahead of the first query); a
large grid is split by rows over the shared worker threads (the loops release the GIL).

The arithmetic is Prometheus 2.42's, in the same order and in IEEE double precision (no
fast-math), so results are bit-identical to the reference numpy implementations the tests
compare them with.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from vigilops.tsdb.compiled import compile_loop, readonly
from vigilops.tsdb.model import STALE_NAN_BITS
from vigilops.tsdb.workers import ordered_map, piece_count

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def _window_bounds_loop(
    ts: Int64Array,
    starts: Int64Array,
    ends: Int64Array,
    eval_ts: Int64Array,
    range_ms: int,
    lo: Int64Array,
    hi: Int64Array,
) -> None:
    one = np.uint64(1)  # unsigned positions: see `_extrapolated_rate_loop`
    for s in range(len(starts)):
        a = np.uint64(starts[s])
        b = a
        end = np.uint64(ends[s])
        previous = eval_ts[0] if len(eval_ts) else 0
        for j in range(len(eval_ts)):
            right = eval_ts[j]
            if right < previous:  # a grid that goes back in time: search from the start
                a = np.uint64(starts[s])
                b = a
            previous = right
            left = right - range_ms
            while a < end and ts[a] < left:
                a += one
            if b < a:
                b = a
            while b < end and ts[b] <= right:
                b += one
            lo[s, j] = np.int64(a)
            hi[s, j] = np.int64(b)


_window_bounds = compile_loop(
    _window_bounds_loop,
    lambda: (np.zeros(1, np.int64), np.zeros(1, np.int64), np.ones(1, np.int64),
             np.zeros(1, np.int64), 0, np.zeros((1, 1), np.int64), np.zeros((1, 1), np.int64)),
)


def window_bounds(
    ts: Int64Array, starts: Int64Array, ends: Int64Array, eval_ts: Int64Array, range_ms: int
) -> tuple[Int64Array, Int64Array]:
    """For series ``i`` (sorted timestamps ``ts[starts[i]:ends[i]]``) and step ``j``, the
    samples in ``[eval_ts[j] - range_ms, eval_ts[j]]`` as the slice ``lo[i, j]:hi[i, j]``.

    Two pointers walk each series once along the step grid: O(samples + steps) per series,
    where a binary search per window costs O(steps x log samples) and misses the cache."""
    n, steps = len(starts), len(eval_ts)
    lo = np.empty((n, steps), dtype=np.int64)
    hi = np.empty((n, steps), dtype=np.int64)
    ts = np.ascontiguousarray(ts, dtype=np.int64)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    eval_ts = np.ascontiguousarray(eval_ts, dtype=np.int64)

    def rows(ab: tuple[int, int]) -> None:
        a, b = ab
        _window_bounds(ts, starts[a:b], ends[a:b], eval_ts, int(range_ms), lo[a:b], hi[a:b])

    ordered_map(rows, row_ranges(n, n * steps))
    return lo, hi


def _stale_count_loop(bits: npt.NDArray[np.uint64], stale: np.uint64, out: Int64Array) -> None:
    n = 0
    for k in range(len(bits)):
        n += bits[k] == stale
    out[0] = n


_stale_count = compile_loop(
    _stale_count_loop, lambda: (np.zeros(1, np.uint64), np.uint64(1), np.zeros(1, np.int64)),
    lambda: (readonly(np.zeros(1, np.uint64)), np.uint64(1), np.zeros(1, np.int64)),
)


def has_stale(vs: Float64Array) -> bool:
    """Whether any value is a staleness marker: one pass that reads `vs` and writes nothing
    (a mask of the whole column, then `any`, wrote and read a byte per sample more)."""
    out = np.zeros(1, dtype=np.int64)
    _stale_count(np.ascontiguousarray(vs, dtype=np.float64).view(np.uint64), np.uint64(STALE_NAN_BITS), out)
    return bool(out[0])


def _instant_points_loop(
    ts: Int64Array,
    bits: npt.NDArray[np.uint64],
    starts: Int64Array,
    ends: Int64Array,
    upper: Int64Array,
    lower: Int64Array,
    stale_bits: np.uint64,
    values: npt.NDArray[np.uint64],
    present: BoolArray,
    sample_ts: Int64Array,
) -> None:
    one = np.uint64(1)  # unsigned positions: see `_extrapolated_rate_loop`
    for s in range(len(starts)):
        first = np.uint64(starts[s])
        end = np.uint64(ends[s])
        b = first
        previous = upper[0] if len(upper) else 0
        for j in range(len(upper)):
            right = upper[j]
            if right < previous:  # a grid that goes back in time: search from the start
                b = first
            previous = right
            while b < end and ts[b] <= right:
                b += one
            k = b - one
            if b > first and ts[k] >= lower[j] and bits[k] != stale_bits:
                present[s, j] = True
                values[s, j] = bits[k]
                sample_ts[s, j] = ts[k]
            else:
                present[s, j] = False
                values[s, j] = 0
                sample_ts[s, j] = 0


_instant_points = compile_loop(
    _instant_points_loop,
    lambda: (np.zeros(1, np.int64), np.zeros(1, np.uint64), np.zeros(1, np.int64),
             np.ones(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64), np.uint64(1),
             np.zeros((1, 1), np.uint64), np.zeros((1, 1), np.bool_), np.zeros((1, 1), np.int64)),
)


def instant_points(
    ts: Int64Array, vs: Float64Array, starts: Int64Array, ends: Int64Array,
    upper: Int64Array, lower: Int64Array, stale_bits: int,
) -> tuple[Float64Array, BoolArray, Int64Array]:
    """For series ``i`` (sorted timestamps ``ts[starts[i]:ends[i]]``) and step ``j``, its
    last sample at or before ``upper[j]``, if that is at or after ``lower[j]`` and its
    value's bits are not `stale_bits`: ``(values, present, sample_ts)``, each ``(N, S)``,
    0 where absent. Two pointers, as `window_bounds`."""
    n, steps = len(starts), len(upper)
    values = np.empty((n, steps), dtype=np.float64)
    present = np.empty((n, steps), dtype=np.bool_)
    sample_ts = np.empty((n, steps), dtype=np.int64)
    _instant_points(
        np.ascontiguousarray(ts, dtype=np.int64),
        np.ascontiguousarray(vs, dtype=np.float64).view(np.uint64),
        np.ascontiguousarray(starts, dtype=np.int64), np.ascontiguousarray(ends, dtype=np.int64),
        np.ascontiguousarray(upper, dtype=np.int64), np.ascontiguousarray(lower, dtype=np.int64),
        np.uint64(stale_bits), values.view(np.uint64), present, sample_ts,
    )
    return values, present, sample_ts


def _extrapolated_rate_loop(
    ts: Int64Array,
    vs: Float64Array,
    starts: Int64Array,
    ends: Int64Array,
    eval_ts: Int64Array,
    range_ms: int,
    range_s: float,
    is_counter: bool,
    is_rate: bool,
    out: Float64Array,
    present: BoolArray,
) -> None:
    steps = len(eval_ts)
    # Sample positions are unsigned: numba checks every signed index for a negative
    # (from-the-end) value, which cost a quarter of the time of this loop.
    one = np.uint64(1)
    zero = np.uint64(0)
    longest = 0
    for s in range(len(starts)):
        longest = max(longest, ends[s] - starts[s])
    # Positions k of a series where the value decreases (vs[k] < vs[k - 1]): a counter
    # reset, whose previous value is added back when k - 1 and k both lie in a window.
    drops = np.empty(longest, dtype=np.uint64)
    count = np.empty(steps, dtype=np.int64)
    result = np.empty(steps, dtype=np.float64)
    first_v = np.empty(steps, dtype=np.float64)
    first_t = np.empty(steps, dtype=np.int64)
    last_t = np.empty(steps, dtype=np.int64)
    for s in range(len(starts)):
        first = np.uint64(starts[s])
        end = np.uint64(ends[s])
        n_drops = zero
        if is_counter:
            for k in range(first + one, end):
                if vs[k] < vs[k - one]:
                    drops[n_drops] = k
                    n_drops += one
        # The windows' raw numbers first, finding each window's samples by two pointers
        # that walk the series along the grid (as `window_bounds` does) and d, the first
        # drop after the window's first sample; then the extrapolation in a pass without
        # branches, which vectorizes: its six divisions per window are most of the work.
        a = first
        b = first
        d = zero
        da = zero
        db = zero
        previous = eval_ts[0] if steps else 0
        for j in range(steps):
            right = eval_ts[j]
            if right < previous:  # a grid that goes back in time: search from the start
                a = first
                b = first
                d = zero
            previous = right
            left = right - range_ms
            # Both ends mostly move by as many samples as at the step before: that guess is
            # checked first, and the walk done only when it fails.
            g = a + da
            if g <= end and (g == a or ts[g - one] < left) and (g == end or ts[g] >= left):
                da = g - a
                a = g
            else:
                a0 = a
                while a < end and ts[a] < left:
                    a += one
                da = a - a0
            if b < a:
                b = a
            g = b + db
            if g <= end and (g == b or ts[g - one] <= right) and (g == end or ts[g] > right):
                db = g - b
                b = g
            else:
                b0 = b
                while b < end and ts[b] <= right:
                    b += one
                db = b - b0
            n = b - a
            count[j] = np.int64(n)
            if n < np.uint64(2):
                result[j] = 0.0
                first_v[j] = 0.0
                first_t[j] = 0
                last_t[j] = 1
                continue
            while d < n_drops and drops[d] <= a:
                d += one
            v0 = vs[a]
            r = vs[b - one] - v0
            q = d
            while q < n_drops and drops[q] < b:
                r += vs[drops[q] - one]
                q += one
            result[j] = r
            first_v[j] = v0
            first_t[j] = ts[a]
            last_t[j] = ts[b - one]
        for j in range(steps):
            r = result[j]
            v0 = first_v[j]
            range_end = eval_ts[j]
            to_start = float(first_t[j] - (range_end - range_ms)) / 1000
            to_end = float(range_end - last_t[j]) / 1000
            sampled = float(last_t[j] - first_t[j]) / 1000
            average = sampled / float(count[j] - 1)
            if is_counter:
                to_zero = sampled * (v0 / r)
                if r > 0 and v0 >= 0 and to_zero < to_start:
                    to_start = to_zero
            threshold = average * 1.1
            interval = sampled + (to_start if to_start < threshold else average / 2)
            interval = interval + (to_end if to_end < threshold else average / 2)
            factor = interval / sampled
            if is_rate:
                factor = factor / range_s
            ok = count[j] >= 2
            present[s, j] = ok
            out[s, j] = r * factor if ok else 0.0


_extrapolated_rate = compile_loop(
    _extrapolated_rate_loop,
    lambda: (np.arange(2, dtype=np.int64), np.ones(2), np.zeros(1, np.int64), np.full(1, 2, np.int64),
             np.ones(1, np.int64), 1, 1.0, True, True, np.zeros((1, 1)), np.zeros((1, 1), np.bool_)),
)


def extrapolated_rate_grid(
    ts: Int64Array,
    vs: Float64Array,
    starts: Int64Array,
    ends: Int64Array,
    eval_ts: Int64Array,
    range_ms: int,
    range_s: float,
    is_counter: bool,
    is_rate: bool,
) -> tuple[Float64Array, BoolArray]:
    """Prometheus 2.42's ``extrapolatedRate`` of the window ``[eval_ts[j] - range_ms,
    eval_ts[j]]`` of every series ``i`` (sorted timestamps ``ts[starts[i]:ends[i]]``):
    the values (0 where absent) and where a window has the two samples it needs. The
    windows are found as it goes (`window_bounds` would write and read back two int64s
    per window). Counter resets are added back one by one in sample order, as 2.42 adds
    them, so the rounding is the same."""
    n, steps = len(starts), len(eval_ts)
    out = np.empty((n, steps), dtype=np.float64)
    present = np.empty((n, steps), dtype=np.bool_)
    ts = np.ascontiguousarray(ts, dtype=np.int64)
    vs = np.ascontiguousarray(vs, dtype=np.float64)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    eval_ts = np.ascontiguousarray(eval_ts, dtype=np.int64)

    def rows(ab: tuple[int, int]) -> None:
        a, b = ab
        _extrapolated_rate(
            ts, vs, starts[a:b], ends[a:b], eval_ts, int(range_ms), float(range_s),
            bool(is_counter), bool(is_rate), out[a:b], present[a:b],
        )

    ordered_map(rows, row_ranges(n, n * steps))
    return out, present


#: Windows per piece below which a grid is not split further.
_PARALLEL_WINDOWS = 1 << 16


def row_ranges(rows: int, cells: int) -> list[tuple[int, int]]:
    """Row slices ``(a, b)`` of a (rows x steps) grid of `cells` windows: several per
    worker thread (`vigilops.tsdb.workers.piece_count`) when the grid is large, else one."""
    pieces = min(piece_count(cells, _PARALLEL_WINDOWS), max(rows, 1))
    cuts = [rows * k // pieces for k in range(pieces + 1)]
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a] or [(0, 0)]

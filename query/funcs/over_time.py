"""The ``<aggregation>_over_time`` functions, ``changes`` and ``resets`` (Prometheus 2.42).

Each reduces every non-empty window of a range vector to one value. Order-sensitive float
arithmetic follows 2.42 step for step so that rounding matches: `sum_over_time` and
`avg_over_time` use Kahan–Neumaier compensation (the mean incrementally, keeping an
infinite mean), `stddev`/`stdvar` a compensated Welford update; those run per sample
position over all windows at once (`Lanes`). Order-free reductions use one pass over the
flat samples: counts and comparisons by cumulative sums, `min`/`max` by `reduceat`.
"""

from __future__ import annotations

import numpy as np

from vigilops.query.funcs._args import scalar_arg, windows_arg
from vigilops.query.funcs._go import kahan_inc
from vigilops.query.funcs._lanes import Lanes
from vigilops.query.values import (
    BoolArray,
    Float64Array,
    FunctionContext,
    Int64Array,
    Value,
    Windows,
)


def _sum(lanes: Lanes) -> Float64Array:
    total = np.zeros(len(lanes))
    comp = np.zeros(len(lanes))
    with np.errstate(all="ignore"):
        for k, m in lanes.columns():
            total[:m], comp[:m] = kahan_inc(lanes.values_at(k, m), total[:m], comp[:m])
        out: Float64Array = np.where(np.isinf(total), total, total + comp)
    return out


def _mean(lanes: Lanes) -> Float64Array:
    mean = np.zeros(len(lanes))
    comp = np.zeros(len(lanes))
    with np.errstate(all="ignore"):
        for k, m in lanes.columns():
            x = lanes.values_at(k, m)
            mu, c = mean[:m], comp[:m]
            count = float(k + 1)
            # An infinite mean stays as it is unless a NaN or an opposite infinity arrives.
            keep = np.isinf(mu) & (
                (np.isinf(x) & ((mu > 0) == (x > 0))) | (~np.isinf(x) & ~np.isnan(x))
            )
            new_mu, new_c = kahan_inc(x / count - mu / count, mu, c)
            mean[:m] = np.where(keep, mu, new_mu)
            comp[:m] = np.where(keep, c, new_c)
        out: Float64Array = np.where(np.isinf(mean), mean, mean + comp)
    return out


def _variance(lanes: Lanes) -> Float64Array:
    mean = np.zeros(len(lanes))
    c_mean = np.zeros(len(lanes))
    aux = np.zeros(len(lanes))
    c_aux = np.zeros(len(lanes))
    with np.errstate(all="ignore"):
        for k, m in lanes.columns():
            x = lanes.values_at(k, m)
            count = float(k + 1)
            d = x - (mean[:m] + c_mean[:m])
            mean[:m], c_mean[:m] = kahan_inc(d / count, mean[:m], c_mean[:m])
            aux[:m], c_aux[:m] = kahan_inc(d * (x - (mean[:m] + c_mean[:m])), aux[:m], c_aux[:m])
        out: Float64Array = (aux + c_aux) / lanes.n.astype(np.float64)
    return out


def _extreme(win: Windows, lanes: Lanes, largest: bool) -> Float64Array:
    """max (or min) of each lane's window, NaN only if every sample is NaN (2.42's rule:
    a NaN running value is replaced by anything). `fmax`/`fmin` have exactly that rule."""
    if len(lanes) == 0:
        return np.zeros(0)
    ufunc = np.fmax if largest else np.fmin
    padded = np.append(win.vs, 0.0)  # reduceat indices must be < len
    bounds = np.empty(2 * len(lanes), dtype=np.int64)
    bounds[0::2], bounds[1::2] = lanes.lo, lanes.hi
    order = np.argsort(bounds[0::2], kind="stable")  # reduceat is fastest over sorted ranges
    pairs = np.empty_like(bounds)
    pairs[0::2], pairs[1::2] = lanes.lo[order], lanes.hi[order]
    reduced = ufunc.reduceat(padded, pairs)[0::2]
    out = np.empty(len(lanes))
    out[order] = reduced
    return out


def _pair_counts(win: Windows, lanes: Lanes, hit: BoolArray) -> Int64Array:
    """For each lane, how many consecutive sample pairs ``(i-1, i)`` inside its window have
    ``hit[i-1]`` set (`hit` holds one flag per pair, indexed by the earlier sample)."""
    cum = np.zeros(len(win.vs), dtype=np.int64)
    if len(win.vs) > 1:
        cum[1:] = np.cumsum(hit)
    out: Int64Array = cum[lanes.hi - 1] - cum[lanes.lo]
    return out


def _lanes(args: list[Value]) -> tuple[Windows, Lanes]:
    win = windows_arg(args, 0)
    return win, Lanes(win, 1)


def sum_over_time(args: list[Value], ctx: FunctionContext) -> Value:
    """``sum_over_time(range-vector)``."""
    _, lanes = _lanes(args)
    return lanes.to_vector(_sum(lanes))


def avg_over_time(args: list[Value], ctx: FunctionContext) -> Value:
    """``avg_over_time(range-vector)``."""
    _, lanes = _lanes(args)
    return lanes.to_vector(_mean(lanes))


def count_over_time(args: list[Value], ctx: FunctionContext) -> Value:
    """``count_over_time(range-vector)``."""
    _, lanes = _lanes(args)
    return lanes.to_vector(lanes.n.astype(np.float64))


def min_over_time(args: list[Value], ctx: FunctionContext) -> Value:
    """``min_over_time(range-vector)``."""
    win, lanes = _lanes(args)
    return lanes.to_vector(_extreme(win, lanes, largest=False))


def max_over_time(args: list[Value], ctx: FunctionContext) -> Value:
    """``max_over_time(range-vector)``."""
    win, lanes = _lanes(args)
    return lanes.to_vector(_extreme(win, lanes, largest=True))


def stddev_over_time(args: list[Value], ctx: FunctionContext) -> Value:
    """``stddev_over_time(range-vector)``: population standard deviation."""
    _, lanes = _lanes(args)
    with np.errstate(all="ignore"):
        return lanes.to_vector(np.sqrt(_variance(lanes)))


def stdvar_over_time(args: list[Value], ctx: FunctionContext) -> Value:
    """``stdvar_over_time(range-vector)``: population variance."""
    _, lanes = _lanes(args)
    return lanes.to_vector(_variance(lanes))


def last_over_time(args: list[Value], ctx: FunctionContext) -> Value:
    """``last_over_time(range-vector)``: the newest sample; keeps the metric name."""
    _, lanes = _lanes(args)
    return lanes.to_vector(lanes.last(), keep_name=True)


def present_over_time(args: list[Value], ctx: FunctionContext) -> Value:
    """``present_over_time(range-vector)``: 1 for every non-empty window."""
    _, lanes = _lanes(args)
    return lanes.to_vector(np.ones(len(lanes)))


def changes(args: list[Value], ctx: FunctionContext) -> Value:
    """``changes(range-vector)``: how often the value changed (NaN to NaN is no change)."""
    win, lanes = _lanes(args)
    prev, cur = win.vs[:-1], win.vs[1:]
    hit = (cur != prev) & ~(np.isnan(cur) & np.isnan(prev))
    return lanes.to_vector(_pair_counts(win, lanes, hit).astype(np.float64))


def resets(args: list[Value], ctx: FunctionContext) -> Value:
    """``resets(range-vector)``: how often the value decreased."""
    win, lanes = _lanes(args)
    hit = win.vs[1:] < win.vs[:-1]
    return lanes.to_vector(_pair_counts(win, lanes, hit).astype(np.float64))


def quantile_sorted(q: Float64Array, rows: Float64Array, counts: Int64Array) -> Float64Array:
    """Prometheus 2.42's `quantile` for many value lists at once.

    ``rows[i, :counts[i]]`` is list `i` in PromQL's sort order (see `sort_nan_first`);
    ``q[i]`` its quantile. q < 0 gives -Inf, q > 1 +Inf, a NaN q NaN.
    """
    n = counts.astype(np.float64)
    with np.errstate(all="ignore"):
        rank = q * (n - 1)
        lower = np.maximum(0.0, np.floor(rank))
        upper = np.minimum(n - 1, lower + 1)
        weight = rank - np.floor(rank)
        ok = ~np.isnan(q) & (q >= 0) & (q <= 1)
        li = np.where(ok, lower, 0).astype(np.int64)
        ui = np.where(ok, upper, 0).astype(np.int64)
        at = np.arange(len(rows))
        out = rows[at, li] * (1 - weight) + rows[at, ui] * weight
    out = np.where(q < 0, -np.inf, out)
    out = np.where(q > 1, np.inf, out)
    result: Float64Array = np.where(np.isnan(q), np.nan, out)
    return result


def sort_nan_first(block: Float64Array, counts: Int64Array) -> Float64Array:
    """Sort each row's first ``counts[i]`` values as Go's `sort` with PromQL's
    ``NaN < everything`` order does: NaNs first, then ascending. Padding is ignored."""
    width = block.shape[1]
    pos = np.arange(width)[None, :]
    inside = pos < counts[:, None]
    nans = (np.isnan(block) & inside).sum(axis=1)
    ordered = np.sort(np.where(inside & ~np.isnan(block), block, np.inf), axis=1)
    src = pos - nans[:, None]
    out: Float64Array = np.where(
        src < 0, np.nan, np.take_along_axis(ordered, np.clip(src, 0, width - 1), axis=1)
    )
    return out


def quantile_over_time(args: list[Value], ctx: FunctionContext) -> Value:
    """``quantile_over_time(scalar, range-vector)``: the φ-quantile of each window,
    interpolating linearly between the two nearest ranks."""
    phi = scalar_arg(args, 0)
    win = windows_arg(args, 1)
    lanes = Lanes(win, 1)
    out = np.zeros(len(lanes))
    q_all = lanes.per_step(phi).astype(np.float64)
    for part, block in lanes.gather_chunks():
        counts = lanes.n[part]
        out[part] = quantile_sorted(q_all[part], sort_nan_first(block, counts), counts)
    return lanes.to_vector(out)

"""Trend functions of a range vector: ``deriv``, ``predict_linear``, ``holt_winters``
(Prometheus 2.42).

`deriv` and `predict_linear` fit a least-squares line through each window with compensated
sums (2.42's `linearRegression`), x in seconds relative to the first sample (`deriv`) or
the evaluation time (`predict_linear`); a window whose values are all equal has slope 0
(NaN if the value is infinite). `holt_winters` is double exponential smoothing. All three
need at least two samples and run per sample position over all windows at once.
"""

from __future__ import annotations

import numpy as np

from vigilops.query.funcs._args import scalar_arg, windows_arg
from vigilops.query.funcs._go import kahan_inc
from vigilops.query.gomath import go_percent_f
from vigilops.query.funcs._lanes import Lanes
from vigilops.query.values import (
    ExecutionError,
    Float64Array,
    FunctionContext,
    Int64Array,
    Value,
)


def linear_regression(
    lanes: Lanes, intercept_time: Int64Array
) -> tuple[Float64Array, Float64Array]:
    """Slope (per second) and intercept (at `intercept_time`, ms, one per lane) of each
    lane's window."""
    # Rows: the compensated sums of x, y, x*y and x*x (all four advance together).
    totals = np.zeros((4, len(lanes)))
    comps = np.zeros((4, len(lanes)))
    init = lanes.first()
    constant = np.ones(len(lanes), dtype=bool)
    with np.errstate(all="ignore"):
        for k, m in lanes.columns():
            y = lanes.values_at(k, m)
            x = (lanes.times_at(k, m) - intercept_time[:m]).astype(np.float64) / 1e3
            if k > 0:
                constant[:m] &= y == init[:m]
            terms = np.stack((x, y, x * y, x * x))
            totals[:, :m], comps[:, :m] = kahan_inc(terms, totals[:, :m], comps[:, :m])
        sum_x, sum_y, sum_xy, sum_x2 = totals + comps
        n = lanes.n.astype(np.float64)
        cov_xy = sum_xy - sum_x * sum_y / n
        var_x = sum_x2 - sum_x * sum_x / n
        slope = cov_xy / var_x
        intercept = sum_y / n - slope * sum_x / n
    inf = np.isinf(init)
    slope = np.where(constant, np.where(inf, np.nan, 0.0), slope)
    intercept = np.where(constant, np.where(inf, np.nan, init), intercept)
    return slope, intercept


def deriv(args: list[Value], ctx: FunctionContext) -> Value:
    """``deriv(v range-vector)``: per-second derivative by simple linear regression."""
    lanes = Lanes(windows_arg(args, 0), 2)
    slope, _ = linear_regression(lanes, lanes.win.ts[lanes.lo])
    return lanes.to_vector(slope)


def predict_linear(args: list[Value], ctx: FunctionContext) -> Value:
    """``predict_linear(v range-vector, t scalar)``: the fitted line `t` seconds after
    the evaluation time."""
    lanes = Lanes(windows_arg(args, 0), 2)
    horizon = lanes.per_step(scalar_arg(args, 1)).astype(np.float64)
    slope, intercept = linear_regression(lanes, lanes.per_step(ctx.times).astype(np.int64))
    with np.errstate(all="ignore"):
        return lanes.to_vector(slope * horizon + intercept)


def _check_factors(lanes: Lanes, sf: Float64Array, tf: Float64Array) -> None:
    """2.42 checks both factors at every evaluated (non-empty) window, series by series,
    step by step; the first bad one is the error. NaN passes the check."""
    bad_sf = (sf <= 0) | (sf >= 1)
    bad_tf = (tf <= 0) | (tf >= 1)
    bad = np.flatnonzero(bad_sf | bad_tf)
    if len(bad) == 0:
        return
    first = bad[np.lexsort((lanes.cols[bad], lanes.rows[bad]))[0]]
    if bad_sf[first]:
        raise ExecutionError(
            f"invalid smoothing factor. Expected: 0 < sf < 1, got: {go_percent_f(float(sf[first]))}"
        )
    raise ExecutionError(
        f"invalid trend factor. Expected: 0 < tf < 1, got: {go_percent_f(float(tf[first]))}"
    )


def holt_winters(args: list[Value], ctx: FunctionContext) -> Value:
    """``holt_winters(v range-vector, sf scalar, tf scalar)``: the smoothed value of each
    window (smoothing factor `sf`, trend factor `tf`, both in (0, 1))."""
    win = windows_arg(args, 0)
    sf_step, tf_step = scalar_arg(args, 1), scalar_arg(args, 2)
    nonempty = Lanes(win, 1)
    _check_factors(nonempty, nonempty.per_step(sf_step), nonempty.per_step(tf_step))
    lanes = Lanes(win, 2)
    sf = lanes.per_step(sf_step).astype(np.float64)
    tf = lanes.per_step(tf_step).astype(np.float64)
    vs = win.vs
    with np.errstate(all="ignore"):
        s0 = np.zeros(len(lanes))
        s1 = vs[lanes.lo].copy()
        trend = vs[lanes.lo + 1] - vs[lanes.lo]
        for k, m in lanes.columns(1):
            x = sf[:m] * lanes.values_at(k, m)
            if k > 1:
                trend[:m] = tf[:m] * (s1[:m] - s0[:m]) + (1 - tf[:m]) * trend[:m]
            y = (1 - sf[:m]) * (s1[:m] + trend[:m])
            s0[:m] = s1[:m]
            s1[:m] = x + y
    return lanes.to_vector(s1)

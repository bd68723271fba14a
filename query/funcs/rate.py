"""``rate``, ``increase``, ``delta``, ``irate`` and ``idelta`` (Prometheus 2.42).

`rate`/`increase`/`delta` take the difference between the first and last sample of each
window (for counters, plus the value before every decrease: a counter reset) and
extrapolate it towards the window's ends: all the way to an end that is less than 1.1
average sample intervals away, else by half an interval. For counters, the extrapolation
towards the start stops where the counter would reach zero (computed before the
threshold test, as 2.42 does). `irate`/`idelta` use the last two samples only.

Every window of every series at every step is handled by the same array operations.
"""

from __future__ import annotations

import numpy as np

from vigilops.query.funcs._args import windows_arg
from vigilops.query.funcs._lanes import GATHER_BUDGET, Lanes
from vigilops.query.values import (
    Float64Array,
    FunctionContext,
    Int64Array,
    Value,
    Vector,
    Windows,
    drop_metric_name,
)


def range_seconds(range_ms: int) -> float:
    """Go's ``time.Duration.Seconds()`` of a range in milliseconds."""
    return float(range_ms // 1000) + float((range_ms % 1000) * 1_000_000) / 1e9


def counter_corrections(
    vs: Float64Array, lo: Int64Array, hi: Int64Array, start: Float64Array
) -> Float64Array:
    """`start` plus, for each window ``vs[lo:hi]``, the value before every decrease inside
    it, added one by one in sample order as 2.42 adds them (so rounding matches).

    The windows with decreases become rows of a padded 2-D array ``[start, drop1, drop2,
    …]`` whose running sum (`np.add.accumulate`, strictly sequential) is read at each row's
    last drop: no Python loop per drop, however many there are.
    """
    drops: Int64Array = np.flatnonzero(vs[1:] < vs[:-1]) + 1
    out = start.copy()
    if len(drops) == 0:
        return out
    first = np.searchsorted(drops, lo + 1, side="left")
    count = np.searchsorted(drops, hi, side="left") - first
    lanes = np.flatnonzero(count > 0)
    lanes = lanes[np.argsort(-count[lanes], kind="stable")]
    begin = 0
    while begin < len(lanes):
        width = int(count[lanes[begin]])
        rows = lanes[begin : begin + max(1, GATHER_BUDGET // (width + 1))]
        begin += len(rows)
        pos = np.arange(width, dtype=np.int64)
        inside = pos[None, :] < count[rows, None]
        idx = np.where(inside, first[rows, None] + pos[None, :], 0)
        terms = np.empty((len(rows), width + 1))
        terms[:, 0] = out[rows]
        terms[:, 1:] = np.where(inside, vs[drops[idx] - 1], 0.0)
        running = np.add.accumulate(terms, axis=1)
        out[rows] = running[np.arange(len(rows)), count[rows]]
    return out


def extrapolated_rate(win: Windows, is_counter: bool, is_rate: bool) -> Vector:
    """Prometheus 2.42's `extrapolatedRate` over every window with at least two samples.

    Computed on the whole ``(series, steps)`` grid at once: windows with fewer than two
    samples compute garbage from clamped indices and are masked out at the end, which is
    cheaper than listing the valid ones first.
    """
    counts = win.counts
    present = counts >= 2
    if not present.any():
        return Vector(drop_metric_name(win.labels), np.zeros(present.shape), present)
    lo = win.lo.clip(max=len(win.vs) - 1)
    last_i = np.maximum(win.hi - 1, 0)
    first_v, last_v = win.vs[lo], win.vs[last_i]
    first_t, last_t = win.ts[lo], win.ts[last_i]
    with np.errstate(all="ignore"):
        result = last_v - first_v
        if is_counter:
            flat = counter_corrections(win.vs, win.lo.ravel(), win.hi.ravel(), result.ravel())
            result = flat.reshape(result.shape)
        range_end = win.eval_ts[None, :]
        range_start = range_end - win.range_ms
        to_start = (first_t - range_start).astype(np.float64) / 1000
        to_end = (range_end - last_t).astype(np.float64) / 1000
        sampled = (last_t - first_t).astype(np.float64) / 1000
        average = sampled / (counts - 1).astype(np.float64)
        if is_counter:
            to_zero = sampled * (first_v / result)
            use_zero = (result > 0) & (first_v >= 0) & (to_zero < to_start)
            to_start = np.where(use_zero, to_zero, to_start)
        threshold = average * 1.1
        interval = sampled + np.where(to_start < threshold, to_start, average / 2)
        interval = interval + np.where(to_end < threshold, to_end, average / 2)
        factor = interval / sampled
        if is_rate:
            factor = factor / range_seconds(win.range_ms)
        result = result * factor
    return Vector(drop_metric_name(win.labels), np.where(present, result, 0.0), present)


def instant_value(win: Windows, is_rate: bool) -> Vector:
    """Prometheus 2.42's `instantValue`: from the last two samples of each window."""
    lanes = Lanes(win, 2)
    last_v, prev_v = lanes.last(), win.vs[lanes.hi - 2]
    interval = win.ts[lanes.hi - 1] - win.ts[lanes.hi - 2]
    with np.errstate(all="ignore"):
        if is_rate:
            result = np.where(last_v < prev_v, last_v, last_v - prev_v)
            result = result / (interval.astype(np.float64) / 1000)
        else:
            result = last_v - prev_v
    out = lanes.to_vector(result)
    out.present[lanes.rows[interval == 0], lanes.cols[interval == 0]] = False
    return out


def rate(args: list[Value], ctx: FunctionContext) -> Value:
    """``rate(v range-vector)``: per-second increase of a counter."""
    return extrapolated_rate(windows_arg(args, 0), is_counter=True, is_rate=True)


def increase(args: list[Value], ctx: FunctionContext) -> Value:
    """``increase(v range-vector)``: increase of a counter over the range."""
    return extrapolated_rate(windows_arg(args, 0), is_counter=True, is_rate=False)


def delta(args: list[Value], ctx: FunctionContext) -> Value:
    """``delta(v range-vector)``: difference of a gauge over the range."""
    return extrapolated_rate(windows_arg(args, 0), is_counter=False, is_rate=False)


def irate(args: list[Value], ctx: FunctionContext) -> Value:
    """``irate(v range-vector)``: per-second rate from the last two samples."""
    return instant_value(windows_arg(args, 0), is_rate=True)


def idelta(args: list[Value], ctx: FunctionContext) -> Value:
    """``idelta(v range-vector)``: difference of the last two samples."""
    return instant_value(windows_arg(args, 0), is_rate=False)

"""``rate``, ``increase``, ``delta``, ``irate`` and ``idelta`` (Prometheus 2.42).

`rate`/`increase`/`delta` take the difference between the first and last sample of each
window (for counters, plus the value before every decrease: a counter reset) and
extrapolate it towards the window's ends: all the way to an end that is less than 1.1
average sample intervals away, else by half an interval. For counters, the extrapolation
towards the start stops where the counter would reach zero (computed before the
threshold test, as 2.42 does). `irate`/`idelta` use the last two samples only.

`rate`/`increase`/`delta` run as one compiled loop over all windows (`vigilops.query.window_kernels`).
"""

from __future__ import annotations

import numpy as np

from vigilops.query.funcs._args import windows_arg
from vigilops.query.funcs._lanes import Lanes
from vigilops.query.values import (
    FunctionContext,
    Value,
    Vector,
    Windows,
    drop_metric_name,
)
from vigilops.query.window_kernels import extrapolated_rate_grid


def range_seconds(range_ms: int) -> float:
    """Go's ``time.Duration.Seconds()`` of a range in milliseconds."""
    return float(range_ms // 1000) + float((range_ms % 1000) * 1_000_000) / 1e9


def extrapolated_rate(win: Windows, is_counter: bool, is_rate: bool) -> Vector:
    """Prometheus 2.42's `extrapolatedRate` over every window with at least two samples,
    in one compiled pass over the ``(series, steps)`` grid (`extrapolated_rate_grid`)."""
    values, present = extrapolated_rate_grid(
        win.ts, win.vs, win.starts, win.ends, win.eval_ts, win.range_ms,
        range_seconds(win.range_ms), is_counter, is_rate,
    )
    return Vector(drop_metric_name(win.labels), values, present)


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

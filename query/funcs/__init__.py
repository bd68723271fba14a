"""Implementations of the PromQL functions, by name (Prometheus 2.42 semantics).

`vigilops.query.functions.FUNCTIONS` declares each function's signature (the type checker's
view); `IMPLEMENTATIONS` maps the same names to code (the evaluator's view). An
implementation receives its evaluated arguments, already type-checked, and a
`FunctionContext`, and returns a value covering every step of the grid:

* scalar arguments arrive as `Scalar` (one value per step), strings as `String`, instant
  vectors as `Vector`, range vectors as `Windows`;
* the result is a `Vector` whose rows are the output series (for functions of one vector
  or range vector: one row per input series, in input order, absent where Prometheus
  would output nothing), or a `Scalar` for ``pi``, ``time`` and ``scalar``.

Implementations never merge series with equal label sets; the evaluator does that (and
raises Prometheus's duplicate-label-set error).

Modules, by family: `rate` (rate, increase, delta, irate, idelta), `over_time` (the
``*_over_time`` aggregations, changes, resets), `trend` (deriv, predict_linear,
holt_winters), `math`, `dates`, `labels`, `histogram`, `sort`, `absent`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

from vigilops.query.funcs import absent, histogram, labels, over_time, rate, sort, trend
from vigilops.query.funcs import math as math_funcs
from vigilops.query.funcs.dates import DATE_NAMES, date_function
from vigilops.query.values import FunctionContext, Value

#: The type of a function implementation.
FunctionImpl: TypeAlias = Callable[[list[Value], FunctionContext], Value]

IMPLEMENTATIONS: dict[str, FunctionImpl] = {
    # Range vectors: counters and gauges.
    "rate": rate.rate,
    "increase": rate.increase,
    "delta": rate.delta,
    "irate": rate.irate,
    "idelta": rate.idelta,
    # Range vectors: aggregation over time.
    "avg_over_time": over_time.avg_over_time,
    "count_over_time": over_time.count_over_time,
    "last_over_time": over_time.last_over_time,
    "max_over_time": over_time.max_over_time,
    "min_over_time": over_time.min_over_time,
    "present_over_time": over_time.present_over_time,
    "quantile_over_time": over_time.quantile_over_time,
    "stddev_over_time": over_time.stddev_over_time,
    "stdvar_over_time": over_time.stdvar_over_time,
    "sum_over_time": over_time.sum_over_time,
    "changes": over_time.changes,
    "resets": over_time.resets,
    # Range vectors: trends.
    "deriv": trend.deriv,
    "predict_linear": trend.predict_linear,
    "holt_winters": trend.holt_winters,
    # Absence.
    "absent": absent.absent,
    "absent_over_time": absent.absent_over_time,
    # Math and conversions.
    **{name: math_funcs.elementwise(name) for name in math_funcs.ELEMENTWISE_NAMES},
    "round": math_funcs.round_,
    "clamp": math_funcs.clamp,
    "clamp_min": math_funcs.clamp_min,
    "clamp_max": math_funcs.clamp_max,
    "pi": math_funcs.pi,
    "time": math_funcs.time,
    "vector": math_funcs.vector,
    "scalar": math_funcs.scalar,
    "timestamp": math_funcs.timestamp,
    # Calendar.
    **{name: date_function(name) for name in DATE_NAMES},
    # Labels.
    "label_replace": labels.label_replace,
    "label_join": labels.label_join,
    # Histograms.
    "histogram_quantile": histogram.histogram_quantile,
    "histogram_count": histogram.native_histogram_only,
    "histogram_sum": histogram.native_histogram_only,
    "histogram_fraction": histogram.native_histogram_only,
    # Ordering.
    "sort": sort.sort,
    "sort_desc": sort.sort_desc,
}

__all__ = ["IMPLEMENTATIONS", "FunctionImpl"]

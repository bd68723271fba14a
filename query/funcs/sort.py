"""``sort`` and ``sort_desc`` (Prometheus 2.42).

Ordering only means something for an instant query, whose result keeps the order of its
outermost `sort`: there the series are reordered by their value at the single step, NaN
last in both directions (ties keep their input order). A range query's matrix is sorted by
labels, so for more than one step the series are returned as they came. Names are kept.
"""

from __future__ import annotations

import numpy as np

from vigilops.query.funcs._args import vector_arg
from vigilops.query.values import FunctionContext, Value, Vector


def _sorted(vec: Vector, descending: bool) -> Vector:
    # A function's output is no longer a selector's: sample timestamps are forgotten.
    out = Vector(vec.labels, vec.values, vec.present)
    if vec.steps != 1 or len(vec) < 2:
        return out
    values = vec.values[:, 0]
    keys = -values if descending else values
    # Absent rows (no sample at the step) go after everything; they are dropped later.
    order = np.lexsort((keys, np.isnan(values), ~vec.present[:, 0]))
    return out.take(order)


def sort(args: list[Value], ctx: FunctionContext) -> Value:
    """``sort(v instant-vector)``: ascending by value."""
    return _sorted(vector_arg(args, 0), descending=False)


def sort_desc(args: list[Value], ctx: FunctionContext) -> Value:
    """``sort_desc(v instant-vector)``: descending by value."""
    return _sorted(vector_arg(args, 0), descending=True)

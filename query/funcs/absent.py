"""``absent`` and ``absent_over_time`` (Prometheus 2.42).

Both yield one series with value 1 at the steps where their argument has nothing. Its
labels come from the argument's syntax (`FunctionContext.args`): for a plain selector, the
equality matchers other than the metric name (inside any parentheses); a label named by
any other matcher, or by two matchers, is left out. Any other argument expression gives an empty label set.
"""

from __future__ import annotations

import numpy as np

from vigilops.query.ast import MatrixSelector, ParenExpr, VectorSelector
from vigilops.query.funcs._args import vector_arg, windows_arg
from vigilops.query.values import BoolArray, FunctionContext, Value, Vector
from vigilops.tsdb.model import METRIC_NAME, Labels, MatchType


def absent_labels(node: object) -> Labels:
    """The label set of `absent(node)` (2.42's `createLabelsForAbsentFunction`; the
    evaluator has removed parentheses around the argument by then)."""
    while isinstance(node, ParenExpr):
        node = node.expr
    if isinstance(node, MatrixSelector):
        node = node.vector
    if not isinstance(node, VectorSelector):
        return Labels()
    pairs: dict[str, str] = {}
    dropped: list[str] = []
    for m in node.matchers:
        if m.name == METRIC_NAME:
            continue
        if m.type is MatchType.EQUAL and m.name not in pairs:
            if m.value:
                pairs[m.name] = m.value
        else:
            dropped.append(m.name)
    for name in dropped:
        pairs.pop(name, None)
    return Labels(pairs)


def _absent_series(ctx: FunctionContext, missing: BoolArray) -> Vector:
    labels = absent_labels(ctx.args[0] if ctx.args else None)
    return Vector([labels], np.ones((1, len(missing))), missing[None, :].copy())


def absent(args: list[Value], ctx: FunctionContext) -> Value:
    """``absent(v instant-vector)``: 1 where `v` has no sample."""
    vec = vector_arg(args, 0)
    missing: BoolArray = ~np.any(vec.present, axis=0, keepdims=False).astype(bool)
    return _absent_series(ctx, missing)


def absent_over_time(args: list[Value], ctx: FunctionContext) -> Value:
    """``absent_over_time(v range-vector)``: 1 where no window of `v` holds a sample."""
    win = windows_arg(args, 0)
    missing: BoolArray = ~np.any(win.counts > 0, axis=0).astype(bool)
    return _absent_series(ctx, missing)

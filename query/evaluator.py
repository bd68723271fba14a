"""The AST walker: every node is evaluated once, for all the steps of its grid at once.

`Evaluator.eval(expr, times)` returns the node's `Value` at every time of `times` (the
query's step grid, or a subquery's inner grid): `Scalar`, `String`, `Vector`, or `Windows`
for a range selector or subquery. Selectors read the series `load_selections` loaded before
evaluation began. An `Evaluator` serves one query execution and is not shared by threads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from vigilops.query.aggregation import eval_aggregation
from vigilops.query.ast import (
    AggregateExpr,
    BinaryExpr,
    Call,
    Expr,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    VectorSelector,
)
from vigilops.query.binary import eval_binary
from vigilops.query.grouping import without_name
from vigilops.query.limits import QueryLimits
from vigilops.query.selection import (
    QueryTimes,
    SelectorKey,
    SeriesSet,
    instant_vector,
    range_windows,
    selector_key,
    selector_times,
    subquery_grid,
    subquery_step,
    unwrap_parens,
    vector_to_windows,
)
from vigilops.query.values import (
    ExecutionError,
    FunctionContext,
    Int64Array,
    Scalar,
    String,
    Value,
    Vector,
    Windows,
    merge_same_labels,
)

#: A function implementation: evaluated arguments and context in, value out.
FunctionImpl = Callable[[list[Value], FunctionContext], Value]


def default_functions() -> Mapping[str, FunctionImpl]:
    """The registry of `vigilops.query.funcs` (empty if that package is missing)."""
    try:
        from vigilops.query.funcs import IMPLEMENTATIONS
    except ImportError:
        return {}
    return IMPLEMENTATIONS


class Evaluator:
    """Evaluates expressions of one query over step grids (see the module docstring)."""

    def __init__(
        self,
        series: Mapping[SelectorKey, SeriesSet],
        query_times: QueryTimes,
        limits: QueryLimits,
        functions: Mapping[str, FunctionImpl],
        lookback_ms: int,
        subquery_step_ms: int,
    ) -> None:
        self.series = series
        self.query_times = query_times
        self.limits = limits
        self.functions = functions
        self.lookback_ms = lookback_ms
        self.subquery_step_ms = subquery_step_ms

    def eval(self, expr: Expr, times: Int64Array) -> Value:
        """The value of `expr` at each of `times`."""
        self.limits.check()
        if isinstance(expr, ParenExpr):
            return self.eval(expr.expr, times)
        if isinstance(expr, VectorSelector):
            value: Value = self._vector_selector(expr, times)
        else:
            value = self._eval_node(expr, times)
            if isinstance(value, Vector) and value.sample_ts is not None:
                # Only a selector's own vector carries sample times (for timestamp()).
                value = Vector(value.labels, value.values, value.present)
        if isinstance(value, Vector):
            self.limits.hold(int(np.count_nonzero(value.present)))
        elif isinstance(value, Windows):
            self.limits.hold(len(value.ts))
        return value

    def _eval_node(self, expr: Expr, times: Int64Array) -> Value:
        if isinstance(expr, NumberLiteral):
            return Scalar(np.full(len(times), expr.value, dtype=np.float64))
        if isinstance(expr, StringLiteral):
            return String(expr.value)
        if isinstance(expr, MatrixSelector):
            return self._matrix_selector(expr, times)
        if isinstance(expr, SubqueryExpr):
            return self._subquery(expr, times)
        if isinstance(expr, Call):
            return self._call(expr, times)
        if isinstance(expr, UnaryExpr):
            return self._unary(expr, times)
        if isinstance(expr, BinaryExpr):
            return eval_binary(expr, self.eval(expr.lhs, times), self.eval(expr.rhs, times))
        if isinstance(expr, AggregateExpr):
            param = None if expr.param is None else self.eval(expr.param, times)
            return eval_aggregation(expr, self._vector(expr.expr, times), param, self.limits)
        raise ExecutionError(f"unexpected expression {type(expr).__name__}")  # pragma: no cover

    def _vector(self, expr: Expr, times: Int64Array) -> Vector:
        value = self.eval(expr, times)
        if not isinstance(value, Vector):  # pragma: no cover - the type checker prevents it
            raise ExecutionError(f"expected an instant vector, got {type(value).__name__}")
        return value

    # -- selectors -----------------------------------------------------------------------------
    def _vector_selector(self, sel: VectorSelector, times: Int64Array) -> Vector:
        eval_ts = selector_times(times, sel.offset_ms, sel.at, self.query_times)
        loaded = self.series[selector_key(sel.matchers)]
        self.limits.dense(len(loaded) * len(times))
        return instant_vector(loaded, eval_ts, self.lookback_ms)

    def _matrix_selector(self, sel: MatrixSelector, times: Int64Array) -> Windows:
        vs = sel.vector
        eval_ts = selector_times(times, vs.offset_ms, vs.at, self.query_times)
        loaded = self.series[selector_key(vs.matchers)]
        self.limits.dense(len(loaded) * len(times))
        return range_windows(loaded, eval_ts, sel.range_ms)

    def _subquery(self, sub: SubqueryExpr, times: Int64Array) -> Windows:
        """``expr[range:step]``: `expr` evaluated on the subquery's own grid (multiples of
        the step covering every window), its points windowed like a range selector."""
        eval_ts = selector_times(times, sub.offset_ms, sub.at, self.query_times)
        inner_times = np.zeros(0, dtype=np.int64)
        if len(eval_ts):
            step = subquery_step(sub, self.subquery_step_ms)
            inner_times = subquery_grid(int(eval_ts.min()), int(eval_ts.max()), sub.range_ms, step)
        inner = self._vector(sub.expr, inner_times) if len(inner_times) else Vector.empty(0)
        self.limits.dense(len(inner) * len(times))
        return vector_to_windows(inner, inner_times, eval_ts, sub.range_ms)

    # -- calls and operators ----------------------------------------------------------------
    def _call(self, call: Call, times: Int64Array) -> Value:
        name = call.function.name
        impl = self.functions.get(name)
        if impl is None:
            raise ExecutionError(f"function {name!r} is not implemented")
        args = [self.eval(arg, times) for arg in call.args]
        has_range = any(isinstance(unwrap_parens(a), (MatrixSelector, SubqueryExpr)) for a in call.args)
        out = impl(args, FunctionContext(times=times, args=call.args, lookback_ms=self.lookback_ms))
        if not isinstance(out, Vector):
            return out
        out = Vector(out.labels, out.values, out.present).compact()
        if has_range:
            # Prometheus checks a range function's output as a whole, not step by step.
            _check_unique(out)
            return out
        return merge_same_labels(out)

    def _unary(self, expr: UnaryExpr, times: Int64Array) -> Value:
        value = self.eval(expr.expr, times)
        if expr.op != "-":
            return value
        if isinstance(value, Scalar):
            return Scalar(-value.values)
        if isinstance(value, Vector):
            vec = value.compact()
            out = Vector([without_name(ls) for ls in vec.labels], np.where(vec.present, -vec.values, 0.0), vec.present)
            _check_unique(out)  # checked over the whole range, as 2.42 does
            return out
        raise ExecutionError(f"unary minus of {type(value).__name__}")  # pragma: no cover


def _check_unique(vec: Vector) -> None:
    if len(set(vec.labels)) < len(vec.labels):
        raise ExecutionError("vector cannot contain metrics with the same labelset")

"""The AST walker: every node is evaluated once, for all the steps of its grid at once.

`Evaluator.eval(expr, times)` returns the node's `Value` at every time of `times` (the
query's step grid, or a subquery's inner grid): `Scalar`, `String`, `Vector`, or `Windows`
for a range selector or subquery. Selectors read the series `load_selections` loaded before
evaluation began. An `Evaluator` serves one query execution and is not shared by threads.

``@`` follows Prometheus 2.42's step invariance (``PreprocessExpr``): a sub-expression whose
value cannot change from step to step (`step_invariant`: its selectors and subqueries all
carry ``@``, its functions do not read the evaluation time) is evaluated once, at the first
time of its grid, and repeated at every step; its other parts are evaluated at every step.
Two 2.42 behaviours follow from how it does that and are reproduced: a range selector or
subquery with ``@`` that is the argument of a call that is *not* step-invariant (e.g.
``predict_linear(x[5m] @ t, 60)``, or a call with another argument without ``@``) is read at
``@ - offset + (step time - first time of the grid)``, not at the ``@`` time, and sees only
the samples of the range selected for ``@`` (`selector_bounds`), so its windows drift and
empty; ``timestamp(x @ t offset o)`` looks for samples at `t`, not ``t - o``, among those
selected for ``t - o``.
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
    selector_bounds,
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

#: Functions whose value depends on the evaluation time even when their arguments do not,
#: or that read their argument's sample times (2.42's ``AtModifierUnsafeFunctions``): a
#: call of one is never step-invariant.
AT_MODIFIER_UNSAFE_FUNCTIONS = frozenset({
    "days_in_month", "day_of_month", "day_of_week", "day_of_year", "hour", "minute", "month",
    "year", "predict_linear", "time", "timestamp",
})


def step_invariant(expr: Expr) -> bool:
    """Whether 2.42 treats `expr` as step-invariant (``preprocessExprHelper``): literals;
    selectors and subqueries with ``@`` (a subquery whatever its inside); aggregations,
    parentheses and unary minus of a step-invariant operand (an aggregation's parameter is
    not looked at); binary operations of two step-invariant sides; calls of a function not
    in `AT_MODIFIER_UNSAFE_FUNCTIONS` whose arguments are all step-invariant."""
    if isinstance(expr, (NumberLiteral, StringLiteral)):
        return True
    if isinstance(expr, VectorSelector):
        return expr.at is not None
    if isinstance(expr, MatrixSelector):
        return expr.vector.at is not None
    if isinstance(expr, SubqueryExpr):
        return expr.at is not None
    if isinstance(expr, (ParenExpr, UnaryExpr)):
        return step_invariant(expr.expr)
    if isinstance(expr, AggregateExpr):
        return step_invariant(expr.expr)
    if isinstance(expr, BinaryExpr):
        return step_invariant(expr.lhs) and step_invariant(expr.rhs)
    if isinstance(expr, Call):
        return expr.function.name not in AT_MODIFIER_UNSAFE_FUNCTIONS and all(
            step_invariant(a) for a in expr.args
        )
    return False  # pragma: no cover - no other node types


def repeat_steps(value: Value, steps: int) -> Value:
    """A value evaluated at one step, repeated at `steps` steps."""
    if isinstance(value, Scalar):
        return Scalar(np.repeat(value.values, steps))
    if isinstance(value, Vector):
        sample_ts = None if value.sample_ts is None else np.repeat(value.sample_ts, steps, axis=1)
        return Vector(value.labels, np.repeat(value.values, steps, axis=1),
                      np.repeat(value.present, steps, axis=1), sample_ts)
    return value


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
        #: The range Prometheus selects for each selector node (by id), set by the first
        #: `eval` (of the query's root).
        self._bounds: dict[int, tuple[int, int]] | None = None
        self._invariant: dict[int, bool] = {}

    def eval(self, expr: Expr, times: Int64Array) -> Value:
        """The value of `expr` at each of `times`."""
        self.limits.check()
        if self._bounds is None:
            self._bounds = selector_bounds(expr, self.query_times, self.lookback_ms)
        if isinstance(expr, ParenExpr):
            return self.eval(expr.expr, times)
        if len(times) > 1 and self._step_invariant(expr) and not isinstance(
            expr, (MatrixSelector, SubqueryExpr)
        ):
            repeated = repeat_steps(self.eval(expr, times[:1]), len(times))
            if isinstance(repeated, Vector):
                self.limits.hold(int(np.count_nonzero(repeated.present)))
            return repeated
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

    def _step_invariant(self, expr: Expr) -> bool:
        known = self._invariant.get(id(expr))
        if known is None:
            known = self._invariant[id(expr)] = step_invariant(expr)
        return known

    def _selector_bounds(self, sel: VectorSelector) -> tuple[int, int] | None:
        return None if self._bounds is None else self._bounds.get(id(sel))

    def _vector(self, expr: Expr, times: Int64Array) -> Vector:
        value = self.eval(expr, times)
        if not isinstance(value, Vector):  # pragma: no cover - the type checker prevents it
            raise ExecutionError(f"expected an instant vector, got {type(value).__name__}")
        return value

    # -- selectors -----------------------------------------------------------------------------
    def _vector_selector(
        self, sel: VectorSelector, times: Int64Array, ignore_offset: bool = False
    ) -> Vector:
        offset = 0 if ignore_offset else sel.offset_ms
        eval_ts = selector_times(times, offset, sel.at, self.query_times)
        loaded = self.series[selector_key(sel.matchers)]
        self.limits.dense(len(loaded) * len(times))
        return instant_vector(loaded, eval_ts, self.lookback_ms, self._selector_bounds(sel))

    def _matrix_selector(self, sel: MatrixSelector, times: Int64Array, drift: bool = False) -> Windows:
        vs = sel.vector
        eval_ts = selector_times(times, vs.offset_ms, vs.at, self.query_times)
        if drift:
            eval_ts = eval_ts + (times - times[0])
        loaded = self.series[selector_key(vs.matchers)]
        self.limits.dense(len(loaded) * len(times))
        return range_windows(loaded, eval_ts, sel.range_ms, self._selector_bounds(vs))

    def _subquery(self, sub: SubqueryExpr, times: Int64Array, drift: bool = False) -> Windows:
        """``expr[range:step]``: `expr` evaluated on the subquery's own grid (multiples of
        the step covering every window), its points windowed like a range selector."""
        eval_ts = selector_times(times, sub.offset_ms, sub.at, self.query_times)
        if drift:
            eval_ts = eval_ts + (times - times[0])
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
        args = [self._call_arg(call, arg, times) for arg in call.args]
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

    def _call_arg(self, call: Call, arg: Expr, times: Int64Array) -> Value:
        """An argument of a call that is not step-invariant (or evaluated at one step). A
        range argument with ``@`` drifts with the step, and timestamp()'s selector with
        ``@`` is read at the ``@`` time without its offset (see the module docstring)."""
        inner = unwrap_parens(arg)
        if len(times) > 1 and self._step_invariant(inner):
            if isinstance(inner, MatrixSelector):
                self.limits.check()
                return self._hold(self._matrix_selector(inner, times, drift=True))
            if isinstance(inner, SubqueryExpr):
                self.limits.check()
                return self._hold(self._subquery(inner, times, drift=True))
        if call.function.name == "timestamp" and isinstance(inner, VectorSelector) and inner.at is not None:
            self.limits.check()
            vec = self._vector_selector(inner, times, ignore_offset=True)
            self.limits.hold(int(np.count_nonzero(vec.present)))
            return vec
        return self.eval(arg, times)

    def _hold(self, windows: Windows) -> Windows:
        self.limits.hold(len(windows.ts))
        return windows

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

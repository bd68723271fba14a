"""From storage to values: which time range each selector needs, loading it once, and
turning the loaded samples into a `Vector` (instant selectors) or `Windows` (range
selectors) for a whole grid of evaluation times.

Before evaluating, `plan_selections` walks the syntax tree with the same time arithmetic the
evaluator uses (`selector_times`, `subquery_grid`) and records, for every distinct set of
matchers, the smallest ``[mint, maxt]`` covering all its uses. `load_selections` then opens
one querier over the union of those ranges and selects each matcher set once.

Times are int64 milliseconds. The *effective evaluation time* of a selector at step ``j`` is
``E[j] = T[j] - offset`` or, with ``@``, ``at - offset`` at every step (`selector_times`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from vigilops.query.ast import (
    At,
    Call,
    Expr,
    MatrixSelector,
    ParenExpr,
    SubqueryExpr,
    VectorSelector,
)
from vigilops.query.limits import QueryLimits
from vigilops.query.values import Float64Array, Int64Array, Vector, Windows, windows_from_flat
from vigilops.tsdb.api import Querier, Queryable, SelectHints
from vigilops.query.window_kernels import instant_points
from vigilops.tsdb.model import STALE_NAN_BITS, Labels, Matcher

#: A selector's identity for loading: its matchers, order-independent.
SelectorKey = tuple[Matcher, ...]


@dataclass(frozen=True)
class QueryTimes:
    """The query's own start and end, what ``@ start()`` and ``@ end()`` stand for."""

    start: int
    end: int

    def resolve(self, at: At) -> int | None:
        """The timestamp of an ``@`` modifier in ms (None when there is none)."""
        if at is None:
            return None
        if at == "start":
            return self.start
        if at == "end":
            return self.end
        return int(at)


def selector_key(matchers: Iterable[Matcher]) -> SelectorKey:
    return tuple(sorted(set(matchers), key=lambda m: (m.name, m.type.value, m.value)))


def selector_times(times: Int64Array, offset_ms: int, at: At, qt: QueryTimes) -> Int64Array:
    """Effective evaluation times ``E`` of a selector or subquery evaluated at `times`."""
    fixed = qt.resolve(at)
    if fixed is not None:
        return np.full(len(times), fixed - offset_ms, dtype=np.int64)
    out: Int64Array = times - np.int64(offset_ms)
    return out


def align_up(t: int, step: int) -> int:
    """The first multiple of `step` that is ``>= t`` (Prometheus's subquery alignment)."""
    return -((-t) // step) * step


def subquery_grid(e_min: int, e_max: int, range_ms: int, step_ms: int) -> Int64Array:
    """Inner evaluation times of a subquery whose effective times span ``[e_min, e_max]``:
    the multiples of `step_ms` from ``e_min - range_ms`` (rounded up) to `e_max`."""
    first = align_up(e_min - range_ms, step_ms)
    if first > e_max:
        return np.zeros(0, dtype=np.int64)
    return np.arange(first, e_max + 1, step_ms, dtype=np.int64)


def subquery_step(sub: SubqueryExpr, default_step_ms: int) -> int:
    return sub.step_ms if sub.step_ms else default_step_ms


def unwrap_parens(expr: Expr) -> Expr:
    while isinstance(expr, ParenExpr):
        expr = expr.expr
    return expr


# ---- planning ------------------------------------------------------------------------------
@dataclass
class _Need:
    """What one matcher set must be loaded for: the union range and the uses' hints."""

    mint: int
    maxt: int
    uses: list[tuple[int, str]] = field(default_factory=list)  # (range_ms, func) per use

    def hints(self, step_ms: int) -> SelectHints:
        ranges = {r for r, _ in self.uses}
        funcs = {f for _, f in self.uses}
        range_ms = ranges.pop() if len(ranges) == 1 else 0
        func = funcs.pop() if len(funcs) == 1 else ""
        # SelectHints.start is the first evaluation time; the storage reads from start - range.
        return SelectHints(
            start=self.mint + range_ms, end=self.maxt, step_ms=step_ms, range_ms=range_ms, func=func
        )


@dataclass
class SelectionPlan:
    """The time range each distinct matcher set needs (see `plan_selections`)."""

    needs: dict[SelectorKey, _Need] = field(default_factory=dict)

    def add(self, matchers: Sequence[Matcher], mint: int, maxt: int, range_ms: int, func: str) -> None:
        key = selector_key(matchers)
        need = self.needs.get(key)
        if need is None:
            self.needs[key] = _Need(mint, maxt, [(range_ms, func)])
        else:
            need.mint, need.maxt = min(need.mint, mint), max(need.maxt, maxt)
            need.uses.append((range_ms, func))

    @property
    def mint(self) -> int:
        return min(n.mint for n in self.needs.values())

    @property
    def maxt(self) -> int:
        return max(n.maxt for n in self.needs.values())


def plan_selections(
    expr: Expr, t_min: int, t_max: int, qt: QueryTimes, lookback_ms: int, default_step_ms: int
) -> SelectionPlan:
    """Record the range every selector of `expr` needs when evaluated at times spanning
    ``[t_min, t_max]`` (subqueries included, with their own inner grids)."""
    plan = SelectionPlan()
    _plan(expr, t_min, t_max, qt, lookback_ms, default_step_ms, plan, "")
    return plan


def _e_bounds(t_min: int, t_max: int, offset_ms: int, at: At, qt: QueryTimes) -> tuple[int, int]:
    fixed = qt.resolve(at)
    if fixed is not None:
        return fixed - offset_ms, fixed - offset_ms
    return t_min - offset_ms, t_max - offset_ms


def _plan(
    expr: Expr, t_min: int, t_max: int, qt: QueryTimes, lookback_ms: int, default_step_ms: int,
    plan: SelectionPlan, func: str,
) -> None:
    if isinstance(expr, VectorSelector):
        lo, hi = _e_bounds(t_min, t_max, expr.offset_ms, expr.at, qt)
        plan.add(expr.matchers, lo - lookback_ms, hi, 0, func)
    elif isinstance(expr, MatrixSelector):
        vs = expr.vector
        lo, hi = _e_bounds(t_min, t_max, vs.offset_ms, vs.at, qt)
        plan.add(vs.matchers, lo - expr.range_ms, hi, expr.range_ms, func)
    elif isinstance(expr, SubqueryExpr):
        lo, hi = _e_bounds(t_min, t_max, expr.offset_ms, expr.at, qt)
        step = subquery_step(expr, default_step_ms)
        first = align_up(lo - expr.range_ms, step)
        if first <= hi:
            _plan(expr.expr, first, hi, qt, lookback_ms, default_step_ms, plan, "")
    else:
        name = expr.function.name if isinstance(expr, Call) else ""
        for child in expr.children():
            _plan(child, t_min, t_max, qt, lookback_ms, default_step_ms, plan, name)


def selector_bounds(root: Expr, qt: QueryTimes, lookback_ms: int) -> dict[int, tuple[int, int]]:
    """For every instant selector of `root` (by ``id``), the time range Prometheus 2.42
    selects for it and so the only samples it can see (``getTimeRangesForSelector``):
    ``[start - lookback (or range), end]`` from the query's start and end, moved back by the
    offsets and ranges of the enclosing subqueries, or pinned to the ``@`` time of the
    selector or of the innermost enclosing subquery with one, then moved back by the
    selector's own offset. Evaluation never looks outside it, except where 2.42 itself
    does (``@`` under a call that is not step-invariant) and then sees nothing there."""
    out: dict[int, tuple[int, int]] = {}

    def walk(node: Expr, subqueries: tuple[SubqueryExpr, ...], range_ms: int) -> None:
        if isinstance(node, VectorSelector):
            start, end = qt.start, qt.end
            sub_offset = sub_range = 0
            sub_at: int | None = None
            for sq in subqueries:
                sub_offset += sq.offset_ms
                sub_range += sq.range_ms
                if sq.at is not None:
                    sub_offset, sub_range, sub_at = sq.offset_ms, sq.range_ms, qt.resolve(sq.at)
            if sub_at is not None:
                start = end = sub_at
            fixed = qt.resolve(node.at)
            if fixed is not None:
                start = end = fixed
            else:
                start, end = start - sub_offset - sub_range, end - sub_offset
            start -= range_ms if range_ms else lookback_ms
            out[id(node)] = (start - node.offset_ms, end - node.offset_ms)
        elif isinstance(node, MatrixSelector):
            walk(node.vector, subqueries, node.range_ms)
        elif isinstance(node, SubqueryExpr):
            walk(node.expr, (*subqueries, node), 0)
        else:
            for child in node.children():
                walk(child, subqueries, 0)

    walk(root, (), 0)
    return out


# ---- loading -------------------------------------------------------------------------------
@dataclass
class SeriesSet:
    """The samples loaded for one matcher set, series in label order, laid out flat:
    series ``i`` is ``ts[starts[i]:ends[i]]`` / ``vs[…]`` (staleness markers kept;
    `stale_free` if the storage knows there is none)."""

    labels: list[Labels]
    ts: Int64Array
    vs: Float64Array
    starts: Int64Array
    ends: Int64Array
    stale_free: bool = False

    @classmethod
    def build(cls, labels: list[Labels], ts: list[Int64Array], vs: list[Float64Array]) -> SeriesSet:
        lengths = np.array([len(t) for t in ts], dtype=np.int64)
        ends = np.cumsum(lengths, dtype=np.int64)
        flat_ts = np.concatenate(ts).astype(np.int64, copy=False) if ts else np.zeros(0, np.int64)
        flat_vs = np.concatenate(vs).astype(np.float64, copy=False) if vs else np.zeros(0)
        return cls(labels, flat_ts, flat_vs, ends - lengths, ends)

    def __len__(self) -> int:
        return len(self.labels)


def load_selections(
    queryable: Queryable, plan: SelectionPlan, step_ms: int, limits: QueryLimits
) -> tuple[dict[SelectorKey, SeriesSet], list[str]]:
    """Open one querier over the union of the plan's ranges and select each matcher set
    once. Returns the loaded series by key and the storage's warnings."""
    loaded: dict[SelectorKey, SeriesSet] = {}
    if not plan.needs:
        return loaded, []
    querier = queryable.querier(plan.mint, plan.maxt)
    try:
        for key, need in plan.needs.items():
            if hasattr(querier, "select_columns"):
                loaded[key] = _load_flat(querier, key, need, step_ms)
            else:
                loaded[key] = _load_per_series(querier, key, need, step_ms, limits)
            limits.load(len(loaded[key].ts))
            limits.check()
        warnings = list(getattr(querier, "warnings", []))
    finally:
        querier.close()
    return loaded, warnings


def _load_flat(querier: Querier, key: SelectorKey, need: _Need, step_ms: int) -> SeriesSet:
    """One selector through `Querier.select_columns`: flat arrays from the start."""
    labels, cols = querier.select_columns(list(key), need.hints(step_ms))
    ts, vs = cols.timestamps, cols.values
    present, counts = cols.series_runs()
    ends = np.cumsum(counts, dtype=np.int64)
    lengths = counts
    # Each series' samples are in time order: its first and last bound them.
    if len(ts) and (
        int(ts[ends - counts].min()) < need.mint or int(ts[ends - 1].max()) > need.maxt
    ):
        inside = (ts >= need.mint) & (ts <= need.maxt)
        ts, vs = ts[inside], vs[inside]
        lengths = np.bincount(cols.refs[inside], minlength=len(labels)).astype(np.int64)
    elif len(present) < len(labels):
        lengths = np.zeros(len(labels), dtype=np.int64)
        lengths[present] = counts
    if len(labels) and not lengths.all():
        present = np.flatnonzero(lengths)
        labels = [labels[i] for i in present.tolist()]
        lengths = lengths[present]
    if lengths is not counts:
        ends = np.cumsum(lengths, dtype=np.int64)
    return SeriesSet(labels, ts, vs, ends - lengths, ends, cols.stale_free)


def _load_per_series(
    querier: Querier, key: SelectorKey, need: _Need, step_ms: int, limits: QueryLimits
) -> SeriesSet:
    """One selector through `Querier.select`, for queriers without `select_columns`."""
    labels: list[Labels] = []
    ts: list[Int64Array] = []
    vs: list[Float64Array] = []
    for series in querier.select(list(key), need.hints(step_ms), sort=True):
        t, v = series.timestamps, series.values
        if len(t) and (t[0] < need.mint or t[-1] > need.maxt):
            a = int(np.searchsorted(t, need.mint, side="left"))
            b = int(np.searchsorted(t, need.maxt, side="right"))
            t, v = t[a:b], v[a:b]
        if not len(t):
            continue
        labels.append(series.labels)
        ts.append(t)
        vs.append(v)
        if len(labels) % 256 == 0:
            limits.check()
    return SeriesSet.build(labels, ts, vs)


# ---- selecting -----------------------------------------------------------------------------
def instant_vector(
    ss: SeriesSet, eval_ts: Int64Array, lookback_ms: int, bounds: tuple[int, int] | None = None
) -> Vector:
    """The instant vector selected at each effective time ``eval_ts[j]``: per series, the
    latest sample with ``eval_ts[j] - lookback_ms <= t <= eval_ts[j]``, absent if there is
    none or it is a staleness marker. Keeps ``__name__`` and records `sample_ts`.

    `bounds` ``(mint, maxt)`` hides the samples outside that range, as Prometheus's querier
    does with the range it selected for the selector (see `selector_bounds`)."""
    n, steps = len(ss), len(eval_ts)
    if n == 0 or steps == 0:
        return Vector.empty(steps)
    upper, lower = eval_ts, eval_ts - lookback_ms
    if bounds is not None:
        upper, lower = np.minimum(upper, bounds[1]), np.maximum(lower, bounds[0])
    values, present, sample_ts = instant_points(
        ss.ts, ss.vs, ss.starts, ss.ends, upper, lower, STALE_NAN_BITS
    )
    return Vector(list(ss.labels), values, present, sample_ts).compact()


def range_windows(
    ss: SeriesSet, eval_ts: Int64Array, range_ms: int, bounds: tuple[int, int] | None = None
) -> Windows:
    """The range vector ``[E - range_ms, E]`` of every series at every effective time, without
    the samples outside `bounds` (as for `instant_vector`)."""
    keep = None
    if bounds is not None and len(eval_ts) and len(ss) and (
        int(eval_ts.max()) > bounds[1] or int(eval_ts.min()) - range_ms < bounds[0]
    ):
        keep = (ss.ts >= bounds[0]) & (ss.ts <= bounds[1])
    return windows_from_flat(
        ss.labels, ss.ts, ss.vs, ss.ends - ss.starts, eval_ts, range_ms, keep, ss.stale_free
    )


def vector_to_windows(vec: Vector, times: Int64Array, eval_ts: Int64Array, range_ms: int) -> Windows:
    """A subquery's range vector: the points of `vec` (evaluated at `times`) as samples,
    windowed ``[E - range_ms, E]`` at every effective time."""
    rows, cols = np.nonzero(vec.present)  # row-major: each series' points in time order
    lengths = vec.present.sum(axis=1).astype(np.int64)
    return windows_from_flat(vec.labels, times[cols], vec.values[rows, cols], lengths, eval_ts, range_ms)

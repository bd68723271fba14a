"""The PromQL engine: instant and range queries against any `Queryable`.

    engine = Engine(db, EngineOptions())
    engine.instant_query("sum by (job) (rate(http_requests_total[5m]))", t_ms)
    engine.range_query("up", start_ms, end_ms, step_ms)

A query runs in three phases: plan the time range every selector needs, load them through
one querier, evaluate the tree once over the whole step grid (`vigilops.query.evaluator`).
Limits: at most ``max_concurrency`` queries run at once (waiting counts against the
timeout), every query has a deadline, and the samples loaded or held by one intermediate
value may not exceed ``max_samples``.

An `Engine` is thread-safe: it keeps no per-query state. Errors: `ParseError` for invalid
PromQL, `QueryError` subclasses (whose ``kind`` is the API's ``errorType``) otherwise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from vigilops.query.ast import Expr
from vigilops.query.evaluator import Evaluator, FunctionImpl, default_functions
from vigilops.query.functions import ValueType
from vigilops.query.limits import QUEUE_ENV, QueryLimits
from vigilops.query.parser import parse
from vigilops.query.selection import QueryTimes, load_selections, plan_selections
from vigilops.query.values import (
    BadQueryError,
    EngineBusy,
    InstantVector,
    Int64Array,
    Matrix,
    QueryResult,
    QueryTimeoutError,
    Result,
    Scalar,
    ScalarResult,
    StepGrid,
    String,
    StringResult,
    Value,
    Vector,
    Windows,
)
from vigilops.tsdb.api import Queryable
from vigilops.tsdb.model import Labels


@dataclass(frozen=True)
class EngineOptions:
    """Engine settings; the defaults are Prometheus 2.42's flag defaults."""

    #: ``--query.lookback-delta``: how far back an instant selector looks for a sample.
    lookback_delta_ms: int = 300_000
    #: ``--query.max-samples``: samples one query may load, or hold in one value.
    max_samples: int = 50_000_000
    #: ``--query.timeout``, in seconds (queueing included).
    timeout_s: float = 120.0
    #: ``--query.max-concurrency``.
    max_concurrency: int = 20
    #: The API's limit on ``(end - start) / step`` of a range query.
    max_points_per_series: int = 11_000
    #: Step of a subquery written without one (``x[5m:]``): the global evaluation interval.
    no_step_subquery_interval_ms: int = 60_000


class Engine:
    """Runs PromQL queries against `queryable` (anything with ``querier(mint, maxt)``).

    `functions` replaces the function registry (`vigilops.query.funcs.IMPLEMENTATIONS`),
    for tests and embedding.
    """

    def __init__(
        self,
        queryable: Queryable,
        options: EngineOptions | None = None,
        functions: Mapping[str, FunctionImpl] | None = None,
    ) -> None:
        self.queryable = queryable
        self.options = options or EngineOptions()
        self._functions = functions
        self._slots = threading.BoundedSemaphore(self.options.max_concurrency)

    # -- public API --------------------------------------------------------------------------
    def instant_query(
        self, query: str | Expr, t_ms: int, *, timeout_s: float | None = None, wait: bool = True
    ) -> QueryResult:
        """Evaluate `query` at `t_ms`. The value is an `InstantVector`, `ScalarResult`,
        `StringResult`, or a `Matrix` for a range-vector expression (raw samples).

        `timeout_s` shortens the engine's timeout for this query (never lengthens it).
        With `wait` False, raise `EngineBusy` at once if ``max_concurrency`` queries are
        running, instead of queueing."""
        expr = parse(query) if isinstance(query, str) else query
        return self._run(expr, StepGrid(t_ms, t_ms, 0), timeout_s, wait)

    def range_query(
        self, query: str | Expr, start_ms: int, end_ms: int, step_ms: int, *,
        timeout_s: float | None = None, wait: bool = True,
    ) -> QueryResult:
        """Evaluate `query` at ``start, start + step, … <= end``. The value is a `Matrix`
        (series sorted by labels; series without points left out)."""
        if end_ms < start_ms:
            raise BadQueryError("end timestamp must not be before start time")
        if step_ms <= 0:
            raise BadQueryError(
                "zero or negative query resolution step widths are not accepted. Try a positive integer"
            )
        limit = self.options.max_points_per_series
        if (end_ms - start_ms) // step_ms > limit:
            raise BadQueryError(
                f"exceeded maximum resolution of {limit:,} points per timeseries. "
                "Try decreasing the query resolution (?step=XX)"
            )
        expr = parse(query) if isinstance(query, str) else query
        if expr.type not in (ValueType.SCALAR, ValueType.VECTOR):
            raise BadQueryError(
                f'invalid expression type "{expr.type.documented}" for range query, '
                "must be Scalar or instant Vector"
            )
        return self._run(expr, StepGrid(start_ms, end_ms, step_ms), timeout_s, wait)

    # -- execution ---------------------------------------------------------------------------
    def _run(self, expr: Expr, grid: StepGrid, timeout_s: float | None, wait: bool) -> QueryResult:
        opts = self.options
        timeout = opts.timeout_s if timeout_s is None else min(timeout_s, opts.timeout_s)
        deadline = time.monotonic() + timeout
        if not wait:
            if not self._slots.acquire(blocking=False):
                raise EngineBusy()
        elif not self._slots.acquire(timeout=max(0.0, timeout)):
            raise QueryTimeoutError(f"query timed out in {QUEUE_ENV}")
        try:
            limits = QueryLimits(deadline, opts.max_samples)
            limits.check(QUEUE_ENV)
            times = grid.times
            query_times = QueryTimes(grid.start, grid.end)
            plan = plan_selections(
                expr, int(times[0]), int(times[-1]), query_times,
                opts.lookback_delta_ms, opts.no_step_subquery_interval_ms,
            )
            series, warnings = load_selections(self.queryable, plan, grid.step, limits)
            functions = self._functions if self._functions is not None else default_functions()
            evaluator = Evaluator(
                series, query_times, limits, functions,
                opts.lookback_delta_ms, opts.no_step_subquery_interval_ms,
            )
            # Float edge cases (Inf - Inf, 0/0, overflow) are PromQL values, not errors.
            with np.errstate(all="ignore"):
                value = evaluator.eval(expr, times)
            limits.check()
            result = instant_result(value, grid.start) if grid.step <= 0 else range_result(value, times)
            return QueryResult(result, warnings, limits.stats)
        finally:
            self._slots.release()


def instant_result(value: Value, t: int) -> Result:
    """The API shape of an instant query's value."""
    if isinstance(value, Scalar):
        return ScalarResult(t, float(value.values[0]))
    if isinstance(value, String):
        return StringResult(t, value.value)
    if isinstance(value, Windows):
        labels: list[Labels] = []
        ts: list[Int64Array] = []
        vs = []
        for i, ls in enumerate(value.labels):
            lo, hi = int(value.lo[i, 0]), int(value.hi[i, 0])
            if hi > lo:
                labels.append(ls)
                ts.append(value.ts[lo:hi].copy())
                vs.append(value.vs[lo:hi].copy())
        return Matrix(labels, ts, vs)
    present = value.present[:, 0]
    rows = np.flatnonzero(present)
    return InstantVector(t, [value.labels[i] for i in rows.tolist()], value.values[rows, 0].copy())


def range_result(value: Value, times: Int64Array) -> Matrix:
    """The API shape of a range query's value: series sorted by labels, present points."""
    if isinstance(value, Scalar):
        return Matrix([Labels()], [times.copy()], [value.values.copy()])
    if not isinstance(value, Vector):  # pragma: no cover - range_query checks the type
        raise BadQueryError("range query of a range vector or string")
    order = np.array(sorted(range(len(value)), key=lambda i: value.labels[i]), dtype=np.int64)
    present = value.present[order]
    counts = present.sum(axis=1)
    kept = counts > 0
    # Every series' present points at once; each series' are a view of them. Without
    # gaps, no masking.
    if len(order) and bool(kept.all()) and int(counts.min()) == len(times):
        flat_ts = np.tile(times, len(order))
        flat_vs = np.take(value.values, order, axis=0).reshape(-1)
    else:
        flat_ts = np.broadcast_to(times, present.shape)[present]
        flat_vs = np.take(value.values, order, axis=0)[present]
    ends = np.cumsum(counts[kept]).tolist()
    starts = [0, *ends[:-1]]
    return Matrix(
        [value.labels[i] for i in order[kept].tolist()],
        [flat_ts[a:b] for a, b in zip(starts, ends)],
        [flat_vs[a:b] for a, b in zip(starts, ends)],
        (flat_ts, flat_vs),
    )

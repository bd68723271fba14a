"""Per-query limits the evaluator enforces while it runs: the deadline and the sample budget.

One `QueryLimits` belongs to one query execution (it is not shared between threads). The
evaluator calls `check` between node evaluations and inside its per-series and per-group
loops, and reports every value it materialises with `hold`; storage selections are reported
with `load`.
"""

from __future__ import annotations

import time

from vigilops.query.values import QueryStats, QueryTimeoutError, TooManySamplesError

#: Where the evaluation is when the deadline passes, as in Prometheus's ``ErrQueryTimeout``.
EVAL_ENV = "expression evaluation"
QUEUE_ENV = "query queue"


class QueryLimits:
    """The deadline (a `time.monotonic` value, or None for none) and the sample budget
    of one query, plus the statistics the engine reports about it."""

    def __init__(self, deadline: float | None, max_samples: int) -> None:
        self.deadline = deadline
        self.max_samples = max_samples
        self.stats = QueryStats()

    def check(self, env: str = EVAL_ENV) -> None:
        """Raise `QueryTimeoutError` if the deadline has passed."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise QueryTimeoutError(f"query timed out in {env}")

    def load(self, samples: int) -> None:
        """Account for `samples` read from storage; the total may not exceed the budget."""
        self.stats.samples_loaded += samples
        if self.stats.samples_loaded > self.max_samples:
            raise TooManySamplesError()
        self.check()

    def hold(self, samples: int) -> None:
        """Account for an intermediate value of `samples` points (Prometheus's
        ``currentSamples``): a single value may not exceed the budget."""
        if samples > self.stats.peak_samples:
            self.stats.peak_samples = samples
        if samples > self.max_samples:
            raise TooManySamplesError()

    def dense(self, cells: int) -> None:
        """Refuse to lay out a ``series × steps`` value of more than `max_samples` cells.

        Values are dense over the step grid, so memory follows series × steps, not the
        samples present. Prometheus counts only present samples: a query whose series are
        mostly absent (high churn over a long range, ``count_values`` of a gauge) can pass
        there and fail here; the alternative is a query that takes the process down."""
        if cells > self.max_samples:
            raise TooManySamplesError()

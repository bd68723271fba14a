"""The engine's limits: samples per query, timeouts (evaluation and queue), concurrency,
points per series of range queries, and use from many threads at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

import numpy as np
import pytest

from vigilops.query.engine import Engine, EngineOptions
from vigilops.query.values import (
    BadQueryError,
    InstantVector,
    Matrix,
    QueryTimeoutError,
    TooManySamplesError,
)
from vigilops.tsdb.api import Querier, SelectHints, SeriesData
from vigilops.tsdb.db import DB
from vigilops.tsdb.model import Labels, Matcher

S = 1000
M = 60 * S
T0 = 1111 * 900_000
SERIES = 10
POINTS = 61  # one per minute for an hour


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DB]:
    db = DB.open(str(tmp_path_factory.mktemp("limits") / "db"))
    labels = [Labels({"__name__": "m", "i": str(i), "g": str(i % 2)}) for i in range(SERIES)]
    app = db.appender()
    refs = app.refs(labels)
    for k in range(POINTS):
        app.append(refs, T0 + k * M, np.arange(SERIES, dtype=np.float64) + k)
    app.commit()
    yield db
    db.close()


class _SlowQueryable:
    """Wraps a database; every ``select``/``select_columns`` first waits on `gate` or
    sleeps `delay` s."""

    def __init__(self, db: DB, delay: float = 0.0, gate: threading.Event | None = None) -> None:
        self.db, self.delay, self.gate = db, delay, gate
        self.entered = threading.Event()

    def querier(self, mint: int, maxt: int) -> Querier:
        outer = self
        inner = self.db.querier(mint, maxt)

        class _Q:
            def select(self, matchers: Sequence[Matcher], hints: SelectHints | None = None,
                       sort: bool = False) -> Iterator[SeriesData]:
                outer.entered.set()
                if outer.gate is not None:
                    outer.gate.wait(10)
                time.sleep(outer.delay)
                return inner.select(matchers, hints, sort)

            def select_columns(self, matchers: Sequence[Matcher],
                               hints: SelectHints | None = None) -> Any:
                outer.entered.set()
                if outer.gate is not None:
                    outer.gate.wait(10)
                time.sleep(outer.delay)
                return inner.select_columns(matchers, hints)

            def close(self) -> None:
                inner.close()

            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

            def __enter__(self) -> Any:
                return self

            def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
                self.close()

        return _Q()  # type: ignore[return-value]


def test_samples_loaded_are_counted_and_limited(db: DB) -> None:
    ok = Engine(db, EngineOptions(max_samples=SERIES * 6)).instant_query("m[5m]", T0 + 30 * M)
    assert ok.stats.samples_loaded == SERIES * 6  # [25m, 30m] holds 6 samples per series
    with pytest.raises(TooManySamplesError) as err:
        Engine(db, EngineOptions(max_samples=SERIES * 6 - 1)).instant_query("m[5m]", T0 + 30 * M)
    assert str(err.value) == "query processing would load too many samples into memory in query execution"
    assert err.value.kind == "execution"


def test_intermediate_values_are_limited(db: DB) -> None:
    # A range query holds SERIES × steps points in the selector's vector.
    engine = Engine(db, EngineOptions(max_samples=SERIES * POINTS + 50))
    res = engine.range_query("m", T0 + 10 * M, T0 + 60 * M, M)
    assert res.stats.peak_samples == SERIES * 51
    with pytest.raises(TooManySamplesError):
        engine.range_query("m", T0, T0 + 60 * M, 15 * S)  # 10 × 241 points


def test_same_selector_is_loaded_once(db: DB) -> None:
    res = Engine(db).instant_query("m + m + m offset 1m", T0 + 30 * M)
    # One selection over [29m - 5m, 30m]: 7 samples per series.
    assert res.stats.samples_loaded == SERIES * 7


def test_timeout_during_evaluation(db: DB) -> None:
    engine = Engine(_SlowQueryable(db, delay=0.3), EngineOptions(timeout_s=0.1))
    with pytest.raises(QueryTimeoutError) as err:
        engine.instant_query("sum(m)", T0)
    assert str(err.value) == "query timed out in expression evaluation"
    assert err.value.kind == "timeout"


def test_per_query_timeout_only_shortens(db: DB) -> None:
    engine = Engine(_SlowQueryable(db, delay=0.2), EngineOptions(timeout_s=0.1))
    assert engine.instant_query("1", T0, timeout_s=5.0).value is not None  # no selection: fast
    with pytest.raises(QueryTimeoutError):
        engine.instant_query("m", T0, timeout_s=5.0)  # still the engine's 0.1 s
    fast = Engine(_SlowQueryable(db, delay=0.2), EngineOptions(timeout_s=5.0))
    assert fast.instant_query("m", T0).value is not None
    with pytest.raises(QueryTimeoutError):
        fast.range_query("m", T0, T0 + M, M, timeout_s=0.05)


def test_timeout_while_queued(db: DB) -> None:
    gate = threading.Event()
    slow = _SlowQueryable(db, gate=gate)
    engine = Engine(slow, EngineOptions(timeout_s=0.3, max_concurrency=1))
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(engine.instant_query, "m", T0)
        assert slow.entered.wait(5)
        try:
            with pytest.raises(QueryTimeoutError) as err:
                engine.instant_query("m", T0)
            assert str(err.value) == "query timed out in query queue"
        finally:
            gate.set()
        with pytest.raises(QueryTimeoutError):
            first.result(10)  # it waited past its own deadline
    # The slot is free again.
    assert isinstance(engine.instant_query("1", T0).value, object)


@pytest.mark.parametrize(
    ("start", "end", "step", "message"),
    [
        (T0, T0 + 11_001 * S, S, "exceeded maximum resolution of 11,000 points per timeseries. "
                                 "Try decreasing the query resolution (?step=XX)"),
        (T0, T0 - 1, S, "end timestamp must not be before start time"),
        (T0, T0 + M, 0, "zero or negative query resolution step widths are not accepted. Try a positive integer"),
    ],
)
def test_range_query_parameters(db: DB, start: int, end: int, step: int, message: str) -> None:
    with pytest.raises(BadQueryError) as err:
        Engine(db).range_query("m", start, end, step)
    assert str(err.value) == message
    assert err.value.kind == "bad_data"


def test_points_limit_allows_exactly_the_maximum(db: DB) -> None:
    # Prometheus rejects (end - start) / step > 11000: 11,001 points still pass.
    res = Engine(db).range_query("1", T0, T0 + 11_000 * S, S)
    assert isinstance(res.value, Matrix) and len(res.value.timestamps[0]) == 11_001
    engine = Engine(db, EngineOptions(max_points_per_series=10))
    with pytest.raises(BadQueryError, match="maximum resolution of 10 points"):
        engine.range_query("1", T0, T0 + 11 * S, S)


def test_many_threads_get_consistent_results(db: DB) -> None:
    engine = Engine(db, EngineOptions(max_concurrency=3))
    queries = ["sum by (g) (m)", "m / on(i) group_left m", "topk(3, m)", "m > 30", "avg(m)"]
    expected = {q: engine.range_query(q, T0, T0 + 60 * M, M).value for q in queries}

    def run(q: str) -> bool:
        got = engine.range_query(q, T0, T0 + 60 * M, M).value
        want = expected[q]
        assert isinstance(got, Matrix) and isinstance(want, Matrix)
        return got.labels == want.labels and all(
            np.array_equal(a, b, equal_nan=True) for a, b in zip(got.values, want.values)
        )

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(run, queries * 6))
    res = engine.instant_query("count(m)", T0)
    assert isinstance(res.value, InstantVector) and list(res.value.values) == [SERIES]

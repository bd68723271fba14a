"""The engine's selectors over a real database: instant selectors (lookback boundary,
staleness, offset, negative offset, ``@`` with start()/end()), range selectors and
subqueries (grid alignment, offset/``@``, nesting), function-call plumbing (windows,
``timestamp`` sample times, duplicate label sets), and the shapes of results."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

from tests.query.enginedata import load
from vigilops.query.engine import Engine, EngineOptions
from vigilops.query.values import (
    BadQueryError,
    ExecutionError,
    FunctionContext,
    InstantVector,
    Matrix,
    Scalar,
    ScalarResult,
    StringResult,
    Value,
    Vector,
    Windows,
    drop_metric_name,
)
from vigilops.tsdb.db import DB
from vigilops.tsdb.model import STALE_NAN, Labels

S = 1000  # one second in ms
M = 60 * S
T0 = 1111 * 900_000  # data starts here (ms), a multiple of every step used below


# ---- stub functions (the real ones are tested with vigilops.query.funcs) -------------------
def _count_over_time(args: list[Value], ctx: FunctionContext) -> Value:
    w = args[0]
    assert isinstance(w, Windows)
    counts = w.counts
    return Vector(drop_metric_name(w.labels), counts.astype(float), counts > 0)


def _max_over_time(args: list[Value], ctx: FunctionContext) -> Value:
    w = args[0]
    assert isinstance(w, Windows)
    out = np.zeros(w.lo.shape)
    for i in range(len(w)):
        for j in range(w.lo.shape[1]):
            if w.hi[i, j] > w.lo[i, j]:
                out[i, j] = w.vs[w.lo[i, j] : w.hi[i, j]].max()
    return Vector(drop_metric_name(w.labels), out, w.counts > 0)


def _last_over_time(args: list[Value], ctx: FunctionContext) -> Value:
    w = args[0]
    assert isinstance(w, Windows)
    present = w.counts > 0
    return Vector(list(w.labels), np.where(present, w.vs[np.maximum(w.hi - 1, 0)], 0.0), present)


def _timestamp(args: list[Value], ctx: FunctionContext) -> Value:
    v = args[0]
    assert isinstance(v, Vector)
    ts = v.sample_ts if v.sample_ts is not None else np.broadcast_to(ctx.times, v.values.shape)
    return Vector(drop_metric_name(v.labels), ts / 1000.0, v.present)


def _abs(args: list[Value], ctx: FunctionContext) -> Value:
    v = args[0]
    assert isinstance(v, Vector)
    return Vector(drop_metric_name(v.labels), np.abs(v.values), v.present)


def _time(args: list[Value], ctx: FunctionContext) -> Value:
    return Scalar(ctx.times / 1000.0)


STUBS = {
    "count_over_time": _count_over_time,
    "max_over_time": _max_over_time,
    "last_over_time": _last_over_time,
    "timestamp": _timestamp,
    "abs": _abs,
    "time": _time,
}


# ---- data ------------------------------------------------------------------------------------
def every(step_ms: int, values: list[float | None], start: int = T0) -> list[tuple[int, float]]:
    """Points at ``start + i * step_ms``; None leaves a gap."""
    return [(start + i * step_ms, v) for i, v in enumerate(values) if v is not None]


DATA = {
    # 0, 1, 2, … every 15 s for 20 min.
    'ramp{job="a"}': every(15 * S, [float(i) for i in range(81)]),
    # Every minute, with a staleness marker at 5 min and a restart at 7 min.
    'gauge{job="b"}': every(M, [10, 11, 12, 13, 14, STALE_NAN, None, 17, 18, 19, 20]),
    # A single sample at T0 + 1 min.
    'once{job="c"}': [(T0 + M, 42.0)],
    # Two series that differ only by name (for duplicate label sets after dropping it).
    'dup_a{x="1"}': every(M, [1.0, 2.0, 3.0]),
    'dup_b{x="1"}': every(M, [None, None, None, 4.0, 5.0]),
}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    db = DB.open(str(tmp_path_factory.mktemp("sel") / "db"))
    load(db, DATA)
    yield Engine(db, EngineOptions(), functions=STUBS)
    db.close()


def instant(engine: Engine, query: str, t: int) -> dict[str, float]:
    res = engine.instant_query(query, t).value
    assert isinstance(res, InstantVector)
    assert res.t == t
    return {str(ls): float(v) for ls, v in zip(res.labels, res.values)}


def ranged(engine: Engine, query: str, start: int, end: int, step: int) -> dict[str, list[tuple[int, float]]]:
    res = engine.range_query(query, start, end, step).value
    assert isinstance(res, Matrix)
    assert res.labels == sorted(res.labels)
    return {
        str(ls): [(int(t), float(v)) for t, v in zip(ts, vs)]
        for ls, ts, vs in zip(res.labels, res.timestamps, res.values)
    }


# ---- instant selectors -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (T0 + M, 42.0),  # exactly at the sample
        (T0 + M + 5 * M, 42.0),  # t - 5m == sample time: the window is closed on the left
        (T0 + M + 5 * M + 1, None),  # one ms later it is gone
        (T0 + M - 1, None),  # before the sample
    ],
)
def test_lookback_boundary_is_inclusive(engine: Engine, t: int, expected: float | None) -> None:
    got = instant(engine, "once", t)
    assert got == ({} if expected is None else {'once{job="c"}': expected})


def test_staleness_marker_ends_series_until_next_sample(engine: Engine) -> None:
    key = 'gauge{job="b"}'
    assert instant(engine, "gauge", T0 + 4 * M + 30 * S) == {key: 14.0}
    assert instant(engine, "gauge", T0 + 5 * M) == {}  # the marker is the latest sample
    assert instant(engine, "gauge", T0 + 6 * M + 59 * S) == {}  # still the latest
    assert instant(engine, "gauge", T0 + 7 * M) == {key: 17.0}
    # Range selectors drop markers: the window ending at 7m holds 14 (4m) and 17 (7m).
    got = engine.instant_query("gauge[3m]", T0 + 7 * M).value
    assert isinstance(got, Matrix)
    assert [list(map(int, ts)) for ts in got.timestamps] == [[T0 + 4 * M, T0 + 7 * M]]


def test_range_query_staleness_and_gaps(engine: Engine) -> None:
    got = ranged(engine, "gauge", T0, T0 + 10 * M, M)
    points = got['gauge{job="b"}']
    assert [t for t, _ in points] == [T0 + i * M for i in (0, 1, 2, 3, 4, 7, 8, 9, 10)]


@pytest.mark.parametrize(
    ("query", "t", "value"),
    [
        ("ramp offset 1m", T0 + 5 * M, 16.0),  # the value at 4m
        ("ramp offset -1m", T0 + 5 * M, 24.0),  # the value at 6m
        ("ramp offset 7s", T0 + 5 * M, 19.0),  # latest at or before 4:53 is 4:45
        ("ramp @ 120", T0 + 20 * M, None),  # long before the data: nothing
        (f"ramp @ {(T0 + 2 * M) // 1000}", T0 + 20 * M, 8.0),
        (f"ramp @ {(T0 + 2 * M) // 1000} offset 1m", T0 + 20 * M, 4.0),
        ("ramp @ start()", T0 + 3 * M, 12.0),
        ("ramp @ end() offset -30s", T0 + 3 * M, 14.0),
    ],
)
def test_offset_and_at(engine: Engine, query: str, t: int, value: float | None) -> None:
    assert instant(engine, query, t) == ({} if value is None else {'ramp{job="a"}': value})


def test_at_start_end_in_range_query(engine: Engine) -> None:
    start, end, step = T0 + 2 * M, T0 + 4 * M, M
    key = 'ramp{job="a"}'
    assert ranged(engine, "ramp @ start()", start, end, step)[key] == [(start, 8.0), (start + M, 8.0), (end, 8.0)]
    assert ranged(engine, "ramp @ end()", start, end, step)[key] == [(start, 16.0), (start + M, 16.0), (end, 16.0)]
    # @ end() refers to the query's end even when the grid stops before it.
    assert ranged(engine, "ramp @ end()", start, end + 50 * S, step)[key][0] == (start, 19.0)


def test_instant_vector_keeps_storage_order_and_name(engine: Engine) -> None:
    got = engine.instant_query('{__name__=~"dup_.|once"}', T0 + 3 * M).value
    assert isinstance(got, InstantVector)
    assert [str(ls) for ls in got.labels] == ['dup_a{x="1"}', 'dup_b{x="1"}', 'once{job="c"}']


# ---- range selectors and subqueries --------------------------------------------------------
def test_matrix_selector_returns_raw_samples_closed_window(engine: Engine) -> None:
    got = engine.instant_query("ramp[1m]", T0 + 5 * M).value
    assert isinstance(got, Matrix)
    assert [int(t) - T0 for t in got.timestamps[0]] == [240_000, 255_000, 270_000, 285_000, 300_000]
    assert list(got.values[0]) == [16.0, 17.0, 18.0, 19.0, 20.0]
    assert str(got.labels[0]) == 'ramp{job="a"}'


def test_subquery_grid_is_aligned_to_multiples_of_its_step(engine: Engine) -> None:
    # [1m:25s] at T0+5m: inner times are the multiples of 25s within [T0+4m, T0+5m].
    got = engine.instant_query("ramp[1m:25s]", T0 + 5 * M).value
    assert isinstance(got, Matrix)
    ts = [int(t) for t in got.timestamps[0]]
    assert ts == [t for t in range(T0 + 4 * M, T0 + 5 * M + 1, S) if t % 25_000 == 0]
    assert list(got.values[0]) == [float((t - T0) // 15_000) for t in ts]


def test_subquery_default_step_is_one_minute(engine: Engine) -> None:
    got = engine.instant_query("ramp[3m:]", T0 + 5 * M + 30 * S).value
    assert isinstance(got, Matrix)
    assert [int(t) - T0 for t in got.timestamps[0]] == [3 * M, 4 * M, 5 * M]


def test_subquery_offset_and_at(engine: Engine) -> None:
    a = engine.instant_query("ramp[2m:1m] offset 2m", T0 + 10 * M).value
    b = engine.instant_query(f"ramp[2m:1m] @ {(T0 + 8 * M) // 1000}", T0 + 20 * M).value
    assert isinstance(a, Matrix) and isinstance(b, Matrix)
    assert [int(t) - T0 for t in a.timestamps[0]] == [6 * M, 7 * M, 8 * M]
    assert [int(t) for t in a.timestamps[0]] == [int(t) for t in b.timestamps[0]]


def test_nested_subqueries_and_functions(engine: Engine) -> None:
    # max over 2m of (max over 1m sampled every 30s), sampled every minute.
    got = instant(engine, "max_over_time(max_over_time(ramp[1m:30s])[2m:1m])", T0 + 10 * M)
    assert got == {'{job="a"}': 40.0}
    got_r = ranged(engine, "count_over_time(ramp[1m:30s])", T0 + 10 * M, T0 + 12 * M, M)
    assert got_r == {'{job="a"}': [(T0 + 10 * M, 3.0), (T0 + 11 * M, 3.0), (T0 + 12 * M, 3.0)]}


def test_range_function_over_selector_with_offset(engine: Engine) -> None:
    assert instant(engine, "count_over_time(ramp[1m] offset 1m)", T0 + 5 * M) == {'{job="a"}': 5.0}
    assert instant(engine, "count_over_time(ramp[1m] offset 19m)", T0 + 20 * M) == {'{job="a"}': 5.0}
    assert instant(engine, "count_over_time(ramp[1m] offset 20m)", T0 + 20 * M) == {'{job="a"}': 1.0}


def test_timestamp_uses_sample_time_of_a_selector_only(engine: Engine) -> None:
    t = T0 + 5 * M + 10 * S
    assert instant(engine, "timestamp(ramp)", t) == {'{job="a"}': (T0 + 5 * M) / 1000}
    assert instant(engine, "timestamp((ramp))", t) == {'{job="a"}': (T0 + 5 * M) / 1000}
    assert instant(engine, "timestamp(ramp offset 1m)", t) == {'{job="a"}': (T0 + 4 * M) / 1000}
    assert instant(engine, "timestamp(ramp + 0)", t) == {'{job="a"}': t / 1000}
    assert instant(engine, "timestamp(ramp and ramp)", t) == {'{job="a"}': t / 1000}


def test_duplicate_labelsets_per_step_for_instant_functions(engine: Engine) -> None:
    # dup_a (0–2m) and dup_b (3m–4m) lose their names; never present at the same step.
    got = ranged(engine, 'abs({__name__=~"dup_.*"})', T0, T0 + 2 * M, M)
    assert list(got) == ['{x="1"}']
    with pytest.raises(ExecutionError, match="vector cannot contain metrics with the same labelset"):
        engine.instant_query('abs({__name__=~"dup_.*"})', T0 + 4 * M)  # both within lookback
    # Range functions and unary minus check the whole output, as Prometheus 2.42 does.
    with pytest.raises(ExecutionError, match="same labelset"):
        engine.range_query('count_over_time({__name__=~"dup_.*"}[30s])', T0, T0 + 4 * M, M)
    with pytest.raises(ExecutionError, match="same labelset"):
        engine.range_query('-last_over_time({__name__=~"dup_.*"}[30s])', T0, T0 + 4 * M, M)
    # last_over_time keeps the name: no clash.
    assert len(ranged(engine, 'last_over_time({__name__=~"dup_.*"}[30s])', T0, T0 + 4 * M, M)) == 2


# ---- result shapes -------------------------------------------------------------------------
def test_scalar_and_string_results(engine: Engine) -> None:
    assert engine.instant_query("1 + 2 * 3", T0).value == ScalarResult(T0, 7.0)
    assert engine.instant_query('"hello"', T0).value == StringResult(T0, "hello")
    got = engine.range_query("time()", T0, T0 + 2 * M, M).value
    assert isinstance(got, Matrix)
    assert got.labels == [Labels()]
    assert list(got.values[0]) == [T0 / 1000, T0 / 1000 + 60, T0 / 1000 + 120]


@pytest.mark.parametrize(
    ("query", "kind"),
    [("ramp[5m]", "range vector"), ('"x"', "string"), ("ramp[5m:1m]", "range vector")],
)
def test_range_query_rejects_non_instant_types(engine: Engine, query: str, kind: str) -> None:
    with pytest.raises(BadQueryError) as err:
        engine.range_query(query, T0, T0 + M, M)
    assert str(err.value) == f'invalid expression type "{kind}" for range query, must be Scalar or instant Vector'
    assert err.value.kind == "bad_data"


def test_range_query_grid_stops_at_end(engine: Engine) -> None:
    got = ranged(engine, "once", T0, T0 + 3 * M + 10 * S, 45 * S)
    assert [t - T0 for t, _ in got['once{job="c"}']] == [90_000, 135_000, 180_000]


def test_number_literals_keep_special_values(engine: Engine) -> None:
    got = engine.instant_query("-Inf", T0).value
    assert isinstance(got, ScalarResult) and got.value == -math.inf


class _PerSeriesOnly:
    """A Queryable whose queriers offer `select` but not `select_columns` (another storage
    behind the seam): the engine must load through the per-series path the same way."""

    def __init__(self, db: DB) -> None:
        self.db = db

    def querier(self, mint: int, maxt: int) -> object:
        inner = self.db.querier(mint, maxt)

        class _Q:
            select = inner.select
            close = inner.close
            warnings = inner.warnings

        return _Q()


@pytest.mark.parametrize(
    "query", ["gauge", '{__name__=~"ramp|gauge|once"}', "max_over_time(ramp[5m])", "timestamp(gauge)"]
)
def test_per_series_queriers_give_the_same_answers(engine: Engine, query: str) -> None:
    other = Engine(_PerSeriesOnly(engine.queryable), EngineOptions(), functions=STUBS)  # type: ignore[arg-type]
    for t in (T0, T0 + 3 * M, T0 + 7 * M):
        want = instant(engine, query, t)
        assert want and instant(other, query, t) == want
    want_range = ranged(engine, query, T0 - M, T0 + 10 * M, M)
    assert want_range and ranged(other, query, T0 - M, T0 + 10 * M, M) == want_range

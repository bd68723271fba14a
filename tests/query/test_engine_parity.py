"""Engine behaviours that follow from how Prometheus 2.42 computes, not from the PromQL
documentation, found by the side-by-side harness (`vigilops.compat.promql_compat`): the order
``sum`` adds in, Go's ``math.Pow`` for ``^``, and what ``@`` does in range queries. Expected
values were checked against the Prometheus 2.42 binary."""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Iterator

import numpy as np
import pytest

from tests.query.enginedata import load
from vigilops.query.engine import Engine
from vigilops.query.evaluator import step_invariant
from vigilops.query.gomath import go_pow
from vigilops.query.parser import parse
from vigilops.query.values import InstantVector, Matrix, ScalarResult
from vigilops.tsdb.db import DB

S = 1000
M = 60 * S
T0 = 1111 * 900_000


def minutes(values: list[float], shift_ms: int = 0) -> list[tuple[int, float]]:
    """One sample a minute from T0 (plus `shift_ms`)."""
    return [(T0 + i * M + shift_ms, v) for i, v in enumerate(values)]


#: Values whose sum depends on the order of the additions. Written out of label order, so
#: that appending order is not what makes the test pass.
CANCEL = {"c": 1.0, "a": 1e20, "b": -1e20}
#: Ten series: pairwise summation (numpy's for contiguous data) and sequential addition
#: round differently.
MANY = [1e16, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1e16]

DATA: dict[str, list[tuple[int, float]]] = {
    **{f'cancel{{k="{k}"}}': minutes([v] * 31) for k, v in CANCEL.items()},
    **{f'many{{k="{i:02d}",g="{i % 2}"}}': minutes([v] * 31) for i, v in reversed(list(enumerate(MANY)))},
    # v = minutes since T0, one sample a minute.
    'lin{job="x"}': minutes([float(i) for i in range(31)]),
    # The same, 30 s after each minute.
    'late{job="x"}': minutes([float(i) for i in range(31)], 30 * S),
    "zero": minutes([0.0] * 31),
    # topk's k: 1 up to minute 20, 2 after.
    "k": minutes([1.0] * 21 + [2.0] * 10),
    'top{i="1"}': minutes([10.0] * 31),
    'top{i="2"}': minutes([20.0] * 31),
}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    db = DB.open(str(tmp_path_factory.mktemp("parity") / "db"))
    load(db, DATA)
    yield Engine(db)
    db.close()


def instant(engine: Engine, query: str, t: int) -> dict[str, float]:
    res = engine.instant_query(query, t).value
    assert isinstance(res, InstantVector)
    return {str(ls): float(v) for ls, v in zip(res.labels, res.values)}


def ranged(engine: Engine, query: str, start: int, end: int, step: int) -> dict[str, list[tuple[int, float]]]:
    res = engine.range_query(query, start, end, step).value
    assert isinstance(res, Matrix)
    return {
        str(ls): [((int(t) - T0) // S, float(v)) for t, v in zip(ts, vs)]
        for ls, ts, vs in zip(res.labels, res.timestamps, res.values)
    }


def sequential_sum(values: list[float]) -> float:
    return functools.reduce(operator.add, values)


# ---- sum adds one series after the other, in the input vector's order -----------------------
def test_sum_adds_in_label_order(engine: Engine) -> None:
    # 1e20 + -1e20 + 1 (labels a, b, c): 1 in Prometheus; any other order gives 0.
    assert instant(engine, "sum(cancel)", T0 + 10 * M) == {"{}": 1.0}
    assert ranged(engine, "sum(cancel)", T0, T0 + 2 * M, M) == {"{}": [(0, 1.0), (60, 1.0), (120, 1.0)]}


@pytest.mark.parametrize("t_count", [1, 3])
def test_sum_of_many_series_is_sequential_not_pairwise(engine: Engine, t_count: int) -> None:
    expected = sequential_sum(MANY)
    assert expected != math.fsum(MANY)  # the data does depend on the order
    res = ranged(engine, "sum(many)", T0, T0 + (t_count - 1) * M, M)
    assert [v for _, v in res["{}"]] == [expected] * t_count


def test_sum_by_group_adds_each_group_in_order(engine: Engine) -> None:
    got = instant(engine, "sum by (g) (many)", T0)
    assert got == {
        '{g="0"}': sequential_sum(MANY[0::2]),
        '{g="1"}': sequential_sum(MANY[1::2]),
    }
    # A function's output keeps its input's order.
    assert instant(engine, "sum(abs(cancel) * sgn(cancel))", T0) == {"{}": 1.0}


# ---- ^ is Go's math.Pow ------------------------------------------------------------------------
NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        (NAN, 0.0, 1.0), (NAN, -0.0, 1.0), (1.0, NAN, 1.0), (1.0, INF, 1.0), (-7.5, 1.0, -7.5),
        (NAN, 2.0, NAN), (2.0, NAN, NAN),
        (0.0, -3.0, INF), (-0.0, -3.0, -INF), (-0.0, -2.0, INF), (-0.0, -0.5, INF),
        (0.0, -INF, INF), (-0.0, -INF, INF), (0.0, INF, 0.0), (-0.0, 3.0, -0.0), (-0.0, 2.0, 0.0),
        (-0.0, 0.5, 0.0), (-1.0, INF, 1.0), (-1.0, -INF, 1.0), (2.0, INF, INF), (0.5, INF, 0.0),
        (2.0, -INF, 0.0), (0.5, -INF, INF), (-2.0, INF, INF),
        (-INF, 0.5, INF), (-INF, 3.0, -INF), (-INF, 2.0, INF), (-INF, -3.0, -0.0), (-INF, -2.0, 0.0),
        (INF, 0.5, INF), (INF, -0.5, 0.0), (4.0, 0.5, 2.0), (4.0, -0.5, 0.5), (-4.0, 0.5, NAN),
        (-8.0, 1.0 / 3.0, NAN), (-2.0, 3.0, -8.0), (-1.0, 2.0**63, 1.0), (0.5, 2.0**64, 0.0),
        (1.5, -(2.0**64), 0.0), (1.5, 2.0**64, INF),
        # Integer powers by repeated squaring (C's pow rounds these differently).
        (12.647, 49.0, 9.940046346761793e53), (1.066, 31.0, 7.2522596636735415),
        (3.559, 25.0, 60701538716391.164), (10.0, -2.0, 0.01), (5e-324, 2.0, 0.0),
    ],
)
def test_go_pow_special_cases_and_integer_powers(x: float, y: float, expected: float) -> None:
    got = float(go_pow(np.array([x]), np.array([y]))[0])
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == expected and math.copysign(1, got) == math.copysign(1, expected)


def test_pow_operator_uses_go_pow(engine: Engine) -> None:
    res = engine.instant_query("(-Inf) ^ 0.5", T0).value
    assert isinstance(res, ScalarResult) and res.value == math.inf
    assert instant(engine, 'lin{job="x"} * 0 - Inf ^ 0.5', T0) == {'{job="x"}': -math.inf}
    assert instant(engine, 'lin{job="x"} * 0 + 12.647 ^ 49', T0) == {'{job="x"}': 9.940046346761793e53}


# ---- @ in range queries: what 2.42 treats as step-invariant ------------------------------------
@pytest.mark.parametrize(
    ("query", "invariant"),
    [
        ("lin @ 100", True), ("lin", False), ("1", True), ('"a"', True),
        ("rate(lin[5m] @ 100)", True), ("rate(lin[5m])", False),
        ("predict_linear(lin[5m] @ 100, 1)", False), ("timestamp(lin @ 100)", False),
        ("hour(lin @ 100)", False), ("time()", False), ("pi()", True),
        ("sum(lin @ 100)", True), ("topk(scalar(k), lin @ 100)", True),  # the parameter is not looked at
        ("lin @ 100 + 1", True), ("lin @ 100 + lin", False), ("-(lin @ 100)", True),
        ("lin[5m:1m] @ 100", True), ("(lin @ 100)[5m:1m]", False),
        ("quantile_over_time(scalar(zero), lin[5m] @ 100)", False),
    ],
)
def test_step_invariance_follows_2_42(query: str, invariant: bool) -> None:
    assert step_invariant(parse(query)) is invariant


def test_at_range_under_a_call_that_is_not_step_invariant_drifts_and_empties(engine: Engine) -> None:
    # quantile_over_time(scalar(zero), …) is not step-invariant (scalar(zero) has no @): at
    # step T0+20m+d its window is [T0+15m+d, T0+20m+d], of which only the samples up to
    # T0+20m were selected. So the minimum of lin climbs by one a minute, then ends.
    query = "quantile_over_time(scalar(zero), lin[5m] @ %d)" % ((T0 + 20 * M) // S)
    got = ranged(engine, query, T0 + 20 * M, T0 + 28 * M, M)
    assert got == {'{job="x"}': [(1200 + 60 * d, 15.0 + d) for d in range(6)]}
    # predict_linear is never step-invariant: its window drifts the same way (lin is a line,
    # so the prediction is right while two samples are left).
    query = "predict_linear(lin[5m] @ %d, 0)" % ((T0 + 20 * M) // S)
    got = ranged(engine, query, T0 + 20 * M, T0 + 28 * M, M)
    assert got == {'{job="x"}': [(1200 + 60 * d, 20.0 + d) for d in range(5)]}
    # A step-invariant call is evaluated once and repeated.
    query = "quantile_over_time(0, lin[5m] @ %d)" % ((T0 + 20 * M) // S)
    assert ranged(engine, query, T0 + 20 * M, T0 + 28 * M, M) == {
        '{job="x"}': [(1200 + 60 * d, 15.0) for d in range(9)]
    }


def test_at_subquery_under_a_call_that_is_not_step_invariant_drifts(engine: Engine) -> None:
    at = (T0 + 20 * M) // S
    query = f"quantile_over_time(scalar(zero), lin[5m:1m] @ {at})"
    got = ranged(engine, query, T0 + 20 * M, T0 + 30 * M, M)
    # Inner points after T0+20m still see lin's sample at T0+20m through the lookback
    # (until T0+25m): the minimum climbs to 20 and stays there while points are left.
    assert got == {'{job="x"}': [(1200 + 60 * d, min(15.0 + d, 20.0)) for d in range(11)]}


def test_timestamp_of_at_selector_drops_the_offset(engine: Engine) -> None:
    at = (T0 + 20 * M) // S
    # `late` has samples at hh:mm:30. 2.42 looks for one at the @ time among those
    # selected for @ - 5m: [T0+10m, T0+15m] ∩ [T0+15m, T0+20m] holds none.
    assert instant(engine, f"timestamp(late @ {at} offset 5m)", T0 + 30 * M) == {}
    # `lin` has one exactly at T0+15m.
    got_lin = instant(engine, f"timestamp(lin @ {at} offset 5m)", T0 + 30 * M)
    assert got_lin == {'{job="x"}': (T0 + 15 * M) / S}
    # Without an offset it is the sample time at @, at every step.
    got = ranged(engine, f"timestamp(late @ {at})", T0, T0 + 2 * M, M)
    assert got == {'{job="x"}': [(s, (T0 + 19 * M + 30 * S) / S) for s in (0, 60, 120)]}


def test_step_invariant_aggregation_reads_its_parameter_at_the_first_step(engine: Engine) -> None:
    at = (T0 + 10 * M) // S
    # k is 1 at T0+20m and 2 from T0+21m; the whole expression is step-invariant, so 2.42
    # evaluates it (parameter included) once, at the first step.
    got = ranged(engine, f"topk(scalar(k), top @ {at})", T0 + 20 * M, T0 + 22 * M, M)
    assert got == {'top{i="2"}': [(1200, 20.0), (1260, 20.0), (1320, 20.0)]}
    got = ranged(engine, f"topk(scalar(k), top @ {at} + 0 * top)", T0 + 20 * M, T0 + 22 * M, M)
    assert got == {
        '{i="1"}': [(1260, 10.0), (1320, 10.0)],
        '{i="2"}': [(1200, 20.0), (1260, 20.0), (1320, 20.0)],
    }

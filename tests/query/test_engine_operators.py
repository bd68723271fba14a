"""Binary operators (arithmetic, comparisons, vector matching and its errors, set
operators) and aggregation operators of the engine, over a real database, with Prometheus
2.42's semantics (values below were checked against Prometheus 2.42)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

from tests.query.enginedata import load
from vigilops.query.engine import Engine
from vigilops.query.gomath import go_atan2, go_format_f, go_format_g
from vigilops.query.values import (
    ExecutionError,
    FunctionContext,
    InstantVector,
    Matrix,
    Scalar,
    ScalarResult,
    Value,
)
from vigilops.tsdb.db import DB

S = 1000
M = 60 * S
T0 = 1111 * 900_000
T = T0 + 10 * M  # instant queries are evaluated here


def const(v: float, first: int = 0, last: int = 20) -> list[tuple[int, float]]:
    """The value `v` every minute from minute `first` to `last`."""
    return [(T0 + i * M, v) for i in range(first, last + 1)]


DATA = {
    'req{job="api",inst="1",code="200"}': const(10),
    'req{job="api",inst="1",code="500"}': const(2),
    'req{job="api",inst="2",code="200"}': const(30),
    'req{job="db",inst="1",code="200"}': const(5),
    'info{job="api",inst="1",version="v1"}': const(1),
    'info{job="api",inst="2",version="v2"}': const(1),
    'limit{job="api"}': const(100),
    'limit{job="db"}': const(50),
    # Two "one"-side series sharing a signature but never present at the same step.
    'owner{job="api",team="x"}': const(1, 0, 4),
    'owner{job="api",team="y"}': const(1, 10, 20),
    'own2{job="db",team="x"}': const(1, 0, 8),
    'own2{job="db",team="y"}': const(1, 6, 20),
    'alt{job="api"}': const(7),
    'nums{i="a"}': const(3),
    'nums{i="b"}': const(-7),
    'nums{i="c"}': const(math.nan),
    'nums{i="d"}': const(0),
    'nums{i="e"}': const(math.inf),
    'same{i="1"}': const(5),
    'same{i="2"}': const(5),
    'same{i="3"}': const(5),
    'same{i="4"}': const(9),
    'huge{i="1"}': const(1e308),
    'huge{i="2"}': const(1e308),
    'vals{i="1"}': const(0.1),
    'vals{i="2"}': const(1e21),
    'vals{i="3"}': const(-0.0),
    'vals{i="4"}': const(0.1),
}


def _time(args: list[Value], ctx: FunctionContext) -> Value:
    return Scalar(ctx.times / 1000.0)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    db = DB.open(str(tmp_path_factory.mktemp("ops") / "db"))
    load(db, DATA)
    yield Engine(db, functions={"time": _time})
    db.close()


def instant(engine: Engine, query: str, t: int = T) -> dict[str, float]:
    res = engine.instant_query(query, t).value
    assert isinstance(res, InstantVector)
    return {str(ls): float(v) for ls, v in zip(res.labels, res.values)}


def ordered(engine: Engine, query: str) -> list[tuple[str, float]]:
    res = engine.instant_query(query, T).value
    assert isinstance(res, InstantVector)
    return [(str(ls), float(v)) for ls, v in zip(res.labels, res.values)]


def error(engine: Engine, query: str, t: int = T) -> str:
    with pytest.raises(ExecutionError) as err:
        engine.instant_query(query, t)
    assert err.value.kind == "execution"
    return str(err.value)


# ---- arithmetic and comparisons ------------------------------------------------------------
def test_vector_scalar_arithmetic_drops_name(engine: Engine) -> None:
    assert instant(engine, 'req{code="500"} * 3') == {'{code="500", inst="1", job="api"}': 6.0}
    assert instant(engine, '1 - req{code="500"}') == {'{code="500", inst="1", job="api"}': -1.0}
    assert instant(engine, 'req{code="500"} ^ 3') == {'{code="500", inst="1", job="api"}': 8.0}


def test_go_float_rules(engine: Engine) -> None:
    got = instant(engine, "nums % 2")
    assert got['{i="a"}'] == 1.0 and got['{i="b"}'] == -1.0  # math.Mod keeps the sign of x
    assert math.isnan(got['{i="e"}']) and math.isnan(got['{i="c"}'])
    div = instant(engine, "nums / 0")
    assert div['{i="a"}'] == math.inf and div['{i="b"}'] == -math.inf and math.isnan(div['{i="d"}'])
    assert instant(engine, 'nums{i="d"} ^ 0') == {'{i="d"}': 1.0}


def test_atan2_keeps_name_and_matches_go_bit_for_bit(engine: Engine) -> None:
    got = instant(engine, 'req{code="500"} atan2 0.1')
    assert list(got) == ['req{code="500", inst="1", job="api"}']
    # Go's math.Atan2(20, 2) (Prometheus prints 1.4711276743037345; libm gives …347).
    assert go_format_f(float(go_atan2(np.array([20.0]), np.array([2.0]))[0])) == "1.4711276743037345"
    specials = [(0.0, -1.0), (-0.0, -1.0), (1.0, 0.0), (math.inf, math.inf), (-math.inf, -math.inf),
                (1.0, math.inf), (1.0, -math.inf), (math.inf, 1.0), (-3.0, -2.0), (1e-300, 1e300)]
    for y, x in specials:
        assert float(go_atan2(np.array([y]), np.array([x]))[0]) == pytest.approx(math.atan2(y, x), rel=1e-15)
        assert math.copysign(1, float(go_atan2(np.array([y]), np.array([x]))[0])) == math.copysign(1, math.atan2(y, x))


def test_comparisons_filter_or_return_bool(engine: Engine) -> None:
    assert instant(engine, "nums > 0") == {'nums{i="a"}': 3.0, 'nums{i="e"}': math.inf}
    assert instant(engine, "0 < nums") == {'nums{i="a"}': 3.0, 'nums{i="e"}': math.inf}  # vector's value
    got = instant(engine, "nums >= bool 0")
    assert got == {'{i="a"}': 1.0, '{i="b"}': 0.0, '{i="c"}': 0.0, '{i="d"}': 1.0, '{i="e"}': 1.0}
    got = instant(engine, "nums != nums")  # only NaN differs from itself
    assert list(got) == ['nums{i="c"}'] and math.isnan(got['nums{i="c"}'])
    assert engine.instant_query("2 > bool 1", T).value == ScalarResult(T, 1.0)
    assert engine.instant_query("(1 > bool 2) + 1", T).value == ScalarResult(T, 1.0)


# ---- vector matching -----------------------------------------------------------------------
def test_one_to_one_result_labels(engine: Engine) -> None:
    assert instant(engine, 'req{code="200"} / ignoring(code) req{code="500"}') == {'{inst="1", job="api"}': 5.0}
    assert instant(engine, 'req{code="500"} + on(job, inst) req{code="200"}') == {'{inst="1", job="api"}': 12.0}
    # A filtering comparison keeps the name, except that on() keeps only the listed labels.
    assert instant(engine, 'req{code="200"} > ignoring(code) req{code="500"}') == {'req{inst="1", job="api"}': 10.0}
    assert instant(engine, 'req{code="200"} > on(inst, job) req{code="500"}') == {'{inst="1", job="api"}': 10.0}


def test_many_to_one_copies_labels_from_the_one_side(engine: Engine) -> None:
    got = instant(engine, 'req * on(job, inst) group_left(version) info')
    assert got == {
        '{code="200", inst="1", job="api", version="v1"}': 10.0,
        '{code="500", inst="1", job="api", version="v1"}': 2.0,
        '{code="200", inst="2", job="api", version="v2"}': 30.0,
    }
    got = instant(engine, "req / on(job) group_left limit")
    assert got['{code="200", inst="2", job="api"}'] == 0.3 and len(got) == 4
    # One-to-many: the "many" side is the right; the value of a comparison is the left's.
    got = instant(engine, "limit < on(job) group_right req")
    assert got == {}
    got = instant(engine, "limit >= bool on(job) group_right req")
    assert got == {'{code="200", inst="1", job="api"}': 1.0, '{code="500", inst="1", job="api"}': 1.0,
                   '{code="200", inst="2", job="api"}': 1.0, '{code="200", inst="1", job="db"}': 1.0}


def test_group_left_label_missing_on_one_side_is_removed(engine: Engine) -> None:
    got = instant(engine, 'req{job="db"} + on(job) group_left(code) limit')
    assert got == {'{inst="1", job="db"}': 55.0}


def test_matching_errors_are_worded_like_prometheus(engine: Engine) -> None:
    assert error(engine, "limit / on(job) req") == (
        'found duplicate series for the match group {job="api"} on the right hand-side of the operation: '
        '[{__name__="req", code="200", inst="2", job="api"}, {__name__="req", code="200", inst="1", job="api"}]'
        ";many-to-many matching not allowed: matching labels must be unique on one side"
    )
    assert "on the left hand-side" in error(engine, "req / on(job) group_right limit")
    assert error(engine, "req / on(job) limit") == (
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
    )
    assert error(engine, "req + on(job) group_left(inst) limit") == (
        "multiple matches for labels: grouping labels must ensure unique matches"
    )
    assert error(engine, '{__name__=~"limit|alt"} * 2') == "vector cannot contain metrics with the same labelset"
    assert len(instant(engine, '{__name__=~"limit|alt"} > 2')) == 3  # filters keep the name


def test_matching_errors_are_checked_step_by_step(engine: Engine) -> None:
    # owner{team="x"} (samples 0–4m, visible to 9m) and owner{team="y"} (from 10m) share
    # job="api" but are never present at the same step: each step matches one of them.
    got = engine.range_query('req{code="500"} * on(job) group_left(team) owner', T0, T0 + 20 * M, 5 * M).value
    assert isinstance(got, Matrix)
    teams = {ls.get("team"): [int(t - T0) // M for t in ts] for ls, ts in zip(got.labels, got.timestamps)}
    assert teams == {"x": [0, 5], "y": [10, 15, 20]}
    # An empty side skips the step entirely (no duplicate check).
    assert instant(engine, "absent_metric / on(job) req") == {}


def test_overlapping_one_side_fails_only_where_it_overlaps(engine: Engine) -> None:
    # own2{team="x"} is visible 0–13m, own2{team="y"} from 6m: duplicates from 6m on.
    q = 'req{job="db"} * on(job) group_left own2'
    got = engine.range_query(q, T0, T0 + 5 * M, M).value
    assert isinstance(got, Matrix) and len(got.timestamps[0]) == 6
    with pytest.raises(ExecutionError, match="duplicate series for the match group"):
        engine.range_query(q, T0, T0 + 6 * M, M)


# ---- set operators -------------------------------------------------------------------------
def test_set_operators(engine: Engine) -> None:
    assert set(instant(engine, 'req and on(job, inst) info')) == {
        'req{code="200", inst="1", job="api"}', 'req{code="500", inst="1", job="api"}', 'req{code="200", inst="2", job="api"}'
    }
    assert set(instant(engine, 'req unless on(job) limit{job="api"}')) == {'req{code="200", inst="1", job="db"}'}
    got = instant(engine, 'limit or on(job) req')
    assert got == {'limit{job="api"}': 100.0, 'limit{job="db"}': 50.0}
    got = instant(engine, 'limit{job="api"} or ignoring(code, inst) req')
    assert set(got) == {'limit{job="api"}', 'req{code="200", inst="1", job="db"}'}
    assert instant(engine, "req and absent_metric") == {}
    assert len(instant(engine, "req unless absent_metric")) == 4
    assert len(instant(engine, "absent_metric or req")) == 4


# ---- aggregations --------------------------------------------------------------------------
def test_sum_count_min_max_group(engine: Engine) -> None:
    assert instant(engine, "sum(req)") == {"{}": 47.0}
    assert instant(engine, "sum by (job) (req)") == {'{job="api"}': 42.0, '{job="db"}': 5.0}
    assert instant(engine, "count without (code) (req)") == {'{inst="1", job="api"}': 2.0, '{inst="2", job="api"}': 1.0, '{inst="1", job="db"}': 1.0}
    assert instant(engine, "max(nums)") == {"{}": math.inf}
    assert instant(engine, "min(nums)") == {"{}": -7.0}
    assert math.isnan(instant(engine, 'min(nums{i="c"})')["{}"])
    assert instant(engine, "group by (job) (req)") == {'{job="api"}': 1.0, '{job="db"}': 1.0}
    assert instant(engine, "sum by (__name__) (req)") == {"req": 47.0}
    assert list(instant(engine, "sum without () (limit)")) == ['{job="api"}', '{job="db"}']
    assert go_format_f(instant(engine, 'sum(vals{i="3"})')["{}"]) == "-0"  # -0 + nothing stays -0


def test_avg_is_an_incremental_mean(engine: Engine) -> None:
    assert instant(engine, "avg(huge)") == {"{}": 1e308}  # no overflow to +Inf
    assert instant(engine, 'avg(nums{i=~"a|e"})') == {"{}": math.inf}
    assert math.isnan(instant(engine, "avg(nums)")["{}"])
    assert instant(engine, "avg by (job) (req)") == {'{job="api"}': 14.0, '{job="db"}': 5.0}


def test_stddev_stdvar(engine: Engine) -> None:
    assert instant(engine, 'stdvar(req{job="api"})') == {"{}": pytest.approx(416 / 3)}
    assert instant(engine, "stddev(same)") == {"{}": pytest.approx(math.sqrt(3.0))}
    assert instant(engine, "stddev by (job) (limit)") == {'{job="api"}': 0.0, '{job="db"}': 0.0}


def test_quantile(engine: Engine) -> None:
    assert instant(engine, "quantile(0.5, same)") == {"{}": 5.0}
    assert instant(engine, "quantile(0.9, same)") == {"{}": pytest.approx(7.8)}
    assert instant(engine, "quantile(-0.5, same)") == {"{}": -math.inf}
    assert instant(engine, "quantile(1.5, same)") == {"{}": math.inf}
    assert math.isnan(instant(engine, "quantile(NaN, same)")["{}"])
    # NaN sorts first: the lowest quantile of a set with NaN is NaN.
    assert math.isnan(instant(engine, "quantile(0, nums)")["{}"])
    assert instant(engine, "quantile(0.5, nums)") == {"{}": 0.0}


def test_topk_bottomk(engine: Engine) -> None:
    assert ordered(engine, "topk(2, req)") == [('req{code="200", inst="2", job="api"}', 30.0), ('req{code="200", inst="1", job="api"}', 10.0)]
    assert ordered(engine, "bottomk(1, req)") == [('req{code="500", inst="1", job="api"}', 2.0)]
    assert ordered(engine, "topk by (job) (1, req)") == [('req{code="200", inst="2", job="api"}', 30.0), ('req{code="200", inst="1", job="db"}', 5.0)]
    # Ties: the earlier series wins; NaN loses to every number.
    assert [k for k, _ in ordered(engine, "topk(2, same)")] == ['same{i="4"}', 'same{i="1"}']
    assert [k for k, _ in ordered(engine, "bottomk(2, same)")] == ['same{i="1"}', 'same{i="2"}']
    assert [k for k, _ in ordered(engine, "topk(4, nums)")] == ['nums{i="e"}', 'nums{i="a"}', 'nums{i="d"}', 'nums{i="b"}']
    assert [k for k, _ in ordered(engine, "bottomk(4, nums)")] == ['nums{i="b"}', 'nums{i="d"}', 'nums{i="a"}', 'nums{i="e"}']
    assert instant(engine, "topk(0, req)") == {} and instant(engine, "topk(-3, req)") == {}
    assert len(instant(engine, "topk(2.9, req)")) == 2
    assert error(engine, "topk(NaN, req)") == "Scalar value NaN overflows int64"
    assert error(engine, "topk(1e19, req)") == "Scalar value 1e+19 overflows int64"


def test_count_values(engine: Engine) -> None:
    assert instant(engine, 'count_values("v", vals)') == {'{v="0.1"}': 2.0, '{v="1000000000000000000000"}': 1.0, '{v="-0"}': 1.0}
    assert instant(engine, 'count_values by (job) ("value", limit)') == {'{job="api", value="100"}': 1.0, '{job="db", value="50"}': 1.0}
    assert instant(engine, 'count_values without (i) ("v", same)') == {'{v="5"}': 3.0, '{v="9"}': 1.0}
    # The value label is set before `without` drops labels: dropping it counts per group.
    assert instant(engine, 'count_values without (i) ("i", same)') == {"{}": 4.0}
    assert error(engine, 'count_values("0bad", vals)') == 'invalid label name "0bad"'


def test_aggregation_parameter_varies_per_step(engine: Engine) -> None:
    # k = 0, 1, 2 at 0m, 5m, 10m.
    q = f"topk((time() - {T0 // 1000}) / 300, req)"
    got = engine.range_query(q, T0, T0 + 10 * M, 5 * M).value
    assert isinstance(got, Matrix)
    steps = {str(ls): [int(t - T0) // M for t in ts] for ls, ts in zip(got.labels, got.timestamps)}
    assert steps == {'req{code="200", inst="1", job="api"}': [10], 'req{code="200", inst="2", job="api"}': [5, 10]}
    got = engine.range_query(f"quantile((time() - {T0 // 1000}) / 600, same)", T0, T0 + 10 * M, 5 * M).value
    assert isinstance(got, Matrix)
    assert list(got.values[0]) == [5.0, 5.0, 9.0]


def test_go_number_formats() -> None:
    assert [go_format_f(v) for v in (0.1, 1e21, -0.0, 1e-7, 123.0, math.nan, -math.inf)] == [
        "0.1", "1000000000000000000000", "-0", "0.0000001", "123", "NaN", "-Inf"]
    assert [go_format_g(v) for v in (1e19, 123456.0, 1234567.0, 1e-5, 0.0001, -2.5)] == [
        "1e+19", "123456", "1.234567e+06", "1e-05", "0.0001", "-2.5"]

"""Go number formatting (`util/jsonutil`), time/duration parsing (`web/api/v1/api.go`)."""

from __future__ import annotations

import math

import orjson
import pytest

from vigilops.query.api import params
import vigilops.tsdb.workers as workers_module
from vigilops.query.api.promjson import (
    ApiError,
    ErrorType,
    error_body,
    format_float,
    format_timestamp,
    format_value,
    point,
    success_body,
)
from vigilops.tsdb.model import STALE_NAN_BITS

STALE_NAN = float(__import__("numpy").array([STALE_NAN_BITS], dtype="uint64").view("float64")[0])

# Expected strings are Go's strconv.FormatFloat(v, 'f' or 'e', -1, 64) as MarshalValue picks.
GO_VALUES = [
    (0.0, "0"),
    (-0.0, "-0"),
    (1.0, "1"),
    (100.0, "100"),
    (0.1, "0.1"),
    (-2.5, "-2.5"),
    (1 / 3, "0.3333333333333333"),
    (123456789.123, "123456789.123"),
    (1e15, "1000000000000000"),
    (1e16, "10000000000000000"),
    (1e20, "100000000000000000000"),
    (1.2345678901234567e20, "123456789012345670000"),
    (9.999999999999999e20, "999999999999999900000"),
    (1e21, "1e+21"),
    (-1e21, "-1e+21"),
    (1.5e300, "1.5e+300"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
    (1e-4, "0.0001"),
    (2.5e-05, "0.000025"),
    (1e-6, "0.000001"),
    (9.99e-7, "9.99e-07"),
    (1e-7, "1e-07"),
    (-1.5e-10, "-1.5e-10"),
    (1.23e-18, "1.23e-18"),
    (5e-324, "5e-324"),
    (9007199254740993.0, "9007199254740992"),
    (float("nan"), "NaN"),
    (STALE_NAN, "NaN"),
    (float("inf"), "+Inf"),
    (float("-inf"), "-Inf"),
]


@pytest.mark.parametrize(("value", "expected"), GO_VALUES, ids=[e for _, e in GO_VALUES])
def test_format_value_matches_go(value: float, expected: str) -> None:
    assert format_value(value) == expected


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        (1e21, "f", "1000000000000000000000"),
        (1e-7, "f", "0.0000001"),
        (-0.0, "f", "-0"),
        (1e6, "g", "1e+06"),
        (123456.0, "g", "123456"),
        (1e-5, "g", "1e-05"),
        (0.0001, "g", "0.0001"),
    ],
)
def test_format_float_layouts(value: float, fmt: str, expected: str) -> None:
    assert format_float(value, fmt) == expected


def test_format_float_rejects_other_layouts() -> None:
    with pytest.raises(ValueError):
        format_float(1.0, "e")


def test_json_seconds_and_bulk_formatting() -> None:
    import numpy as np

    from vigilops.query.api.promjson import format_json_seconds, format_values, points

    assert [format_json_seconds(ms) for ms in (0, 1500, -1010, 1700000000123)] == [
        "0", "1.5", "-1.01", "1700000000.123"]
    vs = np.array([v for v, _ in GO_VALUES])
    assert format_values(vs) == [text for _, text in GO_VALUES]
    ts = np.array([1000, 1500], dtype=np.int64)
    assert points(ts, np.array([1e21, -0.0])) == ['[1,"1e+21"]', '[1.500,"-0"]']


def test_format_value_round_trips_random_floats() -> None:
    import random

    rnd = random.Random(5)
    for _ in range(2000):
        v = rnd.choice([rnd.uniform(-1, 1), rnd.expovariate(1e-9), 10 ** rnd.uniform(-30, 30)])
        assert float(format_value(v)) == v


@pytest.mark.parametrize(
    ("ms", "expected"),
    # Go's MarshalTimestamp pads the millisecond part to three digits and keeps its zeros.
    [(0, "0"), (1, "0.001"), (10, "0.010"), (1000, "1"), (1500, "1.500"), (-1500, "-1.500"),
     (-1, "-0.001"), (1700000000123, "1700000000.123"), (1700000000120, "1700000000.120")],
)
def test_format_timestamp(ms: int, expected: str) -> None:
    assert format_timestamp(ms) == expected


def test_point_and_envelopes() -> None:
    assert orjson.dumps(point(1500, 1e21)) == b'[1.500,"1e+21"]'
    assert success_body(["a"]) == b'{"status":"success","data":["a"]}'
    assert success_body([], ["w"]) == b'{"status":"success","data":[],"warnings":["w"]}'
    assert success_body({"v": "<&>"}) == b'{"status":"success","data":{"v":"\\u003c\\u0026\\u003e"}}'
    err = ApiError(ErrorType.BAD_DATA, "boom")
    assert err.http_status == 400
    assert error_body(err) == b'{"status":"error","errorType":"bad_data","error":"boom"}'
    assert ApiError(ErrorType.EXECUTION, "x").http_status == 422
    assert ApiError(ErrorType.TIMEOUT, "x").http_status == 503
    assert ApiError(ErrorType.INTERNAL, "x").http_status == 500
    assert ApiError(ErrorType.NOT_FOUND, "x").http_status == 404


TIMES = [
    ("0", 0),
    ("1", 1000),
    ("1.5", 1500),
    ("-1.5", -1500),
    ("1e3", 1_000_000),
    ("1435781451.781", 1435781451781),
    ("1435781451.7815", 1435781451782),  # rounded to milliseconds
    ("0.0004", 0),
    ("+Inf", params._unix_to_ms(-(2**63), -(2**63))),  # Go's int64 conversion of Inf/NaN
    ("2015-07-01T20:10:51.781Z", 1435781451781),
    ("2015-07-01T20:10:51Z", 1435781451000),
    ("2015-07-01T22:10:51.781+02:00", 1435781451781),
    ("2015-07-01T18:10:51.7819999-02:00", 1435781451781),
    ("1960-01-01T00:00:00Z", -315619200000),
    ("2000-02-29T00:00:00Z", 951782400000),
    (params.MIN_TIME_FORMATTED, params.MIN_TIME_MS),
    (params.MAX_TIME_FORMATTED, params.MAX_TIME_MS),
]


@pytest.mark.parametrize(("text", "ms"), TIMES, ids=[t for t, _ in TIMES])
def test_parse_time(text: str, ms: int) -> None:
    assert params.parse_time(text) == ms


@pytest.mark.parametrize(
    "text",
    ["", "x", "2015-02-29T00:00:00Z", "2015-07-01 20:10:51Z", "2015-07-01T25:00:00Z",
     "2015-07-01T20:10:51", "1_000", "1e999", " 1", "2015-07-01T20:10:51+24:00"],
)
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(ValueError) as exc:
        params.parse_time(text)
    assert str(exc.value) == f'cannot parse "{text}" to a valid timestamp'


def test_sentinels_are_prometheus_min_and_max_time() -> None:
    # MinTime = time.Unix(math.MinInt64/1000+62135596801, 0): FromTime gives these.
    assert params.MIN_TIME_MS == -9223309901257974000
    assert params.MAX_TIME_MS == 9223309901257974999


@pytest.mark.parametrize(
    ("text", "ns"),
    [("5m", 300 * 10**9), ("1.5", 1_500_000_000), ("1h30m", 5400 * 10**9), ("0", 0),
     ("1y", 365 * 86400 * 10**9), ("2w", 14 * 86400 * 10**9), ("5ms", 5_000_000),
     ("-5", -5 * 10**9), ("0.001", 1_000_000), ("1d1ms", 86_400_001_000_000)],
)
def test_parse_duration(text: str, ns: int) -> None:
    assert params.parse_duration_ns(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [("x", 'cannot parse "x" to a valid duration'),
     ("", 'cannot parse "" to a valid duration'),
     ("5m1h", 'cannot parse "5m1h" to a valid duration'),
     ("1e10", 'cannot parse "1e10" to a valid duration. It overflows int64'),
     ("300y", 'cannot parse "300y" to a valid duration')],
)
def test_parse_duration_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        params.parse_duration_ns(text)
    assert str(exc.value) == message


def test_duration_ms_truncates() -> None:
    assert params.duration_ms(1_999_999) == 1
    assert params.duration_ms(-1_999_999) == -1
    assert math.isclose(params.duration_ms(params.parse_duration_ns("1.5")), 1500)


def _matrix_by_points(metrics: list[bytes], ts: list, vs: list) -> bytes:  # type: ignore[type-arg]
    """The matrix JSON, one point at a time with the one-value formatters."""
    return ("[" + ",".join(
        '{"metric":' + m.decode() + ',"values":['
        + ",".join(f'[{format_timestamp(t)},"{format_value(v)}"]' for t, v in zip(t_.tolist(), v_.tolist()))
        + "]}"
        for m, t_, v_ in zip(metrics, ts, vs)
    ) + "]").encode()


def test_matrix_result_matches_point_by_point_formatting() -> None:
    import numpy as np
    import orjson
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from vigilops.query.api.promjson import matrix_result

    stamps = st.integers(-(2**53), 2**53) | st.integers(-5_000, 5_000).map(lambda x: x * 1000)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.lists(st.tuples(stamps, st.floats(width=64)), max_size=6), max_size=5),
           st.lists(st.text(max_size=4), min_size=5, max_size=5))
    def check(series: list[list[tuple[int, float]]], names: list[str]) -> None:
        ts = [np.array([t for t, _ in s], dtype=np.int64) for s in series]
        vs = [np.array([v for _, v in s], dtype=np.float64) for s in series]
        metrics = [orjson.dumps({"job": n}) for n in names[: len(series)]]
        got = matrix_result(metrics, ts, vs)
        assert got == _matrix_by_points(metrics, ts, vs)
        if series:
            orjson.loads(got)

    check()


def test_large_matrices_format_in_parallel_pieces_identically(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np
    import orjson

    from vigilops.query.api import points_json
    from vigilops.query.api.promjson import matrix_result

    rng = np.random.default_rng(7)
    lengths = rng.integers(0, 400, 60)
    lengths[[3, 17]] = 0  # series without points inside a piece and at a cut
    ts = [np.sort(rng.integers(0, 2**40, n)) for n in lengths]
    vs = [np.where(rng.random(n) < 0.1, np.nan, rng.normal(0, 1e6, n)) for n in lengths]
    metrics = [orjson.dumps({"job": str(i)}) for i in range(len(lengths))]
    expected = _matrix_by_points(metrics, ts, vs)
    monkeypatch.setattr(points_json, "_PARALLEL_POINTS", 1000)
    monkeypatch.setattr(workers_module, "workers", lambda: 4)
    assert matrix_result(metrics, ts, vs) == expected


def test_large_vectors_format_in_parallel_pieces_identically(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from vigilops.query.api import points_json
    from vigilops.query.api.handlers_query import encode_data, encode_result
    from vigilops.query.api.promjson import success_body
    from vigilops.query.values import InstantVector
    from vigilops.tsdb.model import Labels

    rng = np.random.default_rng(11)
    values = np.where(rng.random(3000) < 0.1, np.nan, rng.normal(0, 1e6, 3000))
    vec = InstantVector(1_700_000_000_123, [Labels({"job": str(i)}) for i in range(3000)], values)
    expected = success_body(encode_result(vec))
    monkeypatch.setattr(points_json, "_PARALLEL_POINTS", 500)
    monkeypatch.setattr(workers_module, "workers", lambda: 4)
    assert success_body(encode_data(vec)) == expected


def test_encoded_answers_equal_the_envelope_built_by_orjson() -> None:
    """The pieces joined into a body (`encode_data`, `success_body`) give the bytes that
    encoding the same data through orjson and the escaping scans gives, label values that
    need Go's HTML-safe escapes included."""
    import numpy as np

    from vigilops.query.api.handlers_query import encode_data, encode_result
    from vigilops.query.api.promjson import success_body
    from vigilops.query.values import InstantVector, Matrix, ScalarResult
    from vigilops.tsdb.model import Labels

    odd = Labels({"__name__": "m", "v": "a<b>&c\u2028d\u2029"})
    plain = Labels({"__name__": "m", "v": "x"})
    results = [
        Matrix([odd, plain], [np.array([1000, 2500]), np.array([3000])], [np.array([0.1, np.nan]), np.array([1e21])]),
        Matrix([], [], []),
        InstantVector(1500, [odd], np.array([2.5])),
        InstantVector(-1_500_007, [plain, odd, Labels({"a": "b"})], np.array([np.nan, -np.inf, -0.0])),
        InstantVector(0, [], np.zeros(0)),
        ScalarResult(1000, 1.5),
    ]
    for value in results:
        for warnings in ([], ["careful <here>"]):
            got = success_body(encode_data(value), warnings)
            assert got == success_body(encode_result(value), warnings)
            assert b"<" not in got and b"\xe2\x80\xa8" not in got


def test_metric_objects_are_remembered_within_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    import orjson

    from vigilops.query.api import handlers_query
    from vigilops.tsdb.model import Labels

    monkeypatch.setattr(handlers_query, "_METRIC_JSON", {})
    monkeypatch.setattr(handlers_query, "_METRIC_JSON_MAX", 2)
    sets = [Labels({"job": f"j{i}", "v": "<&>"}) for i in range(5)]
    for _ in range(2):
        got = handlers_query.metric_objects(sets)
        assert [orjson.loads(g) for g in got] == [dict(zip(s[0::2], s[1::2])) for s in sets]
        assert all(b"<" not in g and b"\\u003c" in g for g in got)
        assert 1 <= len(handlers_query._METRIC_JSON) <= 2
    again = handlers_query.metric_objects(sets[-1:])
    assert again[0] is handlers_query._METRIC_JSON[sets[-1]]

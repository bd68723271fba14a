"""The PromQL endpoints of the API v1 (`/query`, `/query_range`, `/format_query`): a real
aiohttp server on loopback over a real database and the real engine, GET and form POST,
Prometheus's validation order, messages and status codes, Go's number formats; the bulk
encoders against the one-value formatters; `match[]` and `format_query` against answers
recorded from Prometheus 2.42; and (peer) the same queries side by side with a real
Prometheus 2.42 loaded with the same OpenMetrics file, JSON bodies compared exactly."""

from __future__ import annotations

import json
import math
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
import pytest
from aiohttp import web

from peerprocs import fetch, prometheus_and_vigilops

from vigilops.query.api import keys, routes
from vigilops.query.api.handlers_query import encode_result
from vigilops.query.api.params import parse_matchers
from vigilops.query.api.placement import QueryPlacement
from vigilops.query.api.promjson import (
    ApiError,
    dumps,
    format_timestamp,
    format_timestamps,
    format_value,
    format_values,
)
from vigilops.query.parser import ParseError, parse, parse_metric_selector
from vigilops.query.printer import prettify
from vigilops.query.values import (
    BadQueryError,
    ExecutionError,
    InstantVector,
    Matrix,
    QueryCanceledError,
    QueryResult,
    QueryTimeoutError,
    ScalarResult,
    StringResult,
    TooManySamplesError,
)
from vigilops.tsdb.db import DB, DBOptions
from vigilops.tsdb.model import Labels

T0 = 1_700_000_000_000
STEP = 15_000

SPECIAL = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "small": 1e-7, "huge": 1e21,
           "tenth": 0.1, "negzero": -0.0, "big": 123456789012.0}


# ---- bulk number formatting -------------------------------------------------------------
VALUES = [0.0, -0.0, 1.0, -1.0, 0.1, 100.0, 1e15, 1e15 + 0.5, 9007199254740993.0, 1e16, 1e20,
          9.999999999999999e20, 1e21, 1.5e300, 1e-4, 2.5e-05, 1e-6, 9.99e-7, 1e-7, 5e-324,
          -2.5e-5, 123456789012.0, 0.30000000000000004, 1 / 3, -1e22, math.nan, math.inf,
          -math.inf, 2.0**63, -(2.0**53), 1e14 + 0.25]


def test_bulk_value_formatting_matches_format_value() -> None:
    rng = np.random.default_rng(7)
    vs = np.concatenate([
        np.array(VALUES),
        rng.normal(0, 1e3, 500),
        np.round(rng.normal(0, 1e6, 200)),
        rng.random(200) * 10.0 ** rng.integers(-25, 25, 200),
    ])
    assert format_values(vs) == [format_value(float(v)) for v in vs]
    assert format_values(np.zeros(0)) == []


def test_bulk_timestamp_formatting_matches_format_timestamp() -> None:
    ts = np.array([0, 1, 10, 999, 1000, 1500, 1010, -1, -1500, -2000, T0, T0 + 123,
                   2**62, -(2**62) - 7], dtype=np.int64)
    assert format_timestamps(ts) == [format_timestamp(int(t)) for t in ts]
    whole = np.array([0, 1000, -1000, -60000, T0 - T0 % 1000, 2**62 - 2**62 % 1000], dtype=np.int64)
    assert format_timestamps(whole) == [format_timestamp(int(t)) for t in whole]


def test_encode_result_shapes() -> None:
    ls = [Labels({"__name__": "up", "job": "<a&b>"}), Labels({})]
    vec = InstantVector(1500, ls, np.array([1.0, math.nan]))
    assert dumps(encode_result(vec)) == (
        b'{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"\\u003ca\\u0026b\\u003e"},'
        b'"value":[1.500,"1"]},{"metric":{},"value":[1.500,"NaN"]}]}'
    )
    mat = Matrix(ls, [np.array([1000, 2500], dtype=np.int64), np.array([], dtype=np.int64)],
                 [np.array([math.inf, -0.0]), np.array([])])
    assert dumps(encode_result(mat)) == (
        b'{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"\\u003ca\\u0026b\\u003e"},'
        b'"values":[[1,"+Inf"],[2.500,"-0"]]},{"metric":{},"values":[]}]}'
    )
    assert dumps(encode_result(Matrix([], [], []))) == b'{"resultType":"matrix","result":[]}'
    # Scalars and strings: the time as Go's float64 JSON, the scalar in 'f' format.
    assert dumps(encode_result(ScalarResult(1500, 1e-7))) == (
        b'{"resultType":"scalar","result":[1.5,"0.0000001"]}'
    )
    assert dumps(encode_result(ScalarResult(-1010, 1e21))) == (
        b'{"resultType":"scalar","result":[-1.01,"1000000000000000000000"]}'
    )
    assert dumps(encode_result(StringResult(0, 'a"<b>'))) == (
        b'{"resultType":"string","result":[0,"a\\"\\u003cb\\u003e"]}'
    )


# ---- match[] and format_query, as Prometheus 2.42 answers ----------------------------------
SELECTOR_ERRORS = [
    ("foo + bar", '1:5: parse error: unexpected <op:+>'),
    ("foo offset 5m", "1:5: parse error: unexpected <offset>"),
    ("foo @ 10", '1:5: parse error: unexpected "<Item 57385>" <op:@>'),
    ("rate(foo[5m])", '1:5: parse error: unexpected "("'),
    ("foo[5m]", '1:4: parse error: unexpected "["'),
    ("1", '1:1: parse error: unexpected number "1"'),
    ('"x"', '1:1: parse error: unexpected string "\\"x\\""'),
    ("foo{", "1:5: parse error: unexpected end of input inside braces"),
    ("foo bar", '1:5: parse error: unexpected identifier "bar"'),
    ("(foo)", '1:1: parse error: unexpected "("'),
    ("", "1:1: parse error: unexpected end of input"),
    ("sum(foo)", '1:4: parse error: unexpected "("'),
    ("-foo", "1:1: parse error: unexpected <op:->"),
    ("nan", '1:1: parse error: unexpected number "nan"'),
    ('inf{a="b"}', '1:1: parse error: unexpected number "inf"'),
    ("foo $", "1:5: parse error: unexpected character: '$'"),
    ('foo{a="b"} )', "1:13: parse error: unexpected right parenthesis ')'"),
    ("foo\n + bar", "2:2: parse error: unexpected <op:+>"),
    ("bool", "1:1: parse error: unexpected <bool>"),
    ('foo{a="b"}{c="d"}', '1:11: parse error: unexpected "{"'),
    ('foo{a="\\q"}', "1:7: parse error: unknown escape sequence U+0071 'q'"),
    ('{__name__="a"} 5m', '1:16: parse error: unexpected duration "5m"'),
    ('{a="b"} or', "1:9: parse error: unexpected <op:or>"),
    ("foo [", '1:5: parse error: unexpected "["'),
    ('foo{a="b"} offset', "1:12: parse error: unexpected <offset>"),
]


@pytest.mark.parametrize(("text", "message"), SELECTOR_ERRORS)
def test_metric_selector_errors_as_prometheus(text: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_metric_selector(text)
    assert str(info.value) == message


@pytest.mark.parametrize("text", [
    " foo ", "foo#c", 'foo{a="b",}', "foo {a=\"b\"}", ":x", "sum", 'by{a="1"}',
    'foo{__name__="bar"}', 'foo{__name__=""}', 'x{a="b"} # hi', 'foo{a="}"}',
])
def test_metric_selectors_prometheus_accepts(text: str) -> None:
    assert parse_matchers([text]) != []


def test_match_errors_wrapped_like_each_endpoint() -> None:
    with pytest.raises(ApiError) as info:
        parse_matchers(['{a=~".*"}'], wrap_empty=True)
    assert info.value.message == 'invalid parameter "match[]": match[] must contain at least one non-empty matcher'
    with pytest.raises(ApiError) as info:
        parse_matchers(["{}", "foo{"], wrap_parse_errors=False)  # parse errors first
    assert info.value.message == "1:5: parse error: unexpected end of input inside braces"
    with pytest.raises(ApiError) as info:
        parse_matchers(['{a=""}'], wrap_parse_errors=False)
    assert info.value.message == "match[] must contain at least one non-empty matcher"


LONG = 'http_requests_total_with_a_long_metric_name{job="something-long"}[5m]'
PRETTY = [
    ("a / ignoring() group_left b", "a / b"),
    ("a / on() group_left b", "a / on () group_left () b"),
    ('foo{z="1",a!="2",a="3",a0="4"}', 'foo{a!="2",a0="4",a="3",z="1"}'),
    ('{__name__="foo",a="1"}', '{__name__="foo",a="1"}'),
    ("-sum(rate(foo[5m] offset 1m @ 1.5)) by (a) > bool 1e6 unless count_values(\"x\", foo)",
     '-sum by (a) (rate(foo[5m] @ 1.500 offset 1m)) > bool 1e+06 unless count_values("x", foo)'),
    ("+Inf ^ 2", "++Inf ^ 2"),
    ("foo @ -1.5", "foo @ -1.500"),
    (f'label_replace(rate({LONG}), "dst", "$1", "src", "(.*)")',
     f'label_replace(\n  rate({LONG}),\n  "dst",\n  "$1",\n  "src",\n  "(.*)"\n)'),
    (f"-(rate({LONG}) + rate({LONG}))",
     f"-(\n    rate({LONG})\n  +\n    rate({LONG})\n)"),
    (f"max_over_time((rate({LONG}) + rate({LONG}))[1h:5m] offset 5m)",
     f"max_over_time(\n  (\n      rate({LONG})\n    +\n      rate({LONG})\n  )[1h:5m] offset 5m\n)"),
    ('topk(5, rate(http_requests_total_with_a_long_metric_name{job="something-long", '
     'instance="a-very-long-instance:9090"}[5m]))',
     'topk(\n  5,\n  rate(\n    http_requests_total_with_a_long_metric_name{instance="a-very-long-instance:9090",'
     'job="something-long"}[5m]\n  )\n)'),
    ('sum by(job, instance, le) (rate(http_request_duration_seconds_bucket{job="api-server", '
     'handler="/api/v1/query"}[5m])) / ignoring(le) group_left sum by(job, instance) '
     '(rate(http_request_duration_seconds_count{job="api-server"}[5m]))',
     '  sum by (job, instance, le) (\n    rate(http_request_duration_seconds_bucket{handler="/api/v1/query",'
     'job="api-server"}[5m])\n  )\n/ ignoring (le) group_left ()\n  sum by (job, instance) '
     '(rate(http_request_duration_seconds_count{job="api-server"}[5m]))'),
]


@pytest.mark.parametrize(("query", "expected"), PRETTY)
def test_prettify_as_prometheus(query: str, expected: str) -> None:
    assert prettify(parse(query)) == expected


# ---- the endpoints over a real database ----------------------------------------------------
def _fill(d: DB) -> None:
    app = d.appender()
    ups = [Labels({"__name__": "up", "job": "a", "instance": f"h{i}"}) for i in (1, 2)]
    special = [Labels({"__name__": "special", "kind": k}) for k in SPECIAL]
    temp = [Labels({"__name__": "temp", "room": "hall <&>"})]
    refs = app.refs(ups + special + temp)
    for k in range(9):
        vals = [1.0, float(k)] + list(SPECIAL.values()) + [20.0 + k / 2]
        app.append(refs, T0 + k * STEP, np.array(vals))
    app.commit()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[DB]:
    d = DB.open(str(tmp_path / "data"), DBOptions(retention_ms=0))
    _fill(d)
    yield d
    d.close()


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    return runner, f"http://127.0.0.1:{sock.getsockname()[1]}/api/v1"


@pytest.fixture
async def base(db: DB) -> AsyncIterator[str]:
    from vigilops.query.engine import Engine, EngineOptions

    app = web.Application()
    app[keys.QUERYABLE_KEY] = db
    app[keys.ENGINE_KEY] = Engine(db, EngineOptions())
    app[keys.PLACEMENT_KEY] = QueryPlacement()  # as the server: repeated queries on the loop
    routes.add_routes(app)
    runner, url = await _serve(app)
    try:
        yield url
    finally:
        await runner.cleanup()


async def call(url: str, params: list[tuple[str, str]], post: bool = False, status: int = 200) -> Any:
    async with aiohttp.ClientSession() as s:
        if post:
            resp = await s.post(url, data=params)
        else:
            resp = await s.get(url, params=params)
        async with resp:
            assert resp.status == status, await resp.text()
            assert resp.headers["Content-Type"].startswith("application/json")
            return json.loads(await resp.read())


async def raw(url: str, params: list[tuple[str, str]]) -> bytes:
    async with aiohttp.ClientSession() as s:
        async with s.get(url, params=params) as resp:
            return await resp.read()


def _s(ms: int) -> str:
    return format_timestamp(ms)


def _by_metric(result: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(result, key=lambda r: sorted(r["metric"].items()))


@pytest.mark.parametrize("post", [False, True])
async def test_instant_vector(base: str, post: bool) -> None:
    body = await call(f"{base}/query", [("query", "up"), ("time", _s(T0 + 60_000))], post)
    assert body["status"] == "success" and "warnings" not in body
    assert body["data"]["resultType"] == "vector"
    assert _by_metric(body["data"]["result"]) == [
        {"metric": {"__name__": "up", "instance": "h1", "job": "a"}, "value": [1700000060, "1"]},
        {"metric": {"__name__": "up", "instance": "h2", "job": "a"}, "value": [1700000060, "4"]},
    ]


async def test_values_and_label_escapes_in_raw_json(base: str) -> None:
    body = await raw(f"{base}/query", [("query", "special"), ("time", _s(T0 + 1500))])
    for kind, text in (("nan", "NaN"), ("inf", "+Inf"), ("ninf", "-Inf"), ("small", "1e-07"),
                       ("huge", "1e+21"), ("tenth", "0.1"), ("negzero", "-0"), ("big", "123456789012")):
        assert (f'{{"metric":{{"__name__":"special","kind":"{kind}"}},'
                f'"value":[1700000001.500,"{text}"]}}').encode() in body, kind
    body = await raw(f"{base}/query", [("query", "temp"), ("time", _s(T0))])
    assert b'"room":"hall \\u003c\\u0026\\u003e"' in body


async def test_scalar_string_and_matrix(base: str) -> None:
    assert await raw(f"{base}/query", [("query", "1.5"), ("time", "1.5")]) == (
        b'{"status":"success","data":{"resultType":"scalar","result":[1.5,"1.5"]}}'
    )
    assert await raw(f"{base}/query", [("query", '"a<b"'), ("time", "1700000000.123")]) == (
        b'{"status":"success","data":{"resultType":"string","result":[1700000000.123,"a\\u003cb"]}}'
    )
    body = await call(f"{base}/query", [("query", 'up{instance="h2"}[30s]'), ("time", _s(T0 + 60_000))])
    assert body["data"] == {"resultType": "matrix", "result": [
        {"metric": {"__name__": "up", "instance": "h2", "job": "a"},
         "values": [[1700000030, "2"], [1700000045, "3"], [1700000060, "4"]]},
    ]}


@pytest.mark.parametrize("post", [False, True])
async def test_range_query(base: str, post: bool) -> None:
    params = [("query", "up"), ("start", _s(T0)), ("end", _s(T0 + 30_000)), ("step", "15s")]
    body = await call(f"{base}/query_range", params, post)
    assert body["data"] == {"resultType": "matrix", "result": [
        {"metric": {"__name__": "up", "instance": "h1", "job": "a"},
         "values": [[1700000000, "1"], [1700000015, "1"], [1700000030, "1"]]},
        {"metric": {"__name__": "up", "instance": "h2", "job": "a"},
         "values": [[1700000000, "0"], [1700000015, "1"], [1700000030, "2"]]},
    ]}
    # A step in float seconds and a fractional start: points keep Prometheus's timestamp format.
    params = [("query", "time()"), ("start", "1"), ("end", "10.5"), ("step", "2.5")]
    body = await call(f"{base}/query_range", params, post)
    assert body["data"]["result"] == [
        {"metric": {}, "values": [[1, "1"], [3.5, "3.5"], [6, "6"], [8.5, "8.5"]]}
    ]
    assert b"[3.500,\"3.5\"]" in await raw(f"{base}/query_range", params)


async def test_format_query(base: str) -> None:
    body = await call(f"{base}/format_query", [("query", 'sum(rate(foo{b="c",a="x"}[5m])) by (a)')])
    assert body == {"status": "success", "data": 'sum by (a) (rate(foo{a="x",b="c"}[5m]))'}
    body = await call(f"{base}/format_query", [("query", "a+b")], post=True)
    assert body["data"] == "a + b"


ERRORS: list[tuple[str, list[tuple[str, str]], int, str, str]] = [
    ("query", [], 400, "bad_data", 'invalid parameter "query": 1:1: parse error: no expression found in input'),
    ("query", [("query", "foo +")], 400, "bad_data", 'invalid parameter "query": 1:6: parse error: unexpected end of input'),
    ("query", [("query", "1"), ("time", "x")], 400, "bad_data",
     "invalid parameter \"time\": Invalid time value for 'time': cannot parse \"x\" to a valid timestamp"),
    ("query", [("query", "foo +"), ("time", "x")], 400, "bad_data",
     "invalid parameter \"time\": Invalid time value for 'time': cannot parse \"x\" to a valid timestamp"),
    ("query", [("query", "1"), ("timeout", "x")], 400, "bad_data", 'invalid parameter "timeout": cannot parse "x" to a valid duration'),
    ("query", [("query", "1"), ("timeout", "-1")], 503, "timeout", "query timed out in query queue"),
    ("query", [("query", "1"), ("timeout", "0")], 503, "timeout", "query timed out in query execution"),
    ("query", [("query", 'label_replace(up, "instance", "", "", "")'), ("time", "1700000000")], 422, "execution",
     "vector cannot contain metrics with the same labelset"),
    ("query_range", [], 400, "bad_data", 'invalid parameter "start": cannot parse "" to a valid timestamp'),
    ("query_range", [("query", "1"), ("start", "1")], 400, "bad_data", 'invalid parameter "end": cannot parse "" to a valid timestamp'),
    ("query_range", [("query", "1"), ("start", "10"), ("end", "1")], 400, "bad_data",
     'invalid parameter "end": end timestamp must not be before start time'),
    ("query_range", [("query", "1"), ("start", "1"), ("end", "10")], 400, "bad_data",
     'invalid parameter "step": cannot parse "" to a valid duration'),
    ("query_range", [("query", "1"), ("start", "1"), ("end", "10"), ("step", "0")], 400, "bad_data",
     'invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer'),
    ("query_range", [("query", "1"), ("start", "0"), ("end", "11001"), ("step", "1")], 400, "bad_data",
     "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"),
    ("query_range", [("query", "1 +"), ("start", "1"), ("end", "10"), ("step", "1")], 400, "bad_data",
     "1:4: parse error: unexpected end of input"),
    ("query_range", [("query", "1"), ("start", "1"), ("end", "10"), ("step", "1"), ("timeout", "x")], 400, "bad_data",
     'invalid parameter "timeout": cannot parse "x" to a valid duration'),
    ("query_range", [("query", "up[5m]"), ("start", "1"), ("end", "10"), ("step", "1")], 400, "bad_data",
     'invalid expression type "range vector" for range query, must be Scalar or instant Vector'),
    ("query_range", [("query", '"s"'), ("start", "1"), ("end", "10"), ("step", "1")], 400, "bad_data",
     'invalid expression type "string" for range query, must be Scalar or instant Vector'),
    ("query_range", [("query", "1"), ("start", "1"), ("end", "2"), ("step", "0.0001")], 422, "execution",
     "unexpected error: runtime error: integer divide by zero"),
    ("format_query", [("query", "foo +")], 400, "bad_data", 'invalid parameter "query": 1:6: parse error: unexpected end of input'),
]


@pytest.mark.parametrize(("path", "params", "status", "kind", "message"), ERRORS,
                         ids=[f"{p} {q}" for p, q, *_ in ERRORS])
async def test_errors(base: str, path: str, params: list[tuple[str, str]], status: int, kind: str, message: str) -> None:
    body = await call(f"{base}/{path}", params, status=status)
    assert body == {"status": "error", "errorType": kind, "error": message}


async def test_exactly_11000_points_are_allowed(base: str) -> None:
    body = await call(f"{base}/query_range", [("query", "1"), ("start", "1"), ("end", "11001"), ("step", "1")])
    assert len(body["data"]["result"][0]["values"]) == 11001


@pytest.mark.parametrize("path,params", [
    ("query_range", [("query", "up or special or temp"), ("start", _s(T0)), ("end", _s(T0 + 8 * STEP)), ("step", "1")]),
    ("query", [("query", "special"), ("time", _s(T0 + 1500))]),
])
async def test_answers_sent_in_pieces_equal_joined_ones(
    base: str, path: str, params: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from vigilops.query.api import promjson

    async def fetch() -> tuple[bytes, aiohttp.typedefs.LooseHeaders]:
        async with aiohttp.ClientSession() as s, s.get(f"{base}/{path}", params=params) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
            return await resp.read(), resp.headers

    joined, _ = await fetch()
    monkeypatch.setattr(promjson, "STREAM_BYTES", 1)  # every answer sent piece by piece
    streamed, headers = await fetch()
    assert streamed == joined and int(headers["Content-Length"]) == len(streamed)
    assert json.loads(streamed)["status"] == "success"


class _FailingEngine:
    """Raises the error it was given, to check the errorType and status mapping."""

    def __init__(self, err: Exception) -> None:
        self.err = err

    def instant_query(self, query: object, t_ms: int, **_: object) -> QueryResult:
        raise self.err

    def range_query(self, query: object, start: int, end: int, step: int, **_: object) -> QueryResult:
        raise self.err


@pytest.mark.parametrize(("err", "status", "kind"), [
    (QueryTimeoutError("query timed out in expression evaluation"), 503, "timeout"),
    (QueryCanceledError("query was canceled in expression evaluation"), 503, "canceled"),
    (ExecutionError("vector cannot contain metrics with the same labelset"), 422, "execution"),
    (TooManySamplesError(), 422, "execution"),
    (BadQueryError("bad"), 400, "bad_data"),
    (RuntimeError("boom"), 422, "execution"),
])
async def test_engine_errors_map_to_error_types(err: Exception, status: int, kind: str) -> None:
    app = web.Application()
    app[keys.ENGINE_KEY] = _FailingEngine(err)  # type: ignore[assignment]
    routes.add_routes(app)
    runner, url = await _serve(app)
    try:
        for path, params in (("query", [("query", "1")]),
                             ("query_range", [("query", "1"), ("start", "1"), ("end", "2"), ("step", "1")])):
            body = await call(f"{url}/{path}", params, status=status)
            message = str(err) if not isinstance(err, RuntimeError) else f"unexpected error: {err}"
            assert body == {"status": "error", "errorType": kind, "error": message}
    finally:
        await runner.cleanup()


async def test_warnings_are_reported() -> None:
    class Warns:
        def instant_query(self, query: object, t_ms: int, **_: object) -> QueryResult:
            return QueryResult(ScalarResult(t_ms, 1.0), warnings=["careful"])

    app = web.Application()
    app[keys.ENGINE_KEY] = Warns()  # type: ignore[assignment]
    routes.add_routes(app)
    runner, url = await _serve(app)
    try:
        body = await call(f"{url}/query", [("query", "1"), ("time", "2")])
        assert body == {"status": "success", "data": {"resultType": "scalar", "result": [2, "1"]},
                        "warnings": ["careful"]}
    finally:
        await runner.cleanup()


# ---- side by side with Prometheus 2.42 ----------------------------------------------------
PEER_STEP_S = 60
PEER_END_S = (int(time.time()) // 3600 - 2) * 3600
PEER_START_S = PEER_END_S - 2 * 3600
MID = PEER_START_S + 3600


def _openmetrics() -> str:
    lines = ["# TYPE http_requests counter", "# TYPE temp gauge", "# TYPE special gauge", "# TYPE churn gauge"]
    specials = {"nan": "NaN", "inf": "+Inf", "ninf": "-Inf", "small": "1e-7", "huge": "1e21", "tenth": "0.1"}
    for t in range(PEER_START_S, PEER_END_S + 1, PEER_STEP_S):
        k = (t - PEER_START_S) // PEER_STEP_S
        for job in ("api", "db"):
            for code in ("200", "500"):
                reset = 0 if k < 70 else 70  # a counter reset in the second hour
                lines.append(f'http_requests_total{{code="{code}",job="{job}"}} {(k - reset) * (3 if code == "200" else 1)} {t}')
        for i, room in enumerate(("kitchen", "hall <&>", 'quo"te')):
            esc = room.replace('"', '\\"')
            lines.append(f'temp{{room="{esc}"}} {20 + i * 0.5 + (k % 7) / 4} {t}')
        for kind, v in specials.items():
            lines.append(f'special{{kind="{kind}"}} {v} {t}')
        lines.append(f'churn{{pod="p{k // 30}"}} {k} {t}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with prometheus_and_vigilops(str(tmp_path_factory.mktemp("peer_query")), _openmetrics()) as bases:
        yield bases


def _peer_call(base: str, path: str, params: list[tuple[str, str]], post: bool) -> tuple[int, Any]:
    body = urllib.parse.urlencode(params).encode()
    if post:
        req = urllib.request.Request(base + path, data=body, method="POST")
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    else:
        req = urllib.request.Request(base + path + "?" + body.decode())
    status, _, answer = fetch(req, timeout=60)
    return status, json.loads(answer)


def _normalise(body: Any) -> Any:
    data = body.get("data")
    if isinstance(data, dict) and data.get("resultType") in ("vector", "matrix"):
        data["result"] = _by_metric(data["result"])
    return body


INSTANT = [
    "http_requests_total", "temp", "special", "churn", "1.5", '"a<b>"', "time()", "vector(1)",
    "http_requests_total[3m]", "nonexistent", 'temp{room=~"k.*"} offset 10m',
    "rate(http_requests_total[5m])", "sum by (job) (rate(http_requests_total[5m]))",
    "increase(http_requests_total[10m])", "temp > 21", "temp * 2 + 1", "-temp",
    "max(temp) - min(temp)", "count(temp)", "scalar(sum(temp))", "avg_over_time(temp[10m])",
    "http_requests_total / on(job) group_left sum by (job) (http_requests_total)",
]


@pytest.mark.peer
@pytest.mark.parametrize("query", INSTANT)
@pytest.mark.parametrize("at", [MID, MID + 30, PEER_END_S + 120])
def test_instant_queries_as_prometheus(servers: tuple[str, str], query: str, at: int) -> None:
    pbase, vbase = servers
    params = [("query", query), ("time", str(at))]
    p = _normalise(_peer_call(pbase, "/api/v1/query", params, False)[1])
    v = _normalise(_peer_call(vbase, "/api/v1/query", params, False)[1])
    assert v == p


RANGE = ["http_requests_total", "rate(http_requests_total[5m])", "temp", "special", "churn",
         "sum(temp)", "time()", "1", "absent(nonexistent)", "changes(http_requests_total[10m])"]


@pytest.mark.peer
@pytest.mark.parametrize("query", RANGE)
@pytest.mark.parametrize("post", [False, True])
def test_range_queries_as_prometheus(servers: tuple[str, str], query: str, post: bool) -> None:
    pbase, vbase = servers
    params = [("query", query), ("start", str(MID - 1800)), ("end", f"{MID + 1800}.5"), ("step", "95s")]
    p = _normalise(_peer_call(pbase, "/api/v1/query_range", params, post)[1])
    v = _normalise(_peer_call(vbase, "/api/v1/query_range", params, post)[1])
    assert v == p


PEER_ERRORS: list[tuple[str, list[tuple[str, str]]]] = [
    ("/api/v1/query", []),
    ("/api/v1/query", [("query", "sum(")]),
    ("/api/v1/query", [("query", "foo bar")]),
    ("/api/v1/query", [("query", "1"), ("time", "yesterday")]),
    ("/api/v1/query", [("query", "1"), ("timeout", "1x")]),
    ("/api/v1/query", [("query", "1"), ("timeout", "-1s")]),
    ("/api/v1/query", [("query", "temp + on() temp")]),
    ("/api/v1/query_range", [("query", "1"), ("start", "10"), ("end", "1"), ("step", "1")]),
    ("/api/v1/query_range", [("query", "1"), ("start", "1"), ("end", "10"), ("step", "-5")]),
    ("/api/v1/query_range", [("query", "1"), ("start", "1"), ("end", "100000"), ("step", "1")]),
    ("/api/v1/query_range", [("query", "temp[5m]"), ("start", "1"), ("end", "10"), ("step", "1")]),
    ("/api/v1/query_range", [("query", "rate(temp)"), ("start", "1"), ("end", "10"), ("step", "1")]),
    ("/api/v1/format_query", [("query", "sum(temp) by (")]),
]


@pytest.mark.peer
@pytest.mark.parametrize(("path", "params"), PEER_ERRORS, ids=[f"{p} {q}" for p, q in PEER_ERRORS])
def test_errors_as_prometheus(servers: tuple[str, str], path: str, params: list[tuple[str, str]]) -> None:
    pbase, vbase = servers
    assert _peer_call(vbase, path, params, False) == _peer_call(pbase, path, params, False)


FORMAT = [q for q, _ in PRETTY] + INSTANT


@pytest.mark.peer
def test_format_query_as_prometheus(servers: tuple[str, str]) -> None:
    pbase, vbase = servers
    for query in FORMAT:
        params = [("query", query)]
        assert _peer_call(vbase, "/api/v1/format_query", params, True) == \
            _peer_call(pbase, "/api/v1/format_query", params, True), query


MATCH_TEXTS = [t for t, _ in SELECTOR_ERRORS] + [
    '{a=~".*"}', "{}", "foo{a}", 'foo{a="b" c="d"}', '{a=~"("}', 'up{a=~"x**"}', "nan", "",
    'foo{__name__="bar"}',
]


@pytest.mark.peer
@pytest.mark.parametrize(("path", "param"), [
    ("/api/v1/series", "match[]"), ("/api/v1/labels", "match[]"),
    ("/api/v1/label/job/values", "match[]"), ("/api/v1/targets/metadata", "match_target"),
])
def test_match_errors_as_prometheus(servers: tuple[str, str], path: str, param: str) -> None:
    """`/series` wraps every `match[]` error in ``invalid parameter "match[]"``, `/labels`
    and `/label/…/values` none, `/targets/metadata` its parse errors in
    ``invalid parameter "match_target"`` (and it needs no non-empty matcher)."""
    pbase, vbase = servers
    for text in MATCH_TEXTS:
        params = [(param, text)]
        assert _peer_call(vbase, path, params, False) == _peer_call(pbase, path, params, False), text


class _RecordingEngine:
    """Stands in for the engine: records the per-query timeout each call is given."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.timeouts: list[float | None] = []

    def instant_query(self, query: Any, t_ms: int, *, timeout_s: float | None = None) -> QueryResult:
        self.timeouts.append(timeout_s)
        result: QueryResult = self.engine.instant_query(query, t_ms, timeout_s=timeout_s)
        return result

    def range_query(self, query: Any, start_ms: int, end_ms: int, step_ms: int, *,
                    timeout_s: float | None = None) -> QueryResult:
        self.timeouts.append(timeout_s)
        result: QueryResult = self.engine.range_query(query, start_ms, end_ms, step_ms, timeout_s=timeout_s)
        return result


async def test_request_timeout_is_passed_to_the_engine(db: DB) -> None:
    from vigilops.query.engine import Engine, EngineOptions

    engine = _RecordingEngine(Engine(db, EngineOptions(timeout_s=10.0)))
    app = web.Application()
    app[keys.QUERYABLE_KEY] = db
    app[keys.ENGINE_KEY] = engine  # type: ignore[assignment]
    routes.add_routes(app)
    runner, url = await _serve(app)
    try:
        instant = [("query", "up"), ("time", _s(T0))]
        plain = await call(f"{url}/query", instant)
        assert await call(f"{url}/query", instant + [("timeout", "500ms")]) == plain
        rng = [("query", "up"), ("start", _s(T0)), ("end", _s(T0 + 30_000)), ("step", "15s")]
        await call(f"{url}/query_range", rng + [("timeout", "30")])
    finally:
        await runner.cleanup()
    # The engine itself keeps the shorter of this and --query.timeout.
    assert engine.timeouts == [None, 0.5, 30.0]


@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=64))
def test_bulk_value_formatting_matches_format_value_for_any_bits(bit_patterns: list[int]) -> None:
    vs = np.array(bit_patterns, dtype=np.uint64).view(np.float64)
    assert format_values(vs) == [format_value(float(v)) for v in vs]

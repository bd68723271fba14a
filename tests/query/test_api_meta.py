"""The metadata endpoints of the API v1 over a real aiohttp server on loopback, backed by a
real database filled through the Appender."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from vigilops.http_api import FLAGS_KEY, MANAGER_KEY
from vigilops.query.api import keys, routes
from vigilops.scrape.textparse import MetricMetadata
from vigilops.tsdb.db import DB, DBOptions
from vigilops.tsdb.model import Labels

T0 = 1_700_000_000_000


def _series() -> list[Labels]:
    out = [Labels({"__name__": "up", "job": j, "instance": f"h{i}"}) for j in ("a", "b") for i in range(3)]
    out += [Labels({"__name__": "temp", "room": r, "job": "a"}) for r in ("kitchen", "hall <&>")]
    out.append(Labels({"__name__": "late", "job": "c", "zone": "z1"}))
    return out


@pytest.fixture
def db(tmp_path) -> Iterator[DB]:  # type: ignore[no-untyped-def]
    d = DB.open(str(tmp_path / "data"), DBOptions(retention_ms=0))
    app = d.appender()
    ls = _series()
    refs = app.refs(ls)
    early = refs[:-1]
    for k in range(5):
        app.append(early, T0 + k * 15_000, np.arange(len(early), dtype=np.float64))
    # `late` has samples only at T0 + 1 h.
    app.append(refs[-1:], T0 + 3_600_000, np.array([1.0]))
    app.commit()
    yield d
    d.close()


@dataclass
class _Status:
    metadata: dict[str, MetricMetadata] = field(default_factory=dict)


@dataclass
class _Loop:
    status: _Status


class _Manager:
    """Stands in for the scrape manager: only `active()` loops' metadata is read."""

    def __init__(self, loops: list[_Loop]) -> None:
        self.loops = loops

    def active(self) -> list[_Loop]:
        return self.loops


MANAGER = _Manager(
    [
        _Loop(_Status({"up": MetricMetadata("gauge", "Up."), "temp": MetricMetadata("gauge", "Temp.", "celsius")})),
        _Loop(_Status({"up": MetricMetadata("gauge", "Up."), "x": MetricMetadata("untyped", "")})),
        _Loop(_Status({"up": MetricMetadata("counter", "Other up.")})),
    ]
)


@pytest.fixture
async def base(db: DB) -> AsyncIterator[str]:
    app = web.Application()
    app[keys.QUERYABLE_KEY] = db
    app[keys.DB_KEY] = db
    app[MANAGER_KEY] = MANAGER  # type: ignore[assignment]
    app[FLAGS_KEY] = {"storage.tsdb.retention.time": "15d", "storage.tsdb.retention.size": "0B"}
    routes.add_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/api/v1"
    finally:
        await runner.cleanup()


async def call(
    url: str, params: list[tuple[str, str]] | None = None, post: bool = False, status: int = 200
) -> Any:
    async with aiohttp.ClientSession() as s:
        if post:
            resp = await s.post(url, data=params or [])
        else:
            resp = await s.get(url, params=params or [])
        async with resp:
            assert resp.status == status, await resp.text()
            assert resp.headers["Content-Type"].startswith("application/json")
            return await resp.json()


def ok(body: Any) -> Any:
    assert body["status"] == "success", body
    return body["data"]


@pytest.mark.parametrize("post", [False, True])
async def test_labels(base: str, post: bool) -> None:
    assert ok(await call(f"{base}/labels", post=post)) == ["__name__", "instance", "job", "room", "zone"]
    m = [("match[]", "temp"), ("match[]", '{job="c"}')]
    assert ok(await call(f"{base}/labels", m, post=post)) == ["__name__", "job", "room", "zone"]
    # With matchers, label names come from the index of every block and of the head that
    # overlap the range, without looking at samples (Prometheus's granularity): all of
    # these series are in the head, which overlaps the range.
    rng = [("start", str(T0 // 1000 + 1800)), ("end", str(T0 // 1000 + 7200))]
    ab = [("match[]", '{job=~"a|b"}')]
    assert ok(await call(f"{base}/labels", rng + ab, post=post)) == ok(await call(f"{base}/labels", ab, post=post))
    # A range before any data has nothing.
    early = [("start", str(T0 // 1000 - 7200)), ("end", str(T0 // 1000 - 3600))]
    assert ok(await call(f"{base}/labels", early + m, post=post)) == []
    body = await call(f"{base}/labels", [("limit", "2"), ("unknown", "x")], post=post)
    assert body["data"] == ["__name__", "instance"]
    assert body["warnings"] == ["results truncated due to limit"]


async def test_post_body_wins_over_query_string(base: str) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/labels?match[]=up", data={"match[]": "temp"}) as resp:
            # Both are read (Go's r.Form merges body and URL values).
            assert ok(await resp.json()) == ["__name__", "instance", "job", "room"]
        async with s.post(f"{base}/labels?limit=x", data={"limit": "1"}) as resp:
            assert ok(await resp.json()) == ["__name__"]


async def test_label_values(base: str) -> None:
    assert ok(await call(f"{base}/label/__name__/values")) == ["late", "temp", "up"]
    assert ok(await call(f"{base}/label/job/values", [("match[]", "up"), ("match[]", "late")])) == ["a", "b", "c"]
    assert ok(await call(f"{base}/label/room/values")) == ["hall <&>", "kitchen"]
    assert ok(await call(f"{base}/label/nope/values")) == []
    body = await call(f"{base}/label/instance/values", [("limit", "1")])
    assert body == {"status": "success", "data": ["h0"], "warnings": ["results truncated due to limit"]}
    err = await call(f"{base}/label/1bad/values", status=400)
    assert err == {"status": "error", "errorType": "bad_data", "error": 'invalid label name: "1bad"'}


async def test_label_values_escapes_like_go(base: str) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base}/label/room/values") as resp:
            assert await resp.read() == b'{"status":"success","data":["hall \\u003c\\u0026\\u003e","kitchen"]}'


@pytest.mark.parametrize("post", [False, True])
async def test_series(base: str, post: bool) -> None:
    m = [("match[]", '{job="b"}'), ("match[]", "late"), ("match[]", 'up{instance="h0"}')]
    got = ok(await call(f"{base}/series", m, post=post))
    assert got == [
        {"__name__": "late", "job": "c", "zone": "z1"},
        {"__name__": "up", "instance": "h0", "job": "a"},
        {"__name__": "up", "instance": "h0", "job": "b"},
        {"__name__": "up", "instance": "h1", "job": "b"},
        {"__name__": "up", "instance": "h2", "job": "b"},
    ]
    later = m + [("start", "2023-11-14T22:43:20Z"), ("end", str(T0 // 1000 + 7200))]
    assert ok(await call(f"{base}/series", later, post=post)) == [got[0]]
    earlier = m + [("start", "2023-11-14T22:13:20.000+00:00"), ("end", str(T0 // 1000 + 60))]
    assert got[1:] == ok(await call(f"{base}/series", earlier, post=post))[-4:]
    body = await call(f"{base}/series", m + [("limit", "2")], post=post)
    assert len(body["data"]) == 2 and body["warnings"] == ["results truncated due to limit"]


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("series", [], "no match[] parameter provided"),
        ("series", [("match[]", "up"), ("start", "x")],
         "invalid parameter \"start\": Invalid time value for 'start': cannot parse \"x\" to a valid timestamp"),
        ("labels", [("end", "2015-02-30T00:00:00Z")],
         "invalid parameter \"end\": Invalid time value for 'end': cannot parse \"2015-02-30T00:00:00Z\" to a valid timestamp"),
        # Prometheus 2.42 wraps both kinds of match[] error in /series, neither elsewhere.
        ("labels", [("match[]", '{job=~".*"}')],
         "match[] must contain at least one non-empty matcher"),
        ("series", [("match[]", '{job=~".*"}')],
         'invalid parameter "match[]": match[] must contain at least one non-empty matcher'),
        ("series", [("match[]", "up"), ("match[]", "foo{a}")],
         'invalid parameter "match[]": 1:6: parse error: unexpected "}" in label matching, '
         "expected label matching operator"),
        ("labels", [("match[]", 'up{a=~"("}')],
         "1:4: parse error: error parsing regexp: missing closing ): `^(?:()$`"),
        ("labels", [("limit", "x")], 'invalid parameter "limit": strconv.Atoi: parsing "x": invalid syntax'),
        ("labels", [("limit", "-1")], 'invalid parameter "limit": limit must be non-negative'),
        ("label/job/values", [("match[]", "{")], "1:2: parse error: unexpected end of input inside braces"),
        ("metadata", [("limit", "x")], "limit must be a number"),
        ("metadata", [("limit_per_metric", "1.5")], "limit_per_metric must be a number"),
        ("status/tsdb", [("limit", "0")], "limit must be a positive number"),
        ("query_exemplars", [("query", "up"), ("start", "10"), ("end", "5")],
         "end timestamp must not be before start timestamp"),
        ("rules", [("type", "foo")], 'invalid parameter "type": not supported value "foo"'),
    ],
)
async def test_errors_are_bad_data(base: str, path: str, params: list[tuple[str, str]], message: str) -> None:
    body = await call(f"{base}/{path}", params, status=400)
    assert body["status"] == "error" and body["errorType"] == "bad_data"
    assert set(body) == {"status", "errorType", "error"}
    assert body["error"] == message


async def test_metadata_merges_and_limits(base: str) -> None:
    data = ok(await call(f"{base}/metadata"))
    assert sorted(data) == ["temp", "up", "x"]
    assert sorted(map(tuple, (d.values() for d in data["up"]))) == [("counter", "Other up.", ""), ("gauge", "Up.", "")]
    assert data["temp"] == [{"type": "gauge", "help": "Temp.", "unit": "celsius"}]
    assert data["x"] == [{"type": "unknown", "help": "", "unit": ""}]
    assert ok(await call(f"{base}/metadata", [("metric", "temp")])) == {"temp": data["temp"]}
    assert len(ok(await call(f"{base}/metadata", [("limit", "1")]))) == 1
    assert ok(await call(f"{base}/metadata", [("limit", "0")])) == {}
    assert len(ok(await call(f"{base}/metadata", [("limit_per_metric", "1")]))["up"]) == 1


@pytest.mark.parametrize("post", [False, True])
async def test_query_exemplars_is_empty_success(base: str, post: bool) -> None:
    # Grafana's probe sends start/end in milliseconds.
    params = [("query", "test"), ("start", "1700000000000"), ("end", "1700000600000")]
    assert await call(f"{base}/query_exemplars", params, post=post) == {"status": "success", "data": []}


async def test_status_and_empty_rules(base: str) -> None:
    build = ok(await call(f"{base}/status/buildinfo"))
    assert set(build) == {"version", "revision", "branch", "buildUser", "buildDate", "goVersion"}
    rt = ok(await call(f"{base}/status/runtimeinfo"))
    assert set(rt) == {"startTime", "CWD", "reloadConfigSuccess", "lastConfigTime", "corruptionCount",
                      "goroutineCount", "GOMAXPROCS", "GOGC", "GODEBUG", "storageRetention"}
    assert rt["storageRetention"] == "15d" and rt["startTime"].endswith("Z")
    assert ok(await call(f"{base}/rules")) == {"groups": []}
    assert ok(await call(f"{base}/alerts")) == {"alerts": []}


async def test_status_tsdb(base: str) -> None:
    st = ok(await call(f"{base}/status/tsdb"))
    head = st["headStats"]
    assert head["numSeries"] == 9
    assert head["minTime"] == T0 and head["maxTime"] == T0 + 3_600_000
    # pairs: 3 names, 3 jobs, 3 instances, 2 rooms, 1 zone
    assert head["numLabelPairs"] == 12
    assert st["seriesCountByMetricName"] == [
        {"name": "up", "value": 6}, {"name": "temp", "value": 2}, {"name": "late", "value": 1}]
    assert st["labelValueCountByLabelName"][:2] == [{"name": "__name__", "value": 3}, {"name": "instance", "value": 3}]
    assert {"name": "room", "value": len("kitchen") + len("hall <&>")} in st["memoryInBytesByLabelName"]
    assert st["seriesCountByLabelValuePair"][:2] == [
        {"name": "__name__=up", "value": 6}, {"name": "job=a", "value": 5}]
    small = ok(await call(f"{base}/status/tsdb", [("limit", "1")]))
    assert all(len(small[k]) == 1 for k in small if k != "headStats")


async def test_targets_metadata_match_target_as_prometheus() -> None:
    """`match_target` is parsed like `match[]` (`ParseMetricSelector`), its errors wrapped in
    ``invalid parameter "match_target"``; an all-empty selector is allowed."""
    from vigilops import http_api

    app = web.Application()
    app[MANAGER_KEY] = _Manager([])  # type: ignore[assignment]
    app.router.add_get("/api/v1/targets/metadata", http_api.targets_metadata)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/api/v1/targets/metadata"
    try:
        for text, message in [
            ("foo{a}", '1:6: parse error: unexpected "}" in label matching, expected label matching operator'),
            ('{job=~"("}', "1:2: parse error: error parsing regexp: missing closing ): `^(?:()$`"),
            ("up + 1", "1:4: parse error: unexpected <op:+>"),
        ]:
            body = await call(url, [("match_target", text)], status=400)
            assert body == {"status": "error", "errorType": "bad_data",
                            "error": f'invalid parameter "match_target": {message}'}
        assert ok(await call(url, [("match_target", "{}")])) == []
        assert ok(await call(url, [("match_target", '{job=~".*"}')])) == []
    finally:
        await runner.cleanup()

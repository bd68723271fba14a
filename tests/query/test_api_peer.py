"""Side by side with real Prometheus (Debian 2.42): the same OpenMetrics file is loaded into
both (`promtool tsdb create-blocks-from openmetrics` / `vigilops tsdb import openmetrics`)
and the label, label-values and series endpoints must answer the same JSON."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from peerprocs import fetch, prometheus_and_vigilops

from vigilops.query.api.params import MAX_TIME_FORMATTED, MIN_TIME_FORMATTED
from vigilops.query.api.promjson import format_timestamp, format_value

pytestmark = pytest.mark.peer

STEP_S = 60
# Data ends a little before "now" so that defaults (and retention) hide nothing.
END_S = (int(time.time()) // 3600 - 2) * 3600
START_S = END_S - 4 * 3600


def _openmetrics() -> str:
    lines = ["# TYPE http_requests counter", "# HELP http_requests Requests.",
             "# TYPE temp gauge", "# TYPE churn gauge"]
    rooms = ["kitchen", 'quote"d', "back\\slash", "uni ☃ <&>", "new\\nline"]
    for t in range(START_S, END_S + 1, STEP_S):
        k = (t - START_S) // STEP_S
        for job in ("api", "db"):
            for inst in ("h1:9100", "h2:9100"):
                for code in ("200", "500"):
                    lines.append(
                        f'http_requests_total{{code="{code}",instance="{inst}",job="{job}"}} {k * 3 + int(code) // 100} {t}'
                    )
        for i, room in enumerate(rooms):
            esc = room.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'temp{{room="{esc}",floor="{i % 2}"}} {20 + i * 0.5} {t}')
        # `churn` series live for one hour each: range queries see different ones.
        lines.append(f'churn{{pod="p{k // 60}",ns="x"}} {k} {t}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with prometheus_and_vigilops(str(tmp_path_factory.mktemp("peer")), _openmetrics()) as bases:
        yield bases


def _call(base: str, path: str, params: list[tuple[str, str]], post: bool = False) -> tuple[int, Any]:
    body = urllib.parse.urlencode(params).encode()
    if post:
        req = urllib.request.Request(base + path, data=body, method="POST")
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    else:
        req = urllib.request.Request(base + path + ("?" + body.decode() if params else ""))
    status, _, answer = fetch(req)
    return status, json.loads(answer)


def _same(servers: tuple[str, str], path: str, params: list[tuple[str, str]], post: bool = False) -> Any:
    pbase, vbase = servers
    pstatus, pbody = _call(pbase, path, params, post)
    vstatus, vbody = _call(vbase, path, params, post)
    if path.endswith("/series") and pbody.get("status") == "success":
        key = lambda d: sorted(d.items())  # noqa: E731 - order of series is unspecified
        pbody["data"].sort(key=key)
        vbody["data"].sort(key=key)
    assert (vstatus, vbody) == (pstatus, pbody), (path, params)
    return pbody


def _t(s: int) -> str:
    return str(s)


MID = START_S + 2 * 3600

CASES: list[Any] = [
    ("/api/v1/labels", []),
    ("/api/v1/labels", [("match[]", "temp")]),
    ("/api/v1/labels", [("match[]", "temp"), ("match[]", '{__name__=~"http.*",code="500"}')]),
    ("/api/v1/labels", [("start", MIN_TIME_FORMATTED), ("end", MAX_TIME_FORMATTED)]),
    ("/api/v1/labels", [("match[]", "churn"), ("start", _t(MID)), ("end", _t(MID + 600))]),
    ("/api/v1/label/__name__/values", []),
    ("/api/v1/label/room/values", []),
    ("/api/v1/label/instance/values", [("match[]", '{code="500"}')]),
    ("/api/v1/label/pod/values", [("match[]", "churn"), ("start", _t(MID)), ("end", _t(MID + 3599))]),
    ("/api/v1/label/pod/values", [("match[]", "churn"), ("match[]", "temp"), ("start", _t(START_S - 7200)), ("end", _t(START_S + 60))]),
    ("/api/v1/label/nonexistent/values", []),
    ("/api/v1/series", [("match[]", "temp")]),
    ("/api/v1/series", [("match[]", "temp"), ("match[]", '{job="db"}'), ("match[]", 'http_requests_total{code!="200"}')]),
    ("/api/v1/series", [("match[]", "churn"), ("start", _t(MID)), ("end", _t(MID + 3600))]),
    ("/api/v1/series", [("match[]", "churn"), ("start", _t(START_S + 30)), ("end", _t(START_S + 90))]),
    ("/api/v1/series", [("match[]", '{__name__=~".+"}'), ("start", _t(END_S + 3600)), ("end", _t(END_S + 7200))]),
    ("/api/v1/series", [("match[]", "churn"), ("start", f"{START_S}.5"), ("end", _t(END_S))]),
    ("/api/v1/series", [("match[]", '{ns="x",pod=~"p[12]"}'), ("start", _t(START_S)), ("end", _t(END_S))]),
]


@pytest.mark.parametrize(("path", "params"), CASES)
@pytest.mark.parametrize("post", [False, True])
def test_same_answers_as_prometheus(servers: tuple[str, str], path: str, params: list[tuple[str, str]], post: bool) -> None:
    if post and "/label/" in path:
        post = False  # GET only, as in Prometheus
    body = _same(servers, path, params, post)
    assert body["status"] == "success"


ERRORS: list[tuple[str, list[tuple[str, str]]]] = [
    ("/api/v1/series", []),
    ("/api/v1/series", [("match[]", "temp"), ("start", "x")]),
    ("/api/v1/labels", [("end", "2015-02-30T00:00:00Z")]),
    ("/api/v1/labels", [("match[]", '{room=~".*"}')]),
    ("/api/v1/label/0x/values", []),
    ("/api/v1/metadata", [("limit", "x")]),
    ("/api/v1/query_exemplars", [("query", "temp"), ("start", "10"), ("end", "5")]),
    ("/api/v1/rules", [("type", "foo")]),
]


@pytest.mark.parametrize(("path", "params"), ERRORS, ids=[f"{p} {q}" for p, q in ERRORS])
def test_same_errors_as_prometheus(servers: tuple[str, str], path: str, params: list[tuple[str, str]]) -> None:
    body = _same(servers, path, params)
    assert body["status"] == "error"


def test_empty_and_static_endpoints_as_prometheus(servers: tuple[str, str]) -> None:
    _same(servers, "/api/v1/metadata", [])  # no targets: {}
    _same(servers, "/api/v1/query_exemplars", [("query", "temp"), ("start", _t(START_S)), ("end", _t(END_S))])
    _same(servers, "/api/v1/rules", [])
    _same(servers, "/api/v1/alerts", [])
    pbase, vbase = servers
    for path in ("/api/v1/status/buildinfo", "/api/v1/status/runtimeinfo", "/api/v1/status/tsdb"):
        _, p = _call(pbase, path, [])
        _, v = _call(vbase, path, [])
        assert set(v["data"]) == set(p["data"]), path
        if path.endswith("tsdb"):
            assert set(v["data"]["headStats"]) == set(p["data"]["headStats"])


VALUES = ["0", "-0", "1", "100", "0.1", "1e15", "1e16", "1e20", "9.999999999999999e20", "1e21", "1.5e300",
          "1e-4", "2.5e-05", "1e-6", "9.99e-7", "1e-7", "1.23e-18", "5e-324", "NaN", "Inf", "-Inf"]


def test_go_float_and_timestamp_format_as_prometheus(servers: tuple[str, str]) -> None:
    """Prometheus's own bytes for `vector(v)` at a fractional time carry the value and
    timestamp formats of `jsonutil` that `promjson` reproduces."""
    pbase, _ = servers
    for v in VALUES:
        for t_ms in (1500, 1010, 1700000000123, 2000):
            q = urllib.parse.urlencode({"query": f"vector({v})", "time": format_timestamp(t_ms)})
            with urllib.request.urlopen(f"{pbase}/api/v1/query?{q}", timeout=10) as resp:
                raw = resp.read().decode()
            expected = f'"value":[{format_timestamp(t_ms)},"{format_value(float(v))}"]'
            assert expected in raw, (v, t_ms, raw)

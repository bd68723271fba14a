"""The engine side by side with real Prometheus 2.42 (Debian): the same samples are loaded
into both (`promtool tsdb create-blocks-from openmetrics` / our appender), and instant and
range queries must give the same series, timestamps, values (as Prometheus prints them)
and errors. The queries exercise the engine itself — selectors, ``offset``/``@``,
subqueries, operators, matching errors, aggregations with NaN/±Inf/ties — using only a
few functions, stubbed here, so that this file tests the evaluator, not `query/funcs`."""

from __future__ import annotations

import json
import math
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from peerprocs import binary, fetch, free_port, process, wait_for

from vigilops.query.engine import Engine
from vigilops.query.gomath import go_format_f
from vigilops.query.parser import ParseError
from vigilops.query.values import (
    FunctionContext,
    InstantVector,
    Matrix,
    QueryError,
    Scalar,
    ScalarResult,
    StringResult,
    Value,
    Vector,
    Windows,
    drop_metric_name,
)
from vigilops.tsdb.db import DB
from vigilops.tsdb.model import Labels

pytestmark = pytest.mark.peer

B = 1_000_000  # data start, seconds
T = B + 300  # default instant query time


def _samples() -> list[tuple[dict[str, str], int, float]]:
    out: list[tuple[dict[str, str], int, float]] = []
    for k in range(241):  # one hour every 15 s
        t = B + k * 15
        out.append(({"__name__": "foo", "a": "1", "b": "1"}, t, k))
        if k % 2 == 0:
            out.append(({"__name__": "foo", "a": "1", "b": "2"}, t, k * 2))
        if k < 100:
            out.append(({"__name__": "foo", "a": "2", "b": "1"}, t, 100 - k))
        out.append(({"__name__": "bar", "a": "1"}, t, k % 7))
        if k >= 50:
            out.append(({"__name__": "bar", "a": "2"}, t, (k % 5) - 2))
        if k % 40 == 0:
            out.append(({"__name__": "baz", "x": str(k // 40)}, t, k))
        out.append(({"__name__": "nv", "i": "1"}, t, math.nan))
        out.append(({"__name__": "nv", "i": "2"}, t, k % 3))
        out.append(({"__name__": "nv", "i": "3"}, t, math.inf if k % 2 else 1))
        out.append(({"__name__": "nv", "i": "4"}, t, -math.inf if k % 3 else 2))
        out.append(({"__name__": "nv", "i": "5"}, t, math.nan if k % 4 else 3))
        for i in range(1, 6):
            out.append(({"__name__": "tie", "i": str(i)}, t, 5 if i % 2 else (7 if k % 2 else 5)))
        out.append(({"__name__": "big", "i": "1"}, t, 1e300 * (k % 4)))
        out.append(({"__name__": "big", "i": "2"}, t, 0.1 + k * 1e-3))
        if k < 20:
            out.append(({"__name__": "dup_a", "x": "1"}, t, k))
        if k >= 60:
            out.append(({"__name__": "dup_b", "x": "1"}, t, k))
    return out


def _openmetrics(samples: list[tuple[dict[str, str], int, float]]) -> str:
    def fmt(v: float) -> str:
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "+Inf" if v > 0 else "-Inf"
        return repr(float(v))

    by_name: dict[str, list[str]] = {}
    for labels, t, v in samples:
        rest = ",".join(f'{k}="{x}"' for k, x in labels.items() if k != "__name__")
        by_name.setdefault(labels["__name__"], []).append(f"{labels['__name__']}{{{rest}}} {fmt(v)} {t}")
    lines = [f"# TYPE {name} gauge" for name in sorted(by_name)]
    for name in sorted(by_name):
        lines.extend(by_name[name])
    return "\n".join(lines + ["# EOF"]) + "\n"


# ---- stub functions -------------------------------------------------------------------------
def _over_time(reduce: Any, keep_name: bool = False) -> Any:
    def fn(args: list[Value], ctx: FunctionContext) -> Value:
        w = args[0]
        assert isinstance(w, Windows)
        out = np.zeros(w.lo.shape)
        for i in range(len(w)):
            for j in range(w.lo.shape[1]):
                if w.hi[i, j] > w.lo[i, j]:
                    out[i, j] = reduce(w.vs[w.lo[i, j] : w.hi[i, j]])
        labels = list(w.labels) if keep_name else drop_metric_name(w.labels)
        return Vector(labels, out, w.counts > 0)

    return fn


def _timestamp(args: list[Value], ctx: FunctionContext) -> Value:
    v = args[0]
    assert isinstance(v, Vector)
    ts = v.sample_ts if v.sample_ts is not None else np.broadcast_to(ctx.times, v.values.shape)
    return Vector(drop_metric_name(v.labels), ts / 1000.0, v.present)


def _scalar(args: list[Value], ctx: FunctionContext) -> Value:
    v = args[0]
    assert isinstance(v, Vector)
    one = v.present.sum(axis=0) == 1
    vals = np.where(v.present, v.values, 0.0).sum(axis=0) if len(v) else np.zeros(len(ctx.times))
    return Scalar(np.where(one, vals, np.nan))


STUBS = {
    "count_over_time": _over_time(len),
    "max_over_time": _over_time(np.max),
    "last_over_time": _over_time(lambda a: a[-1], keep_name=True),
    "timestamp": _timestamp,
    "time": lambda args, ctx: Scalar(ctx.times / 1000.0),
    "scalar": _scalar,
}


# ---- the two servers --------------------------------------------------------------------------
@dataclass
class Peers:
    prometheus: str
    engine: Engine


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    tmp = tmp_path_factory.mktemp("engine_peer")
    samples = _samples()
    (tmp / "data.om").write_text(_openmetrics(samples))
    (tmp / "empty.yml").write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    prom_dir = tmp / "prom"
    subprocess.run(
        [binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(tmp / "data.om"), str(prom_dir)],
        check=True, capture_output=True,
    )
    (prom_dir / "wal").mkdir(exist_ok=True)
    db = DB.open(str(tmp / "vigil"))
    by_t: dict[int, list[tuple[Labels, float]]] = {}
    for labels, t, v in samples:
        by_t.setdefault(t, []).append((Labels(labels), v))
    for t in sorted(by_t):
        app = db.appender()
        refs = app.refs([ls for ls, _ in by_t[t]])
        app.append(refs, t * 1000, np.array([v for _, v in by_t[t]], dtype=np.float64))
        app.commit()
    port = free_port()
    args = [
        binary("prometheus"), f"--storage.tsdb.path={prom_dir}", f"--config.file={tmp / 'empty.yml'}",
        f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=100000d",
    ]
    base = f"http://127.0.0.1:{port}/api/v1"
    with process(args, str(tmp / "prometheus.log")) as proc:
        wait_for(lambda: _prom(base, "query", query="count(foo)", time=str(T))["data"]["result"],
                 "Prometheus with the test data", proc=proc)
        yield Peers(base, Engine(db, functions=STUBS))
    db.close()


def _prom(base: str, path: str, **params: str) -> Any:
    data = urllib.parse.urlencode(params).encode()
    return json.loads(fetch(f"{base}/{path}", data)[2])


def _ms(t: float) -> int:
    return round(t * 1000)


def _from_prometheus(body: Any, ordered: bool) -> Any:
    if body["status"] == "error":
        return ("error", body["errorType"], body["error"])
    data = body["data"]
    kind, result = data["resultType"], data["result"]
    if kind in ("scalar", "string"):
        return (kind, _ms(result[0]), result[1])
    if kind == "vector":
        rows = [(json.dumps(s["metric"], sort_keys=True), _ms(s["value"][0]), s["value"][1]) for s in result]
    else:
        rows = [(json.dumps(s["metric"], sort_keys=True), [(_ms(t), v) for t, v in s["values"]]) for s in result]
    return (kind, rows if ordered else sorted(rows))


def _from_engine(run: Any, ordered: bool) -> Any:
    try:
        value = run().value
    except ParseError as exc:
        return ("error", "bad_data", str(exc))
    except QueryError as exc:
        return ("error", exc.kind, str(exc))
    if isinstance(value, ScalarResult):
        return ("scalar", value.t, go_format_f(value.value))
    if isinstance(value, StringResult):
        return ("string", value.t, value.value)
    if isinstance(value, InstantVector):
        rows: list[Any] = [
            (json.dumps(ls.to_dict(), sort_keys=True), value.t, go_format_f(float(v)))
            for ls, v in zip(value.labels, value.values)
        ]
        return ("vector", rows if ordered else sorted(rows))
    assert isinstance(value, Matrix)
    rows = [
        (json.dumps(ls.to_dict(), sort_keys=True), [(int(t), go_format_f(float(v))) for t, v in zip(ts, vs)])
        for ls, ts, vs in zip(value.labels, value.timestamps, value.values)
    ]
    return ("matrix", rows if ordered else sorted(rows))


INSTANT = [
    # selectors, offset, @, range selectors and subqueries
    "foo", "foo offset 1m", "foo offset -1m", "foo @ 1000100", "foo @ 1000100 offset 1m",
    "foo[1m]", "foo[1m] offset 7s", "foo[1m:30s]", "foo[1m:]", "foo[2m:1m] offset 20s",
    "foo[5m:1m] @ 1000123", "(foo + 1)[2m:35s]", "sum(foo)[3m:45s]", "baz", "baz[20m]",
    "max_over_time(max_over_time(foo[2m:30s])[5m:1m])", "count_over_time(baz[20m])",
    "timestamp(foo)", "timestamp(foo offset 1m)", "timestamp((foo))", "timestamp(foo @ 1000107)",
    "timestamp(foo + 0)", "timestamp(foo and bar)", "timestamp(-foo)",
    "last_over_time({__name__=~\"foo|bar\"}[1m])", "foo @ start()", "foo @ end()",
    # operators and matching
    "-foo", "foo atan2 2", "2 atan2 foo", "1 + 2", "2 > bool 1", '"str"', "foo > 20", "30 < foo",
    "foo >= bool 20", "foo % 7", "foo ^ 0.5", "foo / 0", "(foo - 20) / 0", "nv > 1", "nv != nv",
    "nv != bool nv", "nv % 2", "2 ^ nv", "nv atan2 nv", "big * 10",
    "foo / on(a) group_left bar", "bar / on(a) foo", "foo / on(a) bar", "foo{a=\"1\"} > on(a) (bar + 30)",
    "foo{a=\"1\"} > bool on(a) (bar + 30)", "foo + on(a) group_left(b) bar", "bar + on(a) group_left(b) foo",
    "foo + ignoring(b) group_left bar", "bar + ignoring(zz) group_right foo", "nonexistent / on(a) foo",
    "foo > on(a) group_left bar", "bar > on(a) group_right foo", "{__name__=~\"foo|bar\"} * 2",
    "foo and on(a) bar", "foo or bar", "bar unless on(a) foo", "foo unless bar", "bar or on(a) foo",
    "dup_a or dup_b", "-{__name__=~\"dup_.\"}",
    # aggregations
    "sum(foo)", "avg by (a) (foo)", "count without (b) (foo)", "group by (a) (foo)", "min(nv)", "max(nv)",
    "sum(nv)", "avg(nv)", "avg(big)", "sum(big)", "stddev(nv)", "stdvar(big)", "stddev by (a) (foo)",
    "quantile(0.5, nv)", "quantile(0, nv)", "quantile(1, nv)", "quantile(0.1, nv)", "quantile(0.9, big)",
    "quantile(NaN, nv)", "quantile(2, nv)", "quantile by (a) (0.3, foo)",
    "topk(0, nv)", "topk(-1, nv)", "topk(NaN, nv)", "topk(1e20, nv)", "topk(2.9, nv)",
    'count_values("v", nv)', 'count_values("v", big)', 'count_values("__bad-", nv)',
    'count_values by (i) ("i", nv)', 'count_values without (i) ("v", tie)', 'count_values without (a) ("a", foo)',
    "sum by (__name__) ({__name__=~\"foo|bar\"})", "avg(tie)",
]
INSTANT_ORDERED = [
    "topk(2, nv)", "bottomk(2, nv)", "topk(3, tie)", "bottomk(3, tie)", "topk(1, tie)", "topk(10, nv)",
    "bottomk(10, nv)", "topk by (a) (1, foo)", "topk(2, foo)",
]
RANGE = [
    ("foo", None), ("foo offset 5m", None), ("foo @ 1000500", None), ("foo @ start()", None),
    ("foo @ end()", None), ("foo offset -5m", None), ("sum(foo)", None), ("avg(foo) by (a)", None),
    ("foo / on(a) group_left bar", None), ("bar / on(a) foo", None), ("foo + on(a) group_left(b) bar", None),
    ("topk(1, foo)", None), ("bottomk(1, nv)", None), ("topk(2, tie)", None), ('count_values("v", bar)', None),
    ("quantile(0.25, foo)", None), ("stddev(big)", None), ("foo or bar", None), ("foo and on(a) bar", None),
    ("bar unless on(a) foo", None), ("-foo", None), ("1 + 2", None), ("time()", None),
    ("{__name__=~\"foo|bar\"} * 2", None), ("-{__name__=~\"foo|bar\"}", None), ("dup_a or dup_b", None),
    ("-last_over_time({__name__=~\"dup_.\"}[1m])", None), ("count_over_time({__name__=~\"dup_.\"}[1m])", None),
    ("{__name__=~\"dup_.\"} * 1", None), ("topk(scalar(bar), foo)", None), ("quantile(scalar(bar) / 10, foo)", None),
    ("topk(scalar(nv{i=\"1\"}), foo)", None), ("max_over_time(foo[5m:1m])", None), ("max_over_time(foo[5m:])", None),
    ("max_over_time(foo[5m:1m] @ 1000500)", None), ("max_over_time(foo[5m:1m] offset 3m)", None),
    ("max_over_time(max_over_time(foo[2m:30s])[5m:1m])", None), ("timestamp(foo @ 1000107)", None),
    ("foo", (1000000, 1003700, 17)), ("max_over_time(foo[5m:20s])", (1000000, 1003700, 17)),
    ("max_over_time(foo[5m:20s])", (1000007, 1003700, 300)), ("foo", (1000000, 1000000, 60)),
    ("foo[5m]", None), ('"x"', None), ("foo", (1000000, 1011000, 1)), ("foo", (1000000, 1011001, 1)),
]


@pytest.mark.parametrize("query", INSTANT + INSTANT_ORDERED)
def test_instant_query_matches_prometheus(peers: Peers, query: str) -> None:
    ordered = query in INSTANT_ORDERED
    want = _from_prometheus(_prom(peers.prometheus, "query", query=query, time=str(T)), ordered)
    got = _from_engine(lambda: peers.engine.instant_query(query, T * 1000), ordered)
    assert got == want


@pytest.mark.parametrize(("query", "grid"), RANGE)
def test_range_query_matches_prometheus(peers: Peers, query: str, grid: tuple[int, int, int] | None) -> None:
    start, end, step = grid or (B, B + 3700, 60)
    body = _prom(peers.prometheus, "query_range", query=query, start=str(start), end=str(end), step=str(step))
    want = _from_prometheus(body, False)
    got = _from_engine(lambda: peers.engine.range_query(query, start * 1000, end * 1000, step * 1000), False)
    assert got == want


@pytest.mark.parametrize("t", [B - 300, B - 1, B, B + 299.999, B + 3600 + 300, B + 3600 + 301])
def test_lookback_edges_match_prometheus(peers: Peers, t: float) -> None:
    body = _prom(peers.prometheus, "query", query="foo", time=str(t))
    got = _from_engine(lambda: peers.engine.instant_query("foo", _ms(t)), False)
    assert got == _from_prometheus(body, False)

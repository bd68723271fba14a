"""`/federate`: the text it writes (families, label order, external labels, escapes, Go number
formats), which sample it picks (latest in the lookback window, staleness markers and old
series left out, series matched twice written once), its errors; and (peer) the same
bytes as Prometheus 2.42's `/federate` over the same data, and a real Prometheus 2.42
federating from a VigilOps server ending up with the same series and values."""

from __future__ import annotations

import json
import math
import socket
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from peerprocs import binary, fetch, free_port, get, process, prometheus_and_vigilops, wait_for

from vigilops.compat import federate
from vigilops.http_api import MANAGER_KEY
from vigilops.query.api import keys
from vigilops.query.engine import Engine, EngineOptions
from vigilops.tsdb.db import DB, DBOptions
from vigilops.tsdb.model import STALE_NAN, Labels


def test_exposition_text() -> None:
    samples = [
        (Labels({"__name__": "zeta", "x": 'q"uo\\te\nnl'}), 1000, math.nan),
        (Labels({"__name__": "up", "job": "b", "region": "us"}), 2000, 1.0),
        (Labels({"__name__": "up", "instance": "h1", "job": "a"}), 3000, -0.0),
        (Labels({"__name__": "zeta", "x": "big"}), 4500, 123456789012.0),
        (Labels({"__name__": "zeta", "x": "inf"}), 5000, math.inf),
        (Labels({"__name__": "zeta", "x": "small"}), 5000, 1e-7),
        (Labels({"a": "nameless"}), 5000, 1.0),
        (Labels({"__name__": "a", "a": "y", "a0": "x"}), 6000, 0.1),
    ]
    text = federate.exposition(sorted(samples), {"region": "eu"}).decode()
    assert text == (
        "# TYPE a untyped\n"
        'a{a="y",a0="x",instance="",region="eu"} 0.1 6000\n'
        "# TYPE up untyped\n"
        'up{instance="h1",job="a",region="eu"} 0 3000\n'
        'up{job="b",region="us",instance=""} 1 2000\n'
        "# TYPE zeta untyped\n"
        'zeta{x="big",instance="",region="eu"} 1.23456789012e+11 4500\n'
        'zeta{x="inf",instance="",region="eu"} +Inf 5000\n'
        'zeta{x="q\\"uo\\\\te\\nnl",instance="",region="eu"} NaN 1000\n'
        'zeta{x="small",instance="",region="eu"} 1e-07 5000\n'
    )
    # An external `instance` replaces the empty one.
    one = [(Labels({"__name__": "m"}), 1, 2.0)]
    assert federate.exposition(one, {"instance": "fed"}) == b'# TYPE m untyped\nm{instance="fed"} 2 1\n'


# ---- the endpoint over a real database ---------------------------------------------------------
@dataclass
class _Global:
    external_labels: dict[str, str] = field(default_factory=dict)


@dataclass
class _Config:
    global_config: _Global


@dataclass
class _Manager:
    config: _Config


NOW = int(time.time() * 1000)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[DB]:
    d = DB.open(str(tmp_path / "data"), DBOptions(retention_ms=0))
    now = NOW
    app = d.appender()
    ls = [
        Labels({"__name__": "fed_a", "job": "x"}),
        Labels({"__name__": "fed_a", "job": "y", "region": "us"}),
        Labels({"__name__": "fed_stale", "job": "x"}),
        Labels({"__name__": "fed_old", "job": "x"}),
        Labels({"job": "nameless"}),
    ]
    refs = app.refs(ls)
    app.append(refs[3:4], now - 400_000, np.array([1.0]))
    app.append(refs[:3], now - 120_000, np.array([1.0, 2.0, 3.0]))
    app.append(refs[:3], now - 60_000, np.array([4.0, 5.0, 6.0]))
    app.append(refs[2:3], now - 30_000, np.array([STALE_NAN]))
    app.append(refs[4:5], now - 30_000, np.array([7.0]))
    app.commit()
    yield d
    d.close()


@pytest.fixture
async def base(db: DB) -> AsyncIterator[str]:
    app = web.Application()
    app[keys.QUERYABLE_KEY] = db
    app[keys.ENGINE_KEY] = Engine(db, EngineOptions(lookback_delta_ms=300_000))
    app[MANAGER_KEY] = _Manager(_Config(_Global({"region": "eu"})))  # type: ignore[assignment]
    federate.add_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/federate"
    finally:
        await runner.cleanup()


async def _get(url: str, params: list[tuple[str, str]]) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as s:
        async with s.get(url, params=params) as resp:
            return resp.status, resp.headers["Content-Type"], await resp.text()


async def test_latest_sample_per_series_once(base: str) -> None:
    t = NOW - 60_000
    status, ctype, text = await _get(base, [
        ("match[]", '{__name__=~"fed_.*"}'), ("match[]", 'fed_a{job="x"}'), ("match[]", '{job="nameless"}'),
    ])
    assert (status, ctype) == (200, "text/plain; version=0.0.4; charset=utf-8")
    assert text == (
        "# TYPE fed_a untyped\n"
        f'fed_a{{job="x",instance="",region="eu"}} 4 {t}\n'
        f'fed_a{{job="y",region="us",instance=""}} 5 {t}\n'
    )


async def test_no_match_is_empty_and_bad_match_is_400(base: str) -> None:
    assert await _get(base, []) == (200, "text/plain; version=0.0.4; charset=utf-8", "")
    status, ctype, text = await _get(base, [("match[]", "fed_a"), ("match[]", "fed_a{")])
    assert (status, ctype) == (400, "text/plain; charset=utf-8")
    assert text == "1:7: parse error: unexpected end of input inside braces\n"
    # Unlike /series, no non-empty matcher is required: every series here has a job.
    assert (await _get(base, [("match[]", '{job=""}')]))[2] == ""


# ---- side by side with Prometheus 2.42 ------------------------------------------------------
CONFIG = "global:\n  scrape_interval: 1h\n  external_labels:\n    region: eu\nscrape_configs: []\n"


def _recent_openmetrics(now_s: int) -> str:
    t1, t2, old = now_s - 90, now_s - 30, now_s - 400
    return "\n".join([
        "# TYPE fed_up gauge",
        f'fed_up{{job="a",instance="h1"}} 1 {t1}',
        f'fed_up{{job="a",instance="h1"}} 0 {t2}',
        f'fed_up{{job="b",region="us"}} 1 {t2}',
        f'fed_up{{job="c"}} 1 {t2}.250',
        "# TYPE fed_values gauge",
        f'fed_values{{x="q\\"uo\\\\te\\nnl"}} NaN {t2}',
        f'fed_values{{x="inf"}} +Inf {t2}',
        f'fed_values{{x="ninf"}} -Inf {t2}',
        f'fed_values{{x="big"}} 1.5e300 {t2}',
        f'fed_values{{x="small"}} 1e-7 {t2}',
        f'fed_values{{x="int"}} 123456789012 {t2}',
        f'fed_values{{x="zero"}} -0 {t2}',
        f'fed_values{{x="frac",a0="1",a="2"}} 0.1 {t2}',
        "# TYPE fed_old gauge",
        f'fed_old{{a="b"}} 1 {old}',
        "# TYPE other counter",
        f'other_total{{instance="",a="1"}} 5 {t2}',
        "# EOF",
    ]) + "\n"


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    tmp = tmp_path_factory.mktemp("federate")
    with prometheus_and_vigilops(str(tmp), _recent_openmetrics(int(time.time())), CONFIG) as (pbase, vbase):
        yield pbase, vbase, tmp


MATCHES = [
    ['{__name__=~".+"}'],
    ["fed_up", '{__name__=~"fed_.*"}'],
    ['fed_values{x=~"i.*"}', 'other_total', "fed_old"],
    ['{a=""}'],
    ["fed_up{", "fed_up"],
    ["fed_up offset 5m"],
    [],
]


def _raw(url: str) -> tuple[int, str, bytes]:
    status, headers, body = fetch(url)
    return status, headers["Content-Type"], body


@pytest.mark.peer
@pytest.mark.parametrize("matches", MATCHES)
def test_same_bytes_as_prometheus(peers: tuple[str, str, Path], matches: list[str]) -> None:
    pbase, vbase, _ = peers
    query = urllib.parse.urlencode([("match[]", m) for m in matches])
    assert _raw(f"{vbase}/federate?{query}") == _raw(f"{pbase}/federate?{query}")


def _query(base: str, promql: str) -> list[tuple[dict[str, str], list[Any]]]:
    body = json.loads(get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})))
    return sorted(((r["metric"], r["value"]) for r in body["data"]["result"]),
                  key=lambda mv: sorted(mv[0].items()))


@pytest.mark.peer
def test_prometheus_federates_from_vigilops(peers: tuple[str, str, Path]) -> None:
    """A second Prometheus scrapes VigilOps's /federate (honor_labels) and holds the same
    series, with the external labels added and the job of the federation scrape where the
    series had none, at the same timestamps and values."""
    _, vbase, tmp = peers
    port = int(vbase.rsplit(":", 1)[1])
    config = tmp / "federator.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n"
        "  - job_name: federate\n    honor_labels: true\n    metrics_path: /federate\n"
        "    params:\n      'match[]': ['{__name__=~\"fed_.*\"}', 'other_total']\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    )
    fport = free_port()
    fbase = f"http://127.0.0.1:{fport}"
    with process([
        binary("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={tmp / 'federator'}",
        f"--web.listen-address=127.0.0.1:{fport}",
    ], str(tmp / "federator.log")) as proc:
        wait_for(lambda: _query(fbase, 'up{job="federate"} == 1'), "a successful federation scrape", proc=proc)
        selector = '{__name__=~"fed_.*|other_total"}'
        values = _query(fbase, selector)
        stamps = _query(fbase, f"timestamp({selector})")
    expected = []
    for metric, value in _query(vbase, selector):
        m = {"region": "eu", "job": "federate", **metric}
        # The text format has one zero: expfmt writes -0 as 0.
        expected.append((m, "0" if value[1] == "-0" else value[1]))
    assert [(m, v[1]) for m, v in values] == sorted(expected, key=lambda mv: sorted(mv[0].items()))
    assert len(values) == 12
    # The federated samples keep the timestamps of the originals (milliseconds included).
    times = lambda rows: sorted(float(v[1]) for _, v in rows)  # noqa: E731
    assert times(stamps) == times(_query(vbase, f"timestamp({selector})"))

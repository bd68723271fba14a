"""The scrape loop against a real HTTP server on loopback, storing into a real database."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest
from aiohttp import web
from aioserve import served
from prometheus_client import CollectorRegistry

from vigilops.scrape.config import parse_config
from vigilops.scrape.http_client import ScrapeClients
from vigilops.scrape.loop import ScrapeLoop
from vigilops.scrape.metrics import ScrapeMetrics
from vigilops.scrape.targets import build_targets
from vigilops.scrape.discovery import TargetGroup
from vigilops.tsdb.db import DB
from vigilops.tsdb.model import MAX_TIME, MIN_TIME, Labels, Matcher, MatchType, is_stale

T0 = 1_795_305_600_000
STEP = 15_000


class Exporter:
    """A target whose payload, status and content type the test controls."""

    def __init__(self) -> None:
        self.body = "# TYPE a counter\na_total 1\n"
        self.status = 200
        self.content_type = "text/plain; version=0.0.4"
        self.requests: list[dict[str, str]] = []
        #: Seconds to block the whole event loop on each request (a CPU-bound stall).
        self.stall_s = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(dict(request.headers))
        if self.stall_s:
            time.sleep(self.stall_s)
        return web.Response(status=self.status, body=self.body.encode(), headers={"Content-Type": self.content_type})


@pytest.fixture
async def exporter() -> AsyncIterator[tuple[Exporter, str]]:
    exp = Exporter()
    app = web.Application()
    app.router.add_get("/metrics", exp.handle)
    async with served(app) as port:
        yield exp, f"127.0.0.1:{port}"


@pytest.fixture
def db(tmp_path) -> Iterator[DB]:  # type: ignore[no-untyped-def]
    d = DB.open(str(tmp_path / "data"))
    yield d
    d.close()


def make_loop(db: DB, address: str, extra: str = "") -> ScrapeLoop:
    cfg = parse_config(
        f"""
scrape_configs:
  - job_name: test
    scrape_interval: 15s
    static_configs:
      - targets: ["{address}"]
        labels: {{env: prod}}
{extra}
"""
    ).scrape_configs[0]
    targets, _ = build_targets([TargetGroup("0", ({"__address__": address},), {"env": "prod"})], cfg)
    return ScrapeLoop(targets[0], cfg, db, ScrapeClients(cfg), ScrapeMetrics(None))


def series(db: DB, name: str) -> dict[Labels, tuple[list[int], np.ndarray]]:
    with db.querier(MIN_TIME, MAX_TIME) as q:
        return {
            s.labels: (s.timestamps.tolist(), s.values.copy())
            for s in q.select([Matcher(MatchType.EQUAL, "__name__", name)])
        }


def only(db: DB, name: str) -> tuple[list[int], np.ndarray]:
    got = series(db, name)
    assert len(got) == 1, got
    return next(iter(got.values()))


async def test_scrape_stores_samples_with_target_labels_and_report_series(exporter, db: DB) -> None:  # type: ignore[no-untyped-def]
    exp, address = exporter
    exp.body = '# TYPE http_requests counter\nhttp_requests_total{code="200"} 7\nhttp_requests_total{code="500"} 1\nno_type 3.5\n'
    loop = make_loop(db, address)
    try:
        await loop.scrape_and_report(T0)
    finally:
        await loop.client.close()
    got = series(db, "http_requests_total")
    assert set(got) == {
        Labels({"__name__": "http_requests_total", "code": c, "instance": address, "job": "test", "env": "prod"})
        for c in ("200", "500")
    }
    assert only(db, "no_type")[1].tolist() == [3.5]
    expect = {"up": 1.0, "scrape_samples_scraped": 3.0, "scrape_samples_post_metric_relabeling": 3.0, "scrape_series_added": 3.0}
    for name, value in expect.items():
        ts, vs = only(db, name)
        assert ts == [T0] and vs.tolist() == [value], name
    assert only(db, "scrape_duration_seconds")[1][0] > 0
    assert loop.status.health == "up" and loop.status.last_error == ""
    headers = exp.requests[0]
    assert "application/openmetrics-text" in headers["Accept"]
    assert headers["X-Prometheus-Scrape-Timeout-Seconds"] == "10"


async def test_vanished_series_and_failed_scrapes_get_stale_markers(exporter, db: DB) -> None:  # type: ignore[no-untyped-def]
    exp, address = exporter
    loop = make_loop(db, address)
    try:
        exp.body = "a 1\nb 2\n"
        await loop.scrape_and_report(T0)
        exp.body = "a 1\n"  # b vanished
        await loop.scrape_and_report(T0 + STEP)
        assert is_stale(only(db, "b")[1][-1])
        assert only(db, "b")[0] == [T0, T0 + STEP]
        exp.status = 500  # the target fails: a gets a stale marker, up = 0
        await loop.scrape_and_report(T0 + 2 * STEP)
        ts, vs = only(db, "a")
        assert ts == [T0, T0 + STEP, T0 + 2 * STEP] and is_stale(vs[-1])
        assert only(db, "up")[1].tolist() == [1.0, 1.0, 0.0]
        assert loop.status.health == "down"
        assert loop.status.last_error == "server returned HTTP status 500 Internal Server Error"
        exp.status = 200
        exp.body = "a 2\n"
        await loop.scrape_and_report(T0 + 3 * STEP)
        assert only(db, "a")[1][-1] == 2.0
        assert len(only(db, "b")[0]) == 2  # no second stale marker for b
    finally:
        await loop.client.close()


async def test_malformed_payload_fails_the_whole_scrape(exporter, db: DB) -> None:  # type: ignore[no-untyped-def]
    exp, address = exporter
    exp.body = "good 1\nbad{ 2\n"
    loop = make_loop(db, address)
    try:
        await loop.scrape_and_report(T0)
    finally:
        await loop.client.close()
    assert series(db, "good") == {}
    assert only(db, "up")[1].tolist() == [0.0]
    assert "line 2" in loop.status.last_error


async def test_openmetrics_payload_with_explicit_timestamps(exporter, db: DB) -> None:  # type: ignore[no-untyped-def]
    exp, address = exporter
    exp.content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    exp.body = "# TYPE c counter\nc_total 5 1795305590.5\nd 1\n# EOF\n"
    loop = make_loop(db, address)
    try:
        await loop.scrape_and_report(T0)
    finally:
        await loop.client.close()
    assert only(db, "c_total")[0] == [T0 - 9_500]
    assert only(db, "d")[0] == [T0]


async def test_sample_limit_fails_the_scrape_atomically(exporter, db: DB) -> None:  # type: ignore[no-untyped-def]
    exp, address = exporter
    exp.body = "a 1\nb 1\nc 1\n"
    loop = make_loop(db, address, "    sample_limit: 2")
    try:
        await loop.scrape_and_report(T0)
    finally:
        await loop.client.close()
    assert series(db, "a") == {}
    assert loop.status.last_error == "sample limit exceeded"
    assert only(db, "up")[1].tolist() == [0.0]


async def test_metric_relabeling_and_label_conflicts(exporter, db: DB) -> None:  # type: ignore[no-untyped-def]
    exp, address = exporter
    exp.body = 'keep_me{job="theirs",env="x"} 1\ndrop_me 2\n'
    extra = """    metric_relabel_configs:
      - source_labels: [__name__]
        regex: drop_.*
        action: drop"""
    loop = make_loop(db, address, extra)
    try:
        await loop.scrape_and_report(T0)
        assert series(db, "drop_me") == {}
        (labels,) = series(db, "keep_me")
        assert labels.get("job") == "test" and labels.get("exported_job") == "theirs"
        assert labels.get("env") == "prod" and labels.get("exported_env") == "x"
        assert only(db, "scrape_samples_post_metric_relabeling")[1].tolist() == [1.0]
        # honor_labels keeps the exposed values
        loop.cfg = dataclasses.replace(loop.cfg, honor_labels=True)
        loop.cache.forget()
        exp.body = 'kept{job="theirs"} 1\n'
        await loop.scrape_and_report(T0 + STEP)
        (labels,) = series(db, "kept")
        assert labels.get("job") == "theirs" and labels.get("exported_job") == ""
    finally:
        await loop.client.close()


async def test_steady_state_reuses_refs(exporter, db: DB) -> None:  # type: ignore[no-untyped-def]
    exp, address = exporter
    exp.body = "".join(f'm{{i="{i}"}} {i}\n' for i in range(100))
    loop = make_loop(db, address)
    try:
        for k in range(5):
            await loop.scrape_and_report(T0 + k * STEP)
    finally:
        await loop.client.close()
    assert only(db, "scrape_series_added")[1].tolist() == [100.0, 0, 0, 0, 0]
    assert len(series(db, "m")) == 100
    assert all(len(ts) == 5 for ts, _ in series(db, "m").values())



async def test_lateness_and_missed_ticks_are_counted(exporter, db: DB) -> None:  # type: ignore[no-untyped-def]
    exp, address = exporter
    cfg = parse_config(
        f"""
scrape_configs:
  - job_name: test
    scrape_interval: 100ms
    static_configs:
      - targets: ["{address}"]
"""
    ).scrape_configs[0]
    targets, _ = build_targets([TargetGroup("0", ({"__address__": address},), {})], cfg)
    registry = CollectorRegistry()
    loop = ScrapeLoop(targets[0], cfg, db, ScrapeClients(cfg), ScrapeMetrics(registry))
    task = asyncio.create_task(loop.run())
    try:
        await asyncio.sleep(0.5)
        # Stall the loop for more than an interval per scrape: scrapes start late and the
        # ticks that passed meanwhile are skipped.
        exp.stall_s = 0.35
        await asyncio.sleep(1.0)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await loop.client.close()
    scrapes = registry.get_sample_value("vigilops_target_scrape_lateness_seconds_count", {"job": "test"})
    missed = registry.get_sample_value("vigilops_target_scrape_ticks_missed_total", {"job": "test"})
    assert scrapes is not None and scrapes >= 4
    assert missed is not None and missed >= 3
    # Every scrape that started is one observation; skipped ticks are not scrapes.
    assert scrapes == len(exp.requests)

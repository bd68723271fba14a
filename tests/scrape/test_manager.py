"""Scrape manager: applying and reloading configurations, keeping loops of unchanged
targets, end-of-run staleness for targets that go away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web
from aioserve import served

from vigilops.scrape.config import parse_config
from vigilops.scrape.manager import ScrapeManager
from vigilops.scrape.metrics import ScrapeMetrics
from vigilops.tsdb.db import DB
from vigilops.tsdb.model import MAX_TIME, MIN_TIME, Matcher, MatchType, is_stale


@pytest.fixture
async def exporter_ports() -> AsyncIterator[list[int]]:
    async def handle(_: web.Request) -> web.Response:
        return web.Response(text="x 1\n", content_type="text/plain")

    async with contextlib.AsyncExitStack() as stack:
        ports = []
        for _ in range(2):
            app = web.Application()
            app.router.add_get("/metrics", handle)
            ports.append(await stack.enter_async_context(served(app)))
        yield ports


@pytest.fixture
def db(tmp_path) -> Iterator[DB]:  # type: ignore[no-untyped-def]
    d = DB.open(str(tmp_path / "data"))
    yield d
    d.close()


def config(jobs: dict[str, tuple[int, str]]) -> str:
    out = "scrape_configs:\n"
    for job, (port, interval) in jobs.items():
        out += f"""  - job_name: {job}
    scrape_interval: {interval}
    scrape_timeout: 1s
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"""
    return out


async def wait_until(cond, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_reload_keeps_unchanged_loops_and_replaces_changed_ones(exporter_ports, db: DB) -> None:  # type: ignore[no-untyped-def]
    a, b = exporter_ports
    manager = ScrapeManager(db, ScrapeMetrics(None))
    try:
        await manager.apply_config(parse_config(config({"a": (a, "1s"), "b": (b, "1s")})))
        await wait_until(lambda: len(manager.active()) == 2)
        loop_a = manager.pools["a"].loops[next(iter(manager.pools["a"].loops))]
        loop_b = manager.pools["b"].loops[next(iter(manager.pools["b"].loops))]
        await wait_until(lambda: loop_a.status.health == "up")
        # b's interval changes, a is untouched.
        await manager.apply_config(parse_config(config({"a": (a, "1s"), "b": (b, "2s")})))
        await wait_until(lambda: len(manager.active()) == 2)
        assert next(iter(manager.pools["a"].loops.values())) is loop_a
        new_b = next(iter(manager.pools["b"].loops.values()))
        assert new_b is not loop_b and new_b.target.interval_ms == 2000
    finally:
        await manager.stop()


async def test_removed_target_gets_stale_markers_after_two_intervals(exporter_ports, db: DB) -> None:  # type: ignore[no-untyped-def]
    a, b = exporter_ports
    manager = ScrapeManager(db, ScrapeMetrics(None))
    try:
        await manager.apply_config(parse_config(config({"a": (a, "1s"), "b": (b, "1s")})))
        await wait_until(lambda: all(l.status.health == "up" for l in manager.active()) and len(manager.active()) == 2)
        await manager.apply_config(parse_config(config({"a": (a, "1s")})))
        assert set(manager.pools) == {"a"}

        def b_is_stale() -> bool:
            with db.querier(MIN_TIME, MAX_TIME) as q:
                found = list(q.select([Matcher(MatchType.EQUAL, "job", "b"), Matcher(MatchType.EQUAL, "__name__", "x")]))
            return bool(found) and is_stale(found[0].values[-1])

        assert not b_is_stale()
        await wait_until(b_is_stale, timeout=10)
        with db.querier(MIN_TIME, MAX_TIME) as q:
            up_b = list(q.select([Matcher(MatchType.EQUAL, "job", "b"), Matcher(MatchType.EQUAL, "__name__", "up")]))
        assert is_stale(up_b[0].values[-1])
    finally:
        await manager.stop()

"""Where `/query` and `/query_range` run a query (`vigilops.query.api.placement`): a query
whose last run was short runs on the event loop, others in the executor; an engine with no
free slot sends the loop's query to the executor instead of blocking the loop. A real
aiohttp server on loopback over a real database and engine."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from aioserve import served
from vigilops.query.api import keys, routes
from vigilops.query.api.placement import QueryPlacement
from vigilops.query.engine import Engine, EngineOptions
from vigilops.query.values import QueryResult
from vigilops.tsdb.db import DB, DBOptions
from vigilops.tsdb.model import Labels

T0 = 1_700_000_000_000


# ---- the memory of run times -----------------------------------------------------------------
def test_a_query_runs_on_the_loop_only_after_a_run_within_the_budget() -> None:
    p = QueryPlacement(budget_s=10.0)
    assert not p.on_loop("q")
    assert p.timed("q", lambda: 7) == 7
    assert p.on_loop("q") and not p.on_loop("other")


def test_a_run_over_the_budget_sends_the_query_back_to_the_executor() -> None:
    p = QueryPlacement(budget_s=10.0)
    p.timed("q", lambda: None)
    p.budget_s = 0.0  # every run is now over it
    p.timed("q", lambda: None)
    assert not p.on_loop("q")


def test_a_failed_run_is_not_remembered() -> None:
    p = QueryPlacement(budget_s=10.0)

    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError):
        p.timed("q", fail)
    assert not p.on_loop("q")


def test_the_memory_is_emptied_when_full() -> None:
    p = QueryPlacement(budget_s=10.0, remembered=3)
    for key in ("a", "b", "c"):
        p.timed(key, lambda: None)
    assert all(p.on_loop(k) for k in ("a", "b", "c"))
    p.timed("d", lambda: None)
    assert p.on_loop("d") and not any(p.on_loop(k) for k in ("a", "b", "c"))


# ---- over HTTP -----------------------------------------------------------------------------
class _Recording(Engine):
    """The real engine, noting for each call whether it ran on the event loop's thread
    and whether it was allowed to wait for a slot."""

    def __init__(self, db: DB, options: EngineOptions) -> None:
        super().__init__(db, options)
        self.calls: list[tuple[bool, bool]] = []

    def _note(self, kw: dict[str, Any]) -> None:
        self.calls.append((threading.current_thread() is threading.main_thread(), bool(kw.get("wait", True))))

    def instant_query(self, *args: Any, **kw: Any) -> QueryResult:
        self._note(kw)
        return super().instant_query(*args, **kw)

    def range_query(self, *args: Any, **kw: Any) -> QueryResult:
        self._note(kw)
        return super().range_query(*args, **kw)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[DB]:
    d = DB.open(str(tmp_path / "data"), DBOptions(retention_ms=0))
    app = d.appender()
    refs = app.refs([Labels({"__name__": "c", "i": str(i)}) for i in range(3)])
    for k in range(40):
        app.append(refs, T0 + k * 15_000, np.array([k, 2.0 * k, 3.0 * k]))
    app.commit()
    yield d
    d.close()


@pytest.fixture
async def served_api(db: DB) -> AsyncIterator[tuple[_Recording, QueryPlacement, str]]:
    engine = _Recording(db, EngineOptions(max_concurrency=1))
    placement = QueryPlacement(budget_s=10.0)  # every query is "short" once seen
    app = web.Application()
    app[keys.ENGINE_KEY] = engine
    app[keys.PLACEMENT_KEY] = placement
    routes.add_routes(app)
    async with served(app) as port:
        yield engine, placement, f"http://127.0.0.1:{port}/api/v1"


async def _get(url: str, params: dict[str, str]) -> bytes:
    async with aiohttp.ClientSession() as s, s.get(url, params=params) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.read()


INSTANT = {"query": "rate(c[5m])", "time": str((T0 + 600_000) / 1000)}
RANGE = {"query": "sum(rate(c[2m]))", "start": str(T0 / 1000), "end": str((T0 + 600_000) / 1000), "step": "30"}


@pytest.mark.parametrize(("path", "params"), [("query", INSTANT), ("query_range", RANGE)])
async def test_a_repeated_query_runs_on_the_loop_with_the_same_answer(
    served_api: tuple[_Recording, QueryPlacement, str], path: str, params: dict[str, str]
) -> None:
    engine, _, url = served_api
    answers = [await _get(f"{url}/{path}", params) for _ in range(3)]
    assert engine.calls == [(False, True), (True, False), (True, False)]
    assert answers[0] == answers[1] == answers[2] and b'"status":"success"' in answers[0]


async def test_another_query_or_another_shape_is_a_new_query(
    served_api: tuple[_Recording, QueryPlacement, str],
) -> None:
    engine, _, url = served_api
    await _get(f"{url}/query_range", RANGE)
    await _get(f"{url}/query_range", {**RANGE, "step": "60"})  # other step count
    await _get(f"{url}/query", {"query": RANGE["query"], "time": RANGE["end"]})  # instant
    assert engine.calls == [(False, True)] * 3


async def test_a_slow_query_stays_in_the_executor(served_api: tuple[_Recording, QueryPlacement, str]) -> None:
    engine, placement, url = served_api
    placement.budget_s = 0.0
    for _ in range(3):
        await _get(f"{url}/query", INSTANT)
    assert engine.calls == [(False, True)] * 3


async def test_with_no_free_slot_the_query_waits_in_the_executor_not_on_the_loop(
    served_api: tuple[_Recording, QueryPlacement, str],
) -> None:
    engine, _, url = served_api
    first = await _get(f"{url}/query", INSTANT)
    assert engine._slots.acquire(blocking=False)  # the engine's only slot, taken
    loop = asyncio.get_running_loop()
    released = loop.time() + 0.3
    loop.call_later(0.3, engine._slots.release)
    again = await _get(f"{url}/query", INSTANT)
    # Refused on the loop without waiting, then run in the executor once the slot was free
    # (the loop stayed free meanwhile: it ran the release).
    assert engine.calls == [(False, True), (True, False), (False, True)]
    assert loop.time() >= released and again == first

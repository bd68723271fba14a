"""HTTP routes of the server process that belong to no single subsystem's API yet:
health, readiness, reload, self-metrics, and the status/targets endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from vigilops.scrape.api import target_metadata_body, targets_body
from vigilops.scrape.config import config_to_yaml
from vigilops.scrape.manager import ScrapeManager
from vigilops.query.parser import ParseError, parse_metric_selector
from vigilops.tsdb.model import Matcher

Reloader = Callable[[], Awaitable[None]]

MANAGER_KEY: web.AppKey[ScrapeManager] = web.AppKey("scrape_manager")
REGISTRY_KEY: web.AppKey[CollectorRegistry] = web.AppKey("registry")
RELOAD_KEY: web.AppKey[Reloader] = web.AppKey("reload")
FLAGS_KEY: web.AppKey[dict[str, str]] = web.AppKey("flags")


def success(data: Any) -> web.Response:
    return web.Response(
        body=orjson.dumps({"status": "success", "data": data}),
        content_type="application/json",
    )


def error(status: int, error_type: str, message: str) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps({"status": "error", "errorType": error_type, "error": message}),
        content_type="application/json",
    )


async def healthy(_: web.Request) -> web.Response:
    return web.Response(text="VigilOps is Healthy.\n")


async def ready(_: web.Request) -> web.Response:
    return web.Response(text="VigilOps is Ready.\n")


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY_KEY]
    body = await asyncio.get_running_loop().run_in_executor(None, generate_latest, registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def reload(request: web.Request) -> web.Response:
    try:
        await request.app[RELOAD_KEY]()
    except Exception as exc:  # the old configuration keeps running
        return web.Response(status=500, text=f"failed to reload config: {exc}\n")
    return web.Response(text="")


async def targets(request: web.Request) -> web.Response:
    state = request.query.get("state", "any").lower()
    if state not in ("any", "active", "dropped"):
        state = "any"
    return success(targets_body(request.app[MANAGER_KEY], state))


async def targets_metadata(request: web.Request) -> web.Response:
    matchers: list[Matcher] = []
    if request.query.get("match_target"):
        # Prometheus 2.42: parser.ParseMetricSelector, with no check for a non-empty matcher.
        try:
            matchers = parse_metric_selector(request.query["match_target"])
        except ParseError as exc:
            return error(400, "bad_data", f'invalid parameter "match_target": {exc}')
    try:
        limit = int(request.query.get("limit", "0") or 0)
    except ValueError:
        return error(400, "bad_data", "limit must be a number")
    body = target_metadata_body(
        request.app[MANAGER_KEY], matchers, request.query.get("metric", ""), max(limit, 0)
    )
    return success(body)


async def status_config(request: web.Request) -> web.Response:
    cfg = request.app[MANAGER_KEY].config
    return success({"yaml": config_to_yaml(cfg) if cfg is not None else ""})


async def status_flags(request: web.Request) -> web.Response:
    return success(request.app[FLAGS_KEY])


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/-/healthy", healthy)
    r.add_get("/-/ready", ready)
    r.add_post("/-/reload", reload)
    r.add_put("/-/reload", reload)
    r.add_get("/metrics", metrics)
    r.add_get("/api/v1/targets", targets)
    r.add_get("/api/v1/targets/metadata", targets_metadata)
    r.add_get("/api/v1/status/config", status_config)
    r.add_get("/api/v1/status/flags", status_flags)

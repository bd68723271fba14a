"""`add_routes(app)`: mounts the API v1 endpoints of `handlers_meta` and `handlers_query`
on an aiohttp app.

The app must carry `keys.QUERYABLE_KEY` (and, for `/status/tsdb`, `keys.DB_KEY`; for
`/query` and `/query_range`, `keys.ENGINE_KEY`); the scrape manager
(`vigilops.http_api.MANAGER_KEY`) feeds `/metadata` when present.
"""

from __future__ import annotations

from aiohttp import web

from . import handlers_meta as h
from . import handlers_query as hq
from .keys import RUNTIME_KEY, RuntimeState

PREFIX = "/api/v1"


def add_routes(app: web.Application) -> None:
    if RUNTIME_KEY not in app:
        app[RUNTIME_KEY] = RuntimeState()
    r = app.router
    for path, handler in (
        ("/labels", h.labels),
        ("/series", h.series),
        ("/query_exemplars", h.query_exemplars),
        ("/query", hq.query),
        ("/query_range", hq.query_range),
        ("/format_query", hq.format_query),
    ):
        r.add_get(PREFIX + path, handler)
        r.add_post(PREFIX + path, handler)
    for path, handler in (
        ("/label/{name}/values", h.label_values),
        ("/metadata", h.metadata),
        ("/status/buildinfo", h.buildinfo),
        ("/status/runtimeinfo", h.runtimeinfo),
        ("/status/tsdb", h.tsdb_status),
        ("/rules", h.rules),
        ("/alerts", h.alerts),
    ):
        r.add_get(PREFIX + path, handler)

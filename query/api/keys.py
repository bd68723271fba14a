"""aiohttp application keys the API handlers read (set by `vigilops server`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from vigilops.tsdb.api import Queryable
from vigilops.tsdb.db import DB

from .placement import QueryPlacement

if TYPE_CHECKING:  # for the annotation only: importing the API does not load the engine
    from vigilops.query.engine import Engine


@dataclass
class RuntimeState:
    """What `/api/v1/status/runtimeinfo` reports about the process's life."""

    start_time: float = field(default_factory=time.time)
    last_config_time: float = 0.0
    reload_config_success: bool = True

    def config_applied(self, ok: bool) -> None:
        self.reload_config_success = ok
        if ok:
            self.last_config_time = time.time()


#: Where samples are read: any `Queryable` (the DB, or a fan-out later).
QUERYABLE_KEY: web.AppKey[Queryable] = web.AppKey("queryable", Queryable)
#: The local database, for `/api/v1/status/tsdb` (optional).
DB_KEY: web.AppKey[DB] = web.AppKey("tsdb", DB)
RUNTIME_KEY: web.AppKey[RuntimeState] = web.AppKey("runtime_state", RuntimeState)
#: The PromQL engine `/query` and `/query_range` evaluate with.
ENGINE_KEY: web.AppKey[Engine] = web.AppKey("query_engine")
#: Whether `/query` and `/query_range` run a query on the event loop or in the executor
#: (without it, always in the executor).
PLACEMENT_KEY: web.AppKey[QueryPlacement] = web.AppKey("query_placement", QueryPlacement)

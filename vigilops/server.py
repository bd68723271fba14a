"""`vigilops server`: the process wiring. At this stage it opens the database, runs its
background maintenance, and serves health, readiness and self-metrics over HTTP.

Scraping, the query API and the ruler plug into this process as their subsystems land.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from contextlib import suppress

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client import GCCollector, PlatformCollector, ProcessCollector

from . import __version__
from .timeparse import parse_bytes, parse_duration_ms

log = logging.getLogger("vigilops")

#: How often the storage engine's background work (head cut, compaction, retention) runs.
MAINTENANCE_INTERVAL_S = 60.0
#: How often the WAL is fsynced even when nothing is appended (the COMMIT sync policy's
#: interval; appends themselves sync at most this far apart).
WAL_SYNC_INTERVAL_S = 10.0

DB_KEY: web.AppKey[object] = web.AppKey("db")
REGISTRY_KEY: web.AppKey[CollectorRegistry] = web.AppKey("registry")


def _split_listen(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    if not port.isdigit():
        raise SystemExit(f"invalid --web.listen-address {addr!r}: expected [host]:port")
    return host.strip("[]") or "0.0.0.0", int(port)


async def _healthy(_: web.Request) -> web.Response:
    return web.Response(text="VigilOps is Healthy.\n")


async def _ready(_: web.Request) -> web.Response:
    return web.Response(text="VigilOps is Ready.\n")


async def _metrics(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY_KEY]
    body = await asyncio.get_running_loop().run_in_executor(None, generate_latest, registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def build_app(db: object, registry: CollectorRegistry) -> web.Application:
    app = web.Application()
    app[DB_KEY] = db
    app[REGISTRY_KEY] = registry
    app.router.add_get("/-/healthy", _healthy)
    app.router.add_get("/-/ready", _ready)
    app.router.add_get("/metrics", _metrics)
    return app


async def _maintenance_loop(db: object) -> None:
    loop = asyncio.get_running_loop()
    since_maintenance = 0.0
    while True:
        await asyncio.sleep(WAL_SYNC_INTERVAL_S)
        await loop.run_in_executor(None, db.sync_wal)  # type: ignore[attr-defined]
        since_maintenance += WAL_SYNC_INTERVAL_S
        if since_maintenance >= MAINTENANCE_INTERVAL_S:
            since_maintenance = 0.0
            await loop.run_in_executor(None, db.maintain)  # type: ignore[attr-defined]


async def serve(args: argparse.Namespace) -> None:
    from vigilops.tsdb.db import DB, DBOptions
    from vigilops.tsdb.head.head import HeadOptions
    from vigilops.tsdb.wal.wal import SyncPolicy

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    try:
        wal_sync = SyncPolicy(args.wal_sync)
    except ValueError:
        choices = ", ".join(p.value for p in SyncPolicy)
        raise SystemExit(f"error: --storage.tsdb.wal-sync must be one of {choices}, not {args.wal_sync!r}") from None
    try:
        opts = DBOptions(
            retention_ms=parse_duration_ms(args.retention_time),
            retention_bytes=parse_bytes(args.retention_size),
            wal_sync=wal_sync,
            out_of_order_window_ms=parse_duration_ms(args.ooo_window),
            head=HeadOptions(out_of_order_window_ms=parse_duration_ms(args.ooo_window)),
        )
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    loop = asyncio.get_running_loop()
    from vigilops.tsdb.errors import TSDBError

    try:
        db = await loop.run_in_executor(None, lambda: DB.open(args.data_dir, opts, registry))
    except (TSDBError, OSError) as exc:
        raise SystemExit(f"error: cannot open storage at {args.data_dir}: {exc}") from None
    host, port = _split_listen(args.listen)
    runner = web.AppRunner(build_app(db, registry), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    maintenance = asyncio.create_task(_maintenance_loop(db))
    try:
        await site.start()
        log.info("vigilops %s listening on %s:%d, data in %s", __version__, host, port, args.data_dir)
        await stop.wait()
        log.info("shutting down")
    finally:
        maintenance.cancel()
        with suppress(asyncio.CancelledError):
            await maintenance
        await runner.cleanup()
        await loop.run_in_executor(None, db.close)


def run_server(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from .malloc_tuning import tune_malloc

    tune_malloc()
    if args.config_file:
        # Until the scrape subsystem lands there is nothing a config file could configure;
        # refusing it is better than ignoring it silently.
        raise SystemExit("error: --config.file is not supported yet (no scrape subsystem)")
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args))
    else:
        uvloop.run(serve(args))
    return 0

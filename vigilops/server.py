"""`vigilops server`: the process wiring.

Opens the database, loads the configuration (or the embedded default), starts the scrape
manager, serves the HTTP endpoints, reloads on SIGHUP and `POST /-/reload` (a bad
configuration is refused and the old one keeps running), runs storage maintenance in the
background, and on SIGTERM/SIGINT stops scraping and closes the database cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import zlib
from contextlib import suppress

from aiohttp import web
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from . import __version__
from .default_config import default_config
from .timeparse import parse_bytes, parse_duration_ms

log = logging.getLogger("vigilops")

#: How often the storage engine's background work (head cut, compaction, retention) runs.
MAINTENANCE_INTERVAL_S = 60.0
#: How often the WAL is fsynced even when nothing is appended (the COMMIT sync policy's
#: interval; appends themselves sync at most this far apart).
WAL_SYNC_INTERVAL_S = 10.0

#: argparse destination → Prometheus-style flag name, for /api/v1/status/flags.
FLAG_NAMES = {
    "config_file": "config.file",
    "data_dir": "storage.tsdb.path",
    "listen": "web.listen-address",
    "retention_time": "storage.tsdb.retention.time",
    "retention_size": "storage.tsdb.retention.size",
    "wal_sync": "storage.tsdb.wal-sync",
    "ooo_window": "storage.tsdb.out-of-order-time-window",
    "log_level": "log.level",
    "lookback_delta": "query.lookback-delta",
    "query_timeout": "query.timeout",
    "query_max_samples": "query.max-samples",
    "query_max_concurrency": "query.max-concurrency",
}


def _split_listen(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    if not port.isdigit():
        raise SystemExit(f"invalid --web.listen-address {addr!r}: expected [host]:port")
    return host.strip("[]") or "0.0.0.0", int(port)


async def _maintenance_loop(db: object) -> None:
    from .malloc_tuning import trim as malloc_trim

    loop = asyncio.get_running_loop()
    since_maintenance = 0.0
    while True:
        await asyncio.sleep(WAL_SYNC_INTERVAL_S)
        await loop.run_in_executor(None, db.sync_wal)  # type: ignore[attr-defined]
        since_maintenance += WAL_SYNC_INTERVAL_S
        if since_maintenance >= MAINTENANCE_INTERVAL_S:
            since_maintenance = 0.0
            await loop.run_in_executor(None, db.maintain)  # type: ignore[attr-defined]
            await loop.run_in_executor(None, malloc_trim)


def _db_options(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from vigilops.tsdb.db import DBOptions
    from vigilops.tsdb.head.head import HeadOptions
    from vigilops.tsdb.wal.wal import SyncPolicy

    from .malloc_tuning import trim as malloc_trim

    try:
        wal_sync = SyncPolicy(args.wal_sync)
    except ValueError:
        choices = ", ".join(p.value for p in SyncPolicy)
        raise SystemExit(
            f"error: --storage.tsdb.wal-sync must be one of {choices}, not {args.wal_sync!r}"
        ) from None
    try:
        window = parse_duration_ms(args.ooo_window)
        return DBOptions(
            retention_ms=parse_duration_ms(args.retention_time),
            retention_bytes=parse_bytes(args.retention_size),
            wal_sync=wal_sync,
            out_of_order_window_ms=window,
            head=HeadOptions(out_of_order_window_ms=window),
            release_memory=malloc_trim,
        )
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None


def _engine_options(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """`EngineOptions` from the ``--query.*`` flags (exits with a message when one is bad)."""
    from vigilops.query.engine import EngineOptions

    try:
        lookback = parse_duration_ms(args.lookback_delta)
        timeout = parse_duration_ms(args.query_timeout)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    if lookback <= 0 or timeout <= 0:
        raise SystemExit("error: --query.lookback-delta and --query.timeout must be positive")
    if args.query_max_samples <= 0 or args.query_max_concurrency <= 0:
        raise SystemExit("error: --query.max-samples and --query.max-concurrency must be positive")
    return EngineOptions(
        lookback_delta_ms=lookback,
        max_samples=args.query_max_samples,
        timeout_s=timeout / 1000.0,
        max_concurrency=args.query_max_concurrency,
    )


def _load_config(args: argparse.Namespace, host: str, port: int):  # type: ignore[no-untyped-def]
    """The configuration to run: the file given, or the embedded default."""
    from vigilops.scrape.config import load_config, parse_config

    if args.config_file:
        return load_config(args.config_file)
    return parse_config(default_config(host, port), "<embedded default>")


async def serve(args: argparse.Namespace) -> None:
    from vigilops.scrape.config import ConfigError
    from vigilops.scrape.discovery.metrics import SDMetrics
    from vigilops.scrape.manager import ScrapeManager
    from vigilops.scrape.metrics import ScrapeMetrics
    from vigilops.tsdb.db import DB
    from vigilops.tsdb.errors import TSDBError

    from vigilops.compat import federate
    from vigilops.query.api import keys as api_keys
    from vigilops.query.api import routes as api_routes
    from vigilops.query.api.placement import QueryPlacement
    from vigilops.query.engine import Engine
    from vigilops.tsdb.compiled import stop_warm_up as stop_kernel_warm_up
    from vigilops.tsdb.compiled import warm_up_in_child as warm_up_kernels

    from . import http_api
    from .agents import Agents

    host, port = _split_listen(args.listen)
    opts = _db_options(args)
    engine_options = _engine_options(args)
    try:
        config = _load_config(args, host, port)
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    except OSError as exc:
        raise SystemExit(f"error: cannot read {args.config_file}: {exc.strerror}") from None

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    scrape_metrics = ScrapeMetrics(registry)
    loop = asyncio.get_running_loop()
    try:
        db = await loop.run_in_executor(None, lambda: DB.open(args.data_dir, opts, registry))
    except (TSDBError, OSError) as exc:
        raise SystemExit(f"error: cannot open storage at {args.data_dir}: {exc}") from None

    # The compiled loops of storage reads and queries: compiled once per install by a
    # child process (then loaded from numba's cache in milliseconds), in the background
    # so that neither the first dashboard nor the event loop waits.
    kernels = loop.run_in_executor(None, warm_up_kernels)
    kernels.add_done_callback(
        lambda f: f.cancelled() or f.exception() is None
        or log.error("query kernels failed to compile: %s", f.exception())
    )
    jitter_seed = zlib.crc32(socket.gethostname().encode())
    manager = ScrapeManager(db, scrape_metrics, jitter_seed, SDMetrics(registry))
    # Agent registration: tokens, registry, /api/v1/agents*, the built-in `agents` job.
    agents = Agents(args.data_dir, registry)

    runtime = api_keys.RuntimeState()

    async def reload() -> None:
        try:
            new = await loop.run_in_executor(None, _load_config, args, host, port)
        except (ConfigError, OSError) as exc:
            scrape_metrics.reloads.labels("failure").inc()
            scrape_metrics.config_last_reload_success.set(0)
            runtime.config_applied(False)
            log.error("reload refused, keeping the running configuration: %s", exc)
            raise
        await manager.apply_config(*agents.with_agents_job(new))
        runtime.config_applied(True)
        scrape_metrics.reloads.labels("success").inc()
        scrape_metrics.config_last_reload_success.set(1)
        log.info("configuration reloaded")

    app = web.Application()
    app[http_api.MANAGER_KEY] = manager
    app[http_api.REGISTRY_KEY] = registry
    app[http_api.RELOAD_KEY] = reload
    app[http_api.FLAGS_KEY] = {
        FLAG_NAMES[k]: "" if v is None else str(v) for k, v in vars(args).items() if k in FLAG_NAMES
    }
    app[api_keys.QUERYABLE_KEY] = db
    app[api_keys.DB_KEY] = db
    app[api_keys.RUNTIME_KEY] = runtime
    app[api_keys.ENGINE_KEY] = Engine(db, engine_options)
    app[api_keys.PLACEMENT_KEY] = QueryPlacement()
    http_api.add_routes(app)
    api_routes.add_routes(app)
    federate.add_routes(app)
    agents.add_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def on_hup() -> None:
        task = asyncio.create_task(reload())
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    maintenance = asyncio.create_task(_maintenance_loop(db))
    try:
        agents.start()
        await site.start()
        await manager.apply_config(*agents.with_agents_job(config))
        runtime.config_applied(True)
        scrape_metrics.config_last_reload_success.set(1)
        log.info(
            "vigilops %s listening on %s:%d, data in %s, config %s",
            __version__, host, port, args.data_dir, args.config_file or "<embedded default>",
        )
        await stop.wait()
        log.info("shutting down")
    finally:
        stop_kernel_warm_up()  # a first start's compiling child, if still running
        maintenance.cancel()
        with suppress(asyncio.CancelledError):
            await maintenance
        await manager.stop()
        await runner.cleanup()
        await agents.close()
        await loop.run_in_executor(None, db.close)


def run_server(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from .malloc_tuning import tune_malloc

    # Only the long-running server: short batch commands (import) pay for it in page
    # faults and gain nothing.
    tune_malloc()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args))
    else:
        uvloop.run(serve(args))
    return 0

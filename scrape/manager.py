"""Scrape pools per job, fed by service discovery; configuration reloads.

`ScrapeManager.apply_config` swaps in a new configuration without a restart: jobs whose
scrape settings are unchanged keep their loops (and so their caches, staleness state and
phase); targets that are still discovered keep scraping; only what changed is stopped or
started. Discovery runs per job; each update rebuilds the job's targets.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Callable, Mapping, Sequence

from vigilops.tsdb.api import Appendable

from .config import Config, ScrapeConfig
from .discovery import Discoverer, TargetGroup
from .discovery.file import FileDiscoverer
from .discovery.http import HTTPDiscoverer
from .discovery.metrics import SDMetrics
from .discovery.static import StaticDiscoverer
from .http_client import ScrapeClients
from .loop import ScrapeLoop
from .metrics import ScrapeMetrics
from .targets import DroppedTarget, Target, build_targets

log = logging.getLogger("vigilops.scrape")

#: Builds a discoverer the process wiring attaches to a job by name (the built-in
#: ``agents`` job), beside the job's configured ones. Passed to `ScrapeManager.apply_config`.
DiscovererFactory = Callable[[], Discoverer]


def _scrape_settings(cfg: ScrapeConfig) -> ScrapeConfig:
    """The part of a job's config that affects its loops (discovery excluded)."""
    return dataclasses.replace(cfg, static_configs=[], file_sd_configs=[], http_sd_configs=[])


class ScrapePool:
    """The targets of one job and their loops."""

    def __init__(
        self,
        cfg: ScrapeConfig,
        base_dir: str,
        storage: Appendable,
        metrics: ScrapeMetrics,
        jitter_seed: int,
        sd_metrics: SDMetrics | None = None,
        builtin: DiscovererFactory | None = None,
    ) -> None:
        self.cfg = cfg
        self.builtin = builtin
        self.sd_metrics = sd_metrics
        self.base_dir = base_dir
        self.storage = storage
        self.metrics = metrics
        self.jitter_seed = jitter_seed
        self.clients = ScrapeClients(cfg)
        self.loops: dict[tuple[object, ...], ScrapeLoop] = {}
        self.dropped: list[DroppedTarget] = []
        self._groups: dict[int, Sequence[TargetGroup]] = {}
        self._sd_tasks: list[asyncio.Task[None]] = []
        self._changed = asyncio.Event()
        self._sync_task: asyncio.Task[None] | None = None
        #: End-of-run staleness writes of stopped loops that have not happened yet.
        self._stale_tasks: set[asyncio.Task[None]] = set()

    # -- discovery -------------------------------------------------------------------------
    def _discoverers(self) -> list[Discoverer]:
        cfg = self.cfg
        out: list[Discoverer] = []
        if cfg.static_configs:
            out.append(StaticDiscoverer(cfg.static_configs, cfg.job_name))
        out.extend(FileDiscoverer(f, self.base_dir, self.sd_metrics) for f in cfg.file_sd_configs)
        out.extend(HTTPDiscoverer(h, self.sd_metrics) for h in cfg.http_sd_configs)
        if self.builtin is not None:  # Agent registration: the built-in `agents` job.
            out.append(self.builtin())
        return out

    def start_discovery(self) -> None:
        for i, d in enumerate(self._discoverers()):
            self._sd_tasks.append(
                asyncio.create_task(d.run(self._updater(i)), name=f"sd {self.cfg.job_name}#{i}")
            )
        self._sync_task = asyncio.create_task(self._sync_forever(), name=f"sync {self.cfg.job_name}")

    def _updater(self, index: int):  # type: ignore[no-untyped-def]
        def update(groups: Sequence[TargetGroup]) -> None:
            self._groups[index] = list(groups)
            self._changed.set()

        return update

    async def stop_discovery(self) -> None:
        tasks = [*self._sd_tasks, *([self._sync_task] if self._sync_task else [])]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._sd_tasks = []
        self._sync_task = None

    async def _sync_forever(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            await self.sync()

    # -- targets ---------------------------------------------------------------------------
    async def sync(self) -> None:
        """Rebuild targets from the current groups; start and stop loops accordingly."""
        groups = [g for gs in self._groups.values() for g in gs]
        targets, dropped = build_targets(groups, self.cfg)
        limit = self.cfg.target_limit
        if limit and len(targets) > limit:
            log.error(
                "job %s: %d targets exceed target_limit %d; scraping none",
                self.cfg.job_name, len(targets), limit,
            )
            targets = []
        self.dropped = dropped
        wanted: dict[tuple[object, ...], Target] = {t.key(): t for t in targets}
        gone = [self.loops.pop(k) for k in list(self.loops) if k not in wanted]
        stops = [loop.stop(write_staleness=True) for loop in gone]
        for key, target in wanted.items():
            if key not in self.loops:
                loop = ScrapeLoop(target, self.cfg, self.storage, self.clients, self.metrics, self.jitter_seed)
                self.loops[key] = loop
                loop.start()
            else:
                # Same target; keep its loop but show the newest discovered labels.
                self.loops[key].target = target
        if stops:
            await asyncio.gather(*stops)
            self._track_stale(gone)
        self.metrics.active_targets.labels(self.cfg.job_name).set(len(self.loops))
        self.metrics.dropped_targets.labels(self.cfg.job_name).set(len(self.dropped))

    def _track_stale(self, loops: list[ScrapeLoop]) -> None:
        for loop in loops:
            if loop.stale_task is not None:
                self._stale_tasks.add(loop.stale_task)
                loop.stale_task.add_done_callback(self._stale_tasks.discard)

    async def stop(self, write_staleness: bool) -> None:
        """Stop discovery and every loop. Without `write_staleness` (shutdown) pending
        staleness writes are cancelled too; with it they are left to finish."""
        await self.stop_discovery()
        loops = list(self.loops.values())
        self.loops = {}
        await asyncio.gather(*(l.stop(write_staleness) for l in loops))
        self._track_stale(loops)
        if not write_staleness:
            for task in list(self._stale_tasks):
                task.cancel()
            await asyncio.gather(*self._stale_tasks, return_exceptions=True)
        await self.clients.close()

    async def reconfigure(self, cfg: ScrapeConfig) -> None:
        """Apply a changed config of the same job: restart discovery; restart loops only
        if the scrape settings themselves changed (keeping their caches)."""
        await self.stop_discovery()
        settings_changed = _scrape_settings(cfg) != _scrape_settings(self.cfg)
        self.cfg = cfg
        if settings_changed:
            old = list(self.loops.values())
            self.loops = {}
            await asyncio.gather(*(l.stop(write_staleness=False) for l in old))
            await self.clients.close()
            self.clients = ScrapeClients(cfg)
            # The next sync creates new loops with the new settings.
        self._groups = {}
        self.start_discovery()


class ScrapeManager:
    """All scrape pools of the running configuration."""

    def __init__(
        self,
        storage: Appendable,
        metrics: ScrapeMetrics,
        jitter_seed: int = 0,
        sd_metrics: SDMetrics | None = None,
    ) -> None:
        self.storage = storage
        self.metrics = metrics
        self.sd_metrics = sd_metrics
        self.jitter_seed = jitter_seed
        self.pools: dict[str, ScrapePool] = {}
        self.config: Config | None = None
        self._lock = asyncio.Lock()

    async def apply_config(
        self, cfg: Config, builtin: Mapping[str, DiscovererFactory] | None = None
    ) -> None:
        """Make `cfg` the running configuration (the caller has validated it).

        `builtin` maps job names to extra discoverers (agent registration); a pool restarts
        its discovery when its factory changes identity, so pass the same factory each time.
        """
        builtin = builtin or {}
        async with self._lock:
            base_dir = os.path.dirname(os.path.abspath(cfg.path)) if cfg.path else os.getcwd()
            wanted = {sc.job_name: sc for sc in cfg.scrape_configs}
            for job in [j for j in self.pools if j not in wanted]:
                await self.pools.pop(job).stop(write_staleness=True)
            for job, sc in wanted.items():
                pool = self.pools.get(job)
                if pool is None:
                    pool = ScrapePool(
                        sc, base_dir, self.storage, self.metrics, self.jitter_seed, self.sd_metrics,
                        builtin.get(job),
                    )
                    self.pools[job] = pool
                    pool.start_discovery()
                elif (
                    sc != pool.cfg or pool.base_dir != base_dir or pool.builtin is not builtin.get(job)
                ):
                    pool.base_dir = base_dir
                    pool.builtin = builtin.get(job)
                    await pool.reconfigure(sc)
            self.config = cfg

    async def stop(self) -> None:
        """Shut down: no staleness markers (the targets are not gone, the server is)."""
        async with self._lock:
            await asyncio.gather(*(p.stop(write_staleness=False) for p in self.pools.values()))
            self.pools = {}

    def active(self) -> list[ScrapeLoop]:
        return [loop for p in self.pools.values() for loop in p.loops.values()]

    def dropped(self) -> list[tuple[str, DroppedTarget]]:
        return [(job, d) for job, p in self.pools.items() for d in p.dropped]

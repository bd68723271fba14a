"""The per-target scrape loop: schedule, fetch, parse, relabel, append, report, staleness.

Behaviour follows Prometheus 2.42's scrape loop:

* a stable per-target offset inside the interval, so targets spread out and a target is
  scraped at the same phase after a restart or reload;
* a whole scrape is one Appender batch; a scrape that fails (HTTP error, timeout, parse
  error, a limit) appends nothing but its report series, `up` = 0, and staleness markers
  for every series of the previous scrape;
* series that vanish from a target get a staleness marker at the next scrape; when a
  target goes away, all its series get one after a little more than two intervals (unless
  the server is shutting down, when none are written: the series may come back);
* every scrape writes `up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
  `scrape_samples_post_metric_relabeling` and `scrape_series_added`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from vigilops.tsdb.api import Appendable, Appender, AppendResult
from vigilops.tsdb.errors import RejectReason
from vigilops.tsdb.model import STALE_NAN, Labels, valid_label_name

from .cache import DROPPED, ScrapeCache
from .http_client import ScrapeClients, ScrapeError
from .labels_merge import merge_target_labels, report_labels
from .metrics import ScrapeMetrics
from .payload_template import PayloadTemplate
from .relabel import relabel
from .textparse import MISSING_TIMESTAMP, MetricMetadata, ScrapeParseError, parse_scrape, parse_series_key

if TYPE_CHECKING:
    from .config import ScrapeConfig
    from .targets import Target

log = logging.getLogger("vigilops.scrape")

I64 = npt.NDArray[np.int64]
#: A scrape's samples waiting for the report series: refs, per-sample timestamps (None: the
#: scrape time for all) and values.
Staged = tuple[I64, I64 | None, npt.NDArray[np.float64]]

#: Scrape timestamps within this distance of the schedule are snapped to it, so that
#: timestamps are exactly one interval apart and compress to nothing (Prometheus does the
#: same, see prometheus#7846).
TIMESTAMP_TOLERANCE_MS = 2

REPORT_NAMES = (
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
)


def now_ms() -> int:
    return int(time.time() * 1000)


def scrape_offset_ms(target_key: str, interval_ms: int, jitter_seed: int) -> int:
    """Stable phase of a target inside its interval."""
    digest = hashlib.blake2b(target_key.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "little") ^ jitter_seed) % max(interval_ms, 1)


@dataclass
class ScrapeStatus:
    """What /api/v1/targets shows about a target's last scrape."""

    health: str = "unknown"
    last_error: str = ""
    last_scrape_ms: int = 0
    last_duration_s: float = 0.0
    samples: int = 0
    metadata: dict[str, MetricMetadata] = field(default_factory=dict)


class ScrapeLoop:
    """Scrapes one target until stopped. Created and stopped by its scrape pool."""

    def __init__(
        self,
        target: Target,
        cfg: ScrapeConfig,
        storage: Appendable,
        clients: ScrapeClients,
        metrics: ScrapeMetrics,
        jitter_seed: int = 0,
    ) -> None:
        self.target = target
        self.cfg = cfg
        self.storage = storage
        #: The target's HTTP client (its keep-alive connection); closed by `stop`.
        self.client = clients.target(target.url, target.timeout_ms)
        self.metrics = metrics
        self.jitter_seed = jitter_seed
        self.status = ScrapeStatus()
        self.cache = ScrapeCache()
        self.template = PayloadTemplate()
        self._report_refs: I64 | None = None
        #: Refs appended without explicit timestamps by the last successful scrape.
        self._prev_refs: I64 = np.zeros(0, dtype=np.int64)
        #: The refs of the last successful scrape as scraped (unsorted), to detect no change.
        self._prev_tracked: I64 | None = None
        self._task: asyncio.Task[None] | None = None
        #: The delayed end-of-run staleness write, while pending (see `stop`).
        self.stale_task: asyncio.Task[None] | None = None
        self._last_scrape_ms = 0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"scrape {self.target.url}")

    async def stop(self, write_staleness: bool) -> None:
        """Stop scraping. With `write_staleness`, wait a little over two intervals (like
        Prometheus) and mark every series of the target stale — in the background."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self.client.close()
        if write_staleness and self._last_scrape_ms:
            self.stale_task = asyncio.create_task(
                self._end_of_run_staleness(), name=f"stale {self.target.url}"
            )

    async def _end_of_run_staleness(self) -> None:
        interval = self.target.interval_ms
        await asyncio.sleep(interval / 1000)
        stale_ms = now_ms()
        await asyncio.sleep((interval + interval / 10) / 1000)
        app = self.storage.appender()
        self._append_stale(app, self._prev_refs, stale_ms)
        refs = self._report_refs
        if refs is not None:
            app.append(refs, stale_ms, np.full(len(refs), STALE_NAN))
        app.commit()
        self._prev_refs = np.zeros(0, dtype=np.int64)
        self._prev_tracked = None

    async def run(self) -> None:
        interval = self.target.interval_ms
        offset = scrape_offset_ms(repr(self.target.key()), interval, self.jitter_seed)
        now = now_ms()
        scheduled = now - now % interval + offset
        if scheduled < now:
            scheduled += interval
        while True:
            delay = scheduled - now_ms()
            if delay > 0:
                await asyncio.sleep(delay / 1000)
            start = now_ms()
            self.metrics.scrape_lateness.labels(self.cfg.job_name).observe(max(0, start - scheduled) / 1000)
            scrape_ms = scheduled if abs(start - scheduled) <= TIMESTAMP_TOLERANCE_MS else start
            try:
                await self.scrape_and_report(scrape_ms)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not kill the loop; the next scrape tries again
                log.exception("scrape of %s failed unexpectedly", self.target.url)
            # Like a Go ticker: ticks missed while a slow scrape ran are skipped.
            scheduled += interval
            now = now_ms()
            if scheduled <= now:
                missed = (now - scheduled) // interval + 1
                self.metrics.missed_ticks.labels(self.cfg.job_name).inc(missed)
                scheduled += missed * interval

    # -- one scrape ------------------------------------------------------------------------
    async def scrape_and_report(self, scrape_ms: int) -> None:
        t0 = time.perf_counter()
        total = added = series_added = 0
        error = ""
        staged: Staged | None = None
        try:
            body, content_type = await self.client.get()
        except ScrapeError as exc:
            error = str(exc)
        # Opened once the body is here: the transaction then spans no await, so no other
        # commit comes in between and the head need not validate its samples twice.
        app = self.storage.appender()
        try:
            if not error:
                total, added, series_added, staged = self._append(app, body, content_type, scrape_ms)
        except (ScrapeError, ScrapeParseError) as exc:
            error = str(exc)
        if error:
            app.rollback()
            app = self.storage.appender()
            self._append_stale(app, self._prev_refs, scrape_ms)
            self._prev_refs = np.zeros(0, dtype=np.int64)
            self._prev_tracked = None
            self.metrics.scrape_failures.labels(self.cfg.job_name).inc()
        duration = time.perf_counter() - t0
        self._report(app, scrape_ms, duration, error, total, added, series_added, staged)
        result = app.commit()
        if result.rejected.get(RejectReason.UNKNOWN_SERIES):
            # The storage forgot some series (head garbage collection): rebuild refs.
            self.cache.forget()
            self._report_refs = None
        self._count_rejections(result)
        self.status.health = "down" if error else "up"
        self.status.last_error = error
        self.status.last_scrape_ms = scrape_ms
        self.status.last_duration_s = duration
        self.status.samples = total
        self._last_scrape_ms = scrape_ms

    def _make_labels(self, key: str) -> Labels | None:
        cfg = self.cfg
        ls = merge_target_labels(parse_series_key(key), self.target.labels, cfg.honor_labels)
        if cfg.metric_relabel_configs:
            relabeled = relabel(ls, cfg.metric_relabel_configs)
            if relabeled is None or not len(relabeled):
                return None
            ls = relabeled
        if not ls.name:
            raise ScrapeError("__name__ label is missing")
        for n in ls.names():
            if not valid_label_name(n):
                raise ScrapeError(f"invalid metric name or label names: {ls}")
        self._check_label_limits(ls)
        return ls

    def _check_label_limits(self, ls: Labels) -> None:
        cfg = self.cfg
        metric = ls.name[:50]
        n = len(ls) // 2
        if cfg.label_limit and n > cfg.label_limit:
            raise ScrapeError(
                f"label_limit exceeded (metric: {metric}, number of labels: {n}, "
                f"limit: {cfg.label_limit})"
            )
        for name, value in ls.pairs():
            if cfg.label_name_length_limit and len(name) > cfg.label_name_length_limit:
                raise ScrapeError(
                    f"label_name_length_limit exceeded (metric: {metric}, label name: "
                    f"{name[:50]}, length: {len(name)}, limit: {cfg.label_name_length_limit})"
                )
            if cfg.label_value_length_limit and len(value) > cfg.label_value_length_limit:
                raise ScrapeError(
                    f"label_value_length_limit exceeded (metric: {metric}, label name: "
                    f"{name[:50]}, value: {value[:50]!r}, length: {len(value)}, "
                    f"limit: {cfg.label_value_length_limit})"
                )

    def _append(
        self, app: Appender, body: bytes, content_type: str, scrape_ms: int
    ) -> tuple[int, int, int, Staged]:
        """Parse a scrape and stage its staleness markers; return (scraped, post-relabel,
        series added) and the samples, which `_report` appends with the report series in
        one batch."""
        parsed = parse_scrape(body, content_type, known_keys=self.cache.known(), template=self.template)
        self.status.metadata = parsed.metadata
        total = len(parsed.keys)
        refs, series_added = self.cache.resolve(parsed.keys, self._make_labels, app.refs)
        keep = refs != DROPPED
        n_kept = int(keep.sum()) if total else 0
        limit = self.cfg.sample_limit
        if limit and n_kept > limit:
            raise ScrapeError("sample limit exceeded")
        values = parsed.values
        timestamps = parsed.timestamps if self.cfg.honor_timestamps else None
        if n_kept != total:
            refs, values = refs[keep], values[keep]
            if timestamps is not None:
                timestamps = timestamps[keep]
        staged: Staged
        if timestamps is None:
            staged = (refs, None, values)
            tracked = refs
        else:
            explicit = timestamps != MISSING_TIMESTAMP
            staged = (refs, np.where(explicit, timestamps, scrape_ms), values)
            tracked = refs[~explicit]
        if self._prev_tracked is not None and np.array_equal(tracked, self._prev_tracked):
            # The usual case: the same series in the same order as last time, nothing went
            # stale, and the sort-based set difference can be skipped.
            return total, n_kept, series_added, staged
        current = np.unique(tracked)
        self._append_stale(app, np.setdiff1d(self._prev_refs, current, assume_unique=True), scrape_ms)
        self._prev_refs = current
        self._prev_tracked = tracked.copy()
        return total, n_kept, series_added, staged

    def _append_stale(self, app: Appender, refs: I64, t_ms: int) -> None:
        if len(refs):
            app.append(refs, t_ms, np.full(len(refs), STALE_NAN))

    def _report(
        self,
        app: Appender,
        scrape_ms: int,
        duration_s: float,
        error: str,
        total: int,
        added: int,
        series_added: int,
        staged: Staged | None = None,
    ) -> None:
        if self._report_refs is None:
            self._report_refs = app.refs([report_labels(n, self.target.labels) for n in REPORT_NAMES])
        rrefs = self._report_refs
        values = np.array(
            [0.0 if error else 1.0, duration_s, total, added, series_added], dtype=np.float64
        )
        if staged is None:
            app.append(rrefs, scrape_ms, values)
            return
        # One batch (one validation, one WAL record): the report first, so that a scraped
        # sample of the same series and timestamp (a target exposing `up` under
        # honor_labels) still wins, as when the report was appended after the samples.
        refs, t, scraped = staged
        all_refs = np.concatenate([rrefs, refs])
        all_values = np.concatenate([values, scraped])
        if t is None:
            app.append(all_refs, scrape_ms, all_values)
        else:
            app.append(all_refs, np.concatenate([np.full(len(rrefs), scrape_ms), t]), all_values)

    def _count_rejections(self, result: AppendResult) -> None:
        m = self.metrics
        for reason, count in result.rejected.items():
            if reason is RejectReason.OUT_OF_ORDER:
                m.sample_out_of_order.inc(count)
            elif reason is RejectReason.DUPLICATE:
                m.sample_duplicate.inc(count)
            elif reason in (RejectReason.OUT_OF_BOUNDS, RejectReason.TOO_OLD):
                m.sample_out_of_bounds.inc(count)


"""Runs the collectors concurrently under one deadline, so one hung read never hangs `/metrics`.

A collector that fails, or has not answered by the deadline, reports
`node_scrape_collector_success{collector} 0`; the others still answer. A collector whose
previous run is still stuck is not started again (no thread pile-up, node_exporter#578); its
worker is written off and replaced, so stuck reads never starve the pool.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, wait
from typing import Any

from prometheus_client.core import Metric

from .collectors.base import Collector, Family, NoDataError

log = logging.getLogger("vigilops.agent")

_Task = tuple[Future[Any], Callable[[], Any]]


class DaemonPool:
    """A few daemon worker threads; a task past its deadline costs one replacement worker."""

    def __init__(self, workers: int) -> None:
        self._tasks: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._abandoned: set[Future[Any]] = set()
        self._lock = threading.Lock()
        for _ in range(workers):
            self._spawn()

    def _spawn(self) -> None:
        t = threading.Thread(target=self._work, name="collector", daemon=True)
        self._threads.append(t)
        t.start()

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            fut, fn = task
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - reported through the future
                fut.set_exception(exc)
            with self._lock:
                if fut in self._abandoned:  # a replacement took this worker's place
                    self._abandoned.discard(fut)
                    return

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        fut: Future[Any] = Future()
        self._tasks.put((fut, fn))
        return fut

    def abandon(self, fut: Future[Any]) -> None:
        """`fut` is stuck in a worker: let that worker retire when it returns, add another."""
        with self._lock:
            if fut.running() and not fut.done():
                self._abandoned.add(fut)
                self._spawn()

    def close(self) -> None:
        for _ in self._threads:
            self._tasks.put(None)


class CollectorRunner:
    """A prometheus_client collector that fans out to the node collectors."""

    def __init__(self, collectors: Sequence[Collector], timeout: float, workers: int = 4) -> None:
        self.collectors = list(collectors)
        self.timeout = timeout
        self._pool = DaemonPool(min(workers, max(1, len(self.collectors))))
        self._stuck: dict[str, tuple[Future[Any], float]] = {}
        self._scrape_lock = threading.Lock()

    @staticmethod
    def _timed(collector: Collector) -> Callable[[], tuple[list[Metric], float]]:
        def run() -> tuple[list[Metric], float]:
            start = time.perf_counter()
            out = collector.collect()
            return out, time.perf_counter() - start
        return run

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        with self._scrape_lock:
            metrics = self._collect()
        yield from metrics

    def _collect(self) -> list[Metric]:
        start = time.perf_counter()
        pending: dict[str, Future[Any]] = {}
        results: dict[str, tuple[bool, float]] = {}
        for c in self.collectors:
            stuck = self._stuck.get(c.name)
            if stuck is not None and not stuck[0].done():
                log.warning("collector %s is still stuck in an earlier scrape", c.name)
                results[c.name] = (False, start - stuck[1])
                continue
            self._stuck.pop(c.name, None)
            pending[c.name] = self._pool.submit(self._timed(c))
        wait(pending.values(), timeout=self.timeout)
        out: list[Metric] = []
        for name, fut in pending.items():
            if not fut.done():
                log.error("collector %s timed out after %.1fs", name, self.timeout)
                self._stuck[name] = (fut, start)
                self._pool.abandon(fut)
                results[name] = (False, time.perf_counter() - start)
                continue
            exc = fut.exception()
            if exc is None:
                metrics, duration = fut.result()
                out.extend(metrics)
                results[name] = (True, duration)
            else:
                level = logging.DEBUG if isinstance(exc, NoDataError) else logging.ERROR
                log.log(level, "collector %s failed: %s", name, exc)
                results[name] = (False, time.perf_counter() - start)
        duration = Family("node_scrape_collector_duration_seconds",
                          "node_exporter: Duration of a collector scrape.", "gauge")
        success = Family("node_scrape_collector_success",
                         "node_exporter: Whether a collector succeeded.", "gauge")
        for c in self.collectors:
            ok, seconds = results[c.name]
            duration.add(seconds, {"collector": c.name})
            success.add(1 if ok else 0, {"collector": c.name})
        return [*out, duration.metric, success.metric]

    def close(self) -> None:
        self._pool.close()

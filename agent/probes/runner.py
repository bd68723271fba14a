"""Runs every probe in its own thread on its own interval; `/metrics` reads the cached results.

Metric names and HELP are blackbox_exporter's, labelled by `probe` (the configured name) and
`target`, plus `probe_last_run_timestamp_seconds` so a scrape can tell how old a result is.
A probe appears in `/metrics` once its first run has finished.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Protocol

from prometheus_client.core import Metric

from ..collectors.base import gauge
from ..config import ProbeConfig
from .base import ProbeResult
from .http_probe import HTTPProbe
from .tcp_probe import TCPProbe

log = logging.getLogger("vigilops.agent")


class Probe(Protocol):
    config: ProbeConfig

    def run(self) -> ProbeResult: ...


def make_probe(config: ProbeConfig) -> Probe:
    return HTTPProbe(config) if config.type == "http" else TCPProbe(config)


class ProbeRunner:
    """A prometheus_client collector over the probes' last results; `start()` runs them."""

    def __init__(self, probes: Sequence[ProbeConfig | Probe]) -> None:
        self.probes: list[Probe] = [make_probe(p) if isinstance(p, ProbeConfig) else p
                                    for p in probes]
        self._results: dict[str, ProbeResult] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for probe in self.probes:
            t = threading.Thread(target=self._loop, args=(probe,), daemon=True,
                                 name=f"probe-{probe.config.name}")
            self._threads.append(t)
            t.start()

    def run_once(self, probe: Probe) -> ProbeResult:
        try:
            result = probe.run()
        except Exception as exc:  # noqa: BLE001 - a probe bug must not end its loop
            log.exception("probe %s crashed", probe.config.name)
            result = ProbeResult(False, 0.0, time.time(), error=f"{type(exc).__name__}: {exc}")
        with self._lock:
            self._results[probe.config.name] = result
        return result

    def _loop(self, probe: Probe) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            self.run_once(probe)
            self._stop.wait(max(0.0, probe.config.interval - (time.monotonic() - began)))

    def results(self) -> dict[str, ProbeResult]:
        with self._lock:
            return dict(self._results)

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        results = self.results()
        success = gauge("probe_success", "Displays whether or not the probe was a success")
        duration = gauge("probe_duration_seconds",
                         "Returns how long the probe took to complete in seconds")
        last_run = gauge("probe_last_run_timestamp_seconds",
                         "Unix time at which the probe last finished (VigilOps).")
        status = gauge("probe_http_status_code", "Response HTTP status code")
        redirects = gauge("probe_http_redirects", "The number of redirects")
        ssl = gauge("probe_http_ssl", "Indicates if SSL was used for the final redirect")
        regex = gauge("probe_failed_due_to_regex", "Indicates if probe failed due to regex")
        expiry = gauge("probe_ssl_earliest_cert_expiry", "Returns earliest SSL cert expiry in unixtime")
        for probe in self.probes:
            cfg = probe.config
            result = results.get(cfg.name)
            if result is None:
                continue
            labels = {"probe": cfg.name, "target": cfg.target}
            success.add(1 if result.success else 0, labels)
            duration.add(result.duration, labels)
            last_run.add(result.timestamp, labels)
            if cfg.type == "http":
                status.add(result.status_code, labels)
                redirects.add(result.redirects, labels)
                ssl.add(1 if result.ssl else 0, labels)
                regex.add(1 if result.failed_due_to_regex else 0, labels)
                if result.ssl_earliest_cert_expiry is not None:
                    expiry.add(result.ssl_earliest_cert_expiry, labels)
        for fam in (success, duration, last_run, status, redirects, ssl, regex, expiry):
            if fam.metric.samples:
                yield fam.metric

    def close(self, timeout: float = 10.0) -> None:
        """Stop the loops; waits up to `timeout` for probes in flight (they end by their own)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()

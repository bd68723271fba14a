"""Self-metrics of service discovery, registered on an injected registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Summary


class SDMetrics:
    """Counters shared by all discoverers of one process (Prometheus's `prometheus_sd_*`).

    With `registry=None` they are created unregistered, so tests and tools can build many.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry
        self.file_read_errors = Counter(
            "vigilops_sd_file_read_errors_total",
            "file_sd files that could not be read or decoded (their previous groups are kept).",
            registry=r,
        )
        self.file_scan_duration = Summary(
            "vigilops_sd_file_scan_duration_seconds",
            "Time taken to read all files of one file_sd config.",
            registry=r,
        )
        self.http_failures = Counter(
            "vigilops_sd_http_failures_total",
            "http_sd refreshes that failed (their previous groups are kept).",
            registry=r,
        )
        self.refresh_duration = Summary(
            "vigilops_sd_refresh_duration_seconds",
            "Time taken by one refresh of a polling discoverer, by mechanism.",
            ["mechanism"],
            registry=r,
        )

"""Self-metrics of the scrape subsystem, registered on an injected registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ScrapeMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        r = registry
        self.scrape_failures = Counter(
            "vigilops_target_scrapes_failed_total", "Scrapes that failed, by job.", ["job"], registry=r
        )
        self.sample_out_of_order = Counter(
            "vigilops_target_scrapes_sample_out_of_order_total",
            "Scraped samples rejected for being older than the series' newest sample.",
            registry=r,
        )
        self.sample_duplicate = Counter(
            "vigilops_target_scrapes_sample_duplicate_timestamp_total",
            "Scraped samples rejected for repeating a timestamp with another value.",
            registry=r,
        )
        self.sample_out_of_bounds = Counter(
            "vigilops_target_scrapes_sample_out_of_bounds_total",
            "Scraped samples rejected for being older than the storage accepts.",
            registry=r,
        )
        self.scrape_lateness = Histogram(
            "vigilops_target_scrape_lateness_seconds",
            "How long after its scheduled time each scrape started, by job.",
            ["job"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.missed_ticks = Counter(
            "vigilops_target_scrape_ticks_missed_total",
            "Scheduled scrapes skipped because the previous scrape of the target ran past them.",
            ["job"],
            registry=r,
        )
        self.active_targets = Gauge(
            "vigilops_scrape_targets", "Targets being scraped, by job.", ["job"], registry=r
        )
        self.dropped_targets = Gauge(
            "vigilops_scrape_targets_dropped",
            "Discovered targets dropped by relabeling, by job.",
            ["job"],
            registry=r,
        )
        self.reloads = Counter(
            "vigilops_config_reloads_total", "Configuration reloads, by result.", ["result"], registry=r
        )
        self.config_last_reload_success = Gauge(
            "vigilops_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
            registry=r,
        )

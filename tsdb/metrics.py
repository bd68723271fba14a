"""Self-metrics of the storage engine, registered on an injected registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .api import AppendResult
from .errors import RejectReason


class TSDBMetrics:
    """The engine's own series. With `registry=None` they are created unregistered, so a
    test or a tool can open many databases in one process without name clashes."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        r = registry
        self.head_series = Gauge(
            "vigilops_tsdb_head_series", "Series currently in the head.", registry=r
        )
        self.head_samples = Gauge(
            "vigilops_tsdb_head_samples", "Samples currently held by the head.", registry=r
        )
        self.head_bytes = Gauge(
            "vigilops_tsdb_head_frame_bytes",
            "Bytes of compressed frames held by the head.",
            registry=r,
        )
        self.samples_appended = Counter(
            "vigilops_tsdb_head_samples_appended_total",
            "Samples committed to the head.",
            registry=r,
        )
        self.samples_rejected = Counter(
            "vigilops_tsdb_head_samples_rejected_total",
            "Samples not stored, by reason.",
            ["reason"],
            registry=r,
        )
        for reason in RejectReason:
            self.samples_rejected.labels(reason.value)
        self.compactions = Counter(
            "vigilops_tsdb_compactions_total",
            "Blocks written, by trigger (head cut or merge of blocks).",
            ["kind"],
            registry=r,
        )
        self.compactions_failed = Counter(
            "vigilops_tsdb_compactions_failed_total", "Compactions that failed.", registry=r
        )
        self.compaction_duration = Histogram(
            "vigilops_tsdb_compaction_duration_seconds",
            "Time spent writing one block.",
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.blocks = Gauge("vigilops_tsdb_blocks_loaded", "Blocks open.", registry=r)
        self.blocks_bytes = Gauge(
            "vigilops_tsdb_storage_blocks_bytes", "Bytes of all blocks on disk.", registry=r
        )
        self.corrupted_blocks = Counter(
            "vigilops_tsdb_corrupted_blocks_total",
            "Blocks that failed verification and were moved aside.",
            registry=r,
        )
        self.retention_deletions = Counter(
            "vigilops_tsdb_retention_deleted_blocks_total",
            "Blocks deleted by retention, by limit.",
            ["limit"],
            registry=r,
        )
        self.wal_replay_rejected = Counter(
            "vigilops_tsdb_wal_replay_samples_dropped_total",
            "Samples in the WAL that were not replayed (already in blocks).",
            registry=r,
        )

    def observe_append(self, result: AppendResult) -> None:
        if result.appended:
            self.samples_appended.inc(result.appended)
        for reason, count in result.rejected.items():
            self.samples_rejected.labels(reason.value).inc(count)

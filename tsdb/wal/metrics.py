"""Self-metrics of the write-ahead log, registered on an injected registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Summary

#: Values of the `reason` label of the corruption counter.
CORRUPTION_REASONS = ("torn", "checksum", "invalid", "segment_header", "missing_segment")


class WALMetrics:
    """The WAL's metrics. With `registry` None they are kept but not registered anywhere."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.segment_current = Gauge(
            "vigilops_tsdb_wal_segment_current",
            "Index of the WAL segment being written (the last one present before writes).",
            registry=registry,
        )
        self.fsync_duration = Summary(
            "vigilops_tsdb_wal_fsync_duration_seconds",
            "Duration of fsync calls on WAL segments.",
            registry=registry,
        )
        self.corruptions = Counter(
            "vigilops_tsdb_wal_corruptions_total",
            "WAL repairs: segments truncated at a torn or corrupt record, or found missing.",
            ["reason"],
            registry=registry,
        )
        for reason in CORRUPTION_REASONS:
            self.corruptions.labels(reason)
        self.truncated_bytes = Counter(
            "vigilops_tsdb_wal_truncated_bytes_total",
            "Bytes dropped from WAL segments by repairs (later removed segments included).",
            registry=registry,
        )
        self.records_written = Counter(
            "vigilops_tsdb_wal_records_written_total",
            "Records appended to the WAL.",
            registry=registry,
        )
        self.bytes_written = Counter(
            "vigilops_tsdb_wal_bytes_written_total",
            "Bytes of records appended to the WAL (frames as encoded, compressed).",
            registry=registry,
        )
        self.writes_failed = Counter(
            "vigilops_tsdb_wal_writes_failed_total",
            "WAL log() calls that failed to write or sync.",
            registry=registry,
        )
        self.storage_size = Gauge(
            "vigilops_tsdb_wal_storage_size_bytes",
            "Size of the WAL directory's segments and checkpoints.",
            registry=registry,
        )
        self.checkpoints = Counter(
            "vigilops_tsdb_wal_checkpoint_creations_total",
            "Checkpoints written.",
            registry=registry,
        )
        self.checkpoints_failed = Counter(
            "vigilops_tsdb_wal_checkpoint_creations_failed_total",
            "Checkpoints that failed to be written.",
            registry=registry,
        )

"""Cardinality and size statistics of a database (`vigilops tsdb stats`, /api/v1/status/tsdb)."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

from .db import DB
from .model import METRIC_NAME, MAX_TIME, MIN_TIME, Matcher, MatchType


@dataclass
class TSDBStats:
    series: int = 0
    head_series: int = 0
    samples: int = 0
    head_samples: int = 0
    blocks: int = 0
    block_bytes: int = 0
    wal_bytes: int = 0
    min_time: int = MAX_TIME
    max_time: int = MIN_TIME
    top_metric_names: list[tuple[str, int]] = field(default_factory=list)
    top_label_pairs: list[tuple[str, int]] = field(default_factory=list)
    top_label_names_by_values: list[tuple[str, int]] = field(default_factory=list)

    @property
    def block_bytes_per_sample(self) -> float:
        block_samples = self.samples - self.head_samples
        return self.block_bytes / block_samples if block_samples else 0.0


def compute_stats(db: DB, limit: int = 10) -> TSDBStats:
    st = TSDBStats()
    blocks = db.block_list()
    st.blocks = len(blocks)
    for b in blocks:
        st.samples += b.meta.num_samples
        st.block_bytes += b.size_bytes()
        st.min_time = min(st.min_time, b.mint)
        st.max_time = max(st.max_time, b.maxt - 1)
    st.head_samples = db.head.store.num_samples()
    st.head_series = db.head.num_series()
    st.samples += st.head_samples
    if st.head_samples:
        st.min_time = min(st.min_time, db.head.mint)
        st.max_time = max(st.max_time, db.head.maxt)
    if db.wal is not None:
        st.wal_bytes = db.wal.size_bytes()
    else:
        wal_dir = os.path.join(db.path, "wal")
        for root, _dirs, files in os.walk(wal_dir):
            st.wal_bytes += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    names: Counter[str] = Counter()
    pairs: Counter[str] = Counter()
    values: dict[str, set[str]] = {}
    with db.querier(MIN_TIME, MAX_TIME) as q:
        all_series = q.series([Matcher(MatchType.REGEX, METRIC_NAME, ".+")])
    st.series = len(all_series)
    for ls in all_series:
        names[ls.name] += 1
        for n, v in ls.pairs():
            pairs[f"{n}={v}"] += 1
            values.setdefault(n, set()).add(v)
    st.top_metric_names = names.most_common(limit)
    st.top_label_pairs = pairs.most_common(limit)
    st.top_label_names_by_values = sorted(
        ((n, len(v)) for n, v in values.items()), key=lambda x: (-x[1], x[0])
    )[:limit]
    return st


@dataclass
class HeadCardinality:
    """The head's index statistics, as Prometheus's `/api/v1/status/tsdb` reports them
    (`Head.PostingsCardinalityStats`): top-N lists of (name, count), largest first."""

    num_series: int = 0
    num_label_pairs: int = 0
    chunk_count: int = 0
    min_time: int = MAX_TIME
    max_time: int = MIN_TIME
    series_count_by_metric_name: list[tuple[str, int]] = field(default_factory=list)
    label_value_count_by_label_name: list[tuple[str, int]] = field(default_factory=list)
    memory_in_bytes_by_label_name: list[tuple[str, int]] = field(default_factory=list)
    series_count_by_label_value_pair: list[tuple[str, int]] = field(default_factory=list)


def _top(items: dict[str, int], limit: int) -> list[tuple[str, int]]:
    return sorted(items.items(), key=lambda x: (-x[1], x[0]))[:limit]


def head_cardinality(db: DB, limit: int = 10) -> HeadCardinality:
    """Cardinality of the series in the head (all live series, with or without samples).

    `chunk_count` counts the head's storage frames plus its open log: VigilOps keeps no
    per-series chunks, so this is the nearest figure to Prometheus's head chunk count.
    """
    head = db.head
    out = HeadCardinality()
    by_name: dict[str, int] = {}
    values_per_label: dict[str, int] = {}
    bytes_per_label: dict[str, int] = {}
    pairs: dict[str, int] = {}
    with head.lock:
        reg = head.registry
        out.num_series = head.num_series()
        out.min_time, out.max_time = head.mint, head.maxt
        out.chunk_count = head.store.frame_count() + (1 if head.store.log_len else 0)
        for name in reg.label_names():
            values = list(reg.label_values_of(name))
            values_per_label[name] = len(values)
            bytes_per_label[name] = sum(len(v.encode("utf-8", "surrogateescape")) for v in values)
            for v in values:
                n = len(reg.postings_for(name, [v]))
                pairs[f"{name}={v}"] = n
                if name == METRIC_NAME:
                    by_name[v] = n
    out.num_label_pairs = len(pairs)
    out.series_count_by_metric_name = _top(by_name, limit)
    out.label_value_count_by_label_name = _top(values_per_label, limit)
    out.memory_in_bytes_by_label_name = _top(bytes_per_label, limit)
    out.series_count_by_label_value_pair = _top(pairs, limit)
    return out

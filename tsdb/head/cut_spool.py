"""The samples a head cut takes, held compressed in label order until their block is written.

A block numbers its series in label order; the head keeps them by reference, in shards of
consecutive references (creation order: a scrape target's series together). Putting a
cut range in label order used to mean holding all of it decoded, twice (24 bytes a sample
for the columns sorted by reference, the same again reordered): the resident set rose by
3.5 GiB for two hours of 107,000 series at 15 s, every two hours.

A `CutSpool` is filled one shard at a time (`add`, as `plan_cut` decodes them). Each shard's
samples are put in label order and split into *buckets* of consecutive label ranks, and
each bucket's part is compressed at once (`encode_frame`). `slices` hands the block writer
the spool as `BlockSlice`s whose reads decode only the buckets they cover, so at most one
shard and one bucket are ever decoded at a time; the spool itself holds the samples as
compressed frames.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..block.writer import BlockSlice, SliceReader
from ..chunks.frame import decode_frame, encode_frame
from ..columns import SampleColumns, ranges
from ..model import MAX_TIME, MIN_TIME, Labels

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

#: Samples a bucket should hold: a read of the block writer (about a million samples)
#: then decodes one or two buckets.
BUCKET_SAMPLES = 1 << 20

#: zstd level of the spooled parts: they live for the seconds a block takes to write.
SPOOL_ZSTD_LEVEL = 1


@dataclass(frozen=True)
class _Part:
    """One shard's samples of one bucket in one frame slice, compressed: series `ranks`
    (ascending) with `counts` samples each."""

    ranks: I64
    counts: I64
    data: bytes


@dataclass(frozen=True)
class _Bucket:
    """A bucket decoded: its series' ranks (ascending), sample offsets, samples."""

    ranks: I64
    offsets: I64
    timestamps: I64
    values: F64


class CutSpool:
    """A cut's samples by (frame slice, label-rank bucket), compressed.

    `refs_by_rank` are the series that may have samples in the cut, in label order, and
    `labels_by_rank` their label sets; `span_ms` is the block's frame slice
    (`BlockWriteOptions.frame_span_ms`); `samples_per_series` an estimate of the cut's
    samples per series, which sizes the buckets.
    """

    def __init__(
        self,
        refs_by_rank: I64,
        labels_by_rank: Sequence[Labels],
        span_ms: int,
        samples_per_series: int,
    ) -> None:
        if len(refs_by_rank) != len(labels_by_rank):
            raise ValueError(f"{len(labels_by_rank)} label sets for {len(refs_by_rank)} series")
        self.refs_by_rank = refs_by_rank
        self.labels_by_rank = labels_by_rank
        size = int(refs_by_rank.max()) + 1 if len(refs_by_rank) else 0
        self._rank_of = np.full(size, -1, dtype=np.int64)
        self._rank_of[refs_by_rank] = np.arange(len(refs_by_rank), dtype=np.int64)
        self.span_ms = span_ms
        self.bucket_series = int(max(64, BUCKET_SAMPLES // max(samples_per_series, 1)))
        self._parts: dict[tuple[int, int], list[_Part]] = {}
        self.num_samples = 0
        self.mint = MAX_TIME
        self.maxt = MIN_TIME
        self._cached: tuple[tuple[int, int], _Bucket] | None = None

    @classmethod
    def for_series(
        cls, refs: I64, labels: Sequence[Labels], span_ms: int, samples_per_series: int
    ) -> CutSpool:
        """A spool for the series `refs` with label sets `labels` (any order)."""
        order = sorted(range(len(labels)), key=labels.__getitem__)
        order_arr = np.asarray(order, dtype=np.int64)
        return cls(
            refs[order_arr] if len(order) else refs[:0],
            [labels[i] for i in order],
            span_ms,
            samples_per_series,
        )

    def add(self, cols: SampleColumns) -> None:
        """Take in samples sorted by (ref, t), one sample per (ref, t), of series that no
        earlier `add` had (a shard's, as a cut decodes them)."""
        if not len(cols):
            return
        refs, starts = cols.series_bounds()
        if int(refs[-1]) >= len(self._rank_of) or (self._rank_of[refs] < 0).any():
            raise ValueError("samples of a series the spool has no labels for")
        ts = cols.timestamps
        self.num_samples += len(cols)
        self.mint = min(self.mint, int(ts.min()))
        self.maxt = max(self.maxt, int(ts.max()))
        slice_no = ts // self.span_ms
        first, last = int(slice_no.min()), int(slice_no.max())
        if first == last:
            self._add_slice(first, self._rank_of[refs], np.diff(starts), cols)
            return
        for k in range(first, last + 1):
            part = cols.select(slice_no == k)
            if len(part):
                r, s = part.series_bounds()
                self._add_slice(k, self._rank_of[r], np.diff(s), part)

    def _add_slice(self, k: int, ranks: I64, counts: I64, cols: SampleColumns) -> None:
        """`ranks` and `counts` of the series of `cols` (in its order, by reference)."""
        order = np.argsort(ranks, kind="stable")
        own_starts = np.cumsum(counts) - counts
        bucket = ranks[order] // self.bucket_series
        cuts = np.concatenate(([0], np.flatnonzero(np.diff(bucket)) + 1, [len(order)]))
        for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist()):
            series = order[a:b]  # one bucket's series, by rank
            c = counts[series]
            idx = ranges(own_starts[series], c)
            data = encode_frame(c, cols.timestamps[idx], cols.values[idx], level=SPOOL_ZSTD_LEVEL)
            key = (k, int(bucket[a]))
            self._parts.setdefault(key, []).append(_Part(ranks[series], c, data))

    def labels_of(self, ranks: I64) -> list[Labels]:
        """The label sets of series given by rank (the keys of `slices`)."""
        return [self.labels_by_rank[i] for i in ranks.tolist()]

    def slices(self) -> Iterator[BlockSlice]:
        """The spool as the block writer reads it: one `BlockSlice` per frame slice, in
        time order, keyed by label rank."""
        for k in sorted({k for k, _ in self._parts}):
            buckets = sorted(j for kk, j in self._parts if kk == k)
            keys_l: list[I64] = []
            counts_l: list[I64] = []
            for j in buckets:
                parts = self._parts[(k, j)]
                ranks = np.concatenate([p.ranks for p in parts])
                order = np.argsort(ranks, kind="stable")
                keys_l.append(ranks[order])
                counts_l.append(np.concatenate([p.counts for p in parts])[order])
            keys = np.concatenate(keys_l)
            counts = np.concatenate(counts_l)
            first_key = np.cumsum([0] + [len(x) for x in keys_l])
            yield BlockSlice(keys, counts, self._reader(k, buckets, first_key))

    def _reader(
        self, k: int, buckets: list[int], first_key: I64
    ) -> SliceReader:
        def read(a: int, b: int) -> tuple[I64, F64]:
            ts_l: list[I64] = []
            vals_l: list[F64] = []
            i = int(np.searchsorted(first_key, a, side="right")) - 1
            while i < len(buckets) and first_key[i] < b:
                dec = self._decoded(k, buckets[i])
                lo = max(a, int(first_key[i])) - int(first_key[i])
                hi = min(b, int(first_key[i + 1])) - int(first_key[i])
                s, e = int(dec.offsets[lo]), int(dec.offsets[hi])
                ts_l.append(dec.timestamps[s:e])
                vals_l.append(dec.values[s:e])
                i += 1
            if len(ts_l) == 1:
                return ts_l[0], vals_l[0]
            return np.concatenate(ts_l), np.concatenate(vals_l)

        return read

    def _decoded(self, k: int, j: int) -> _Bucket:
        if self._cached is not None and self._cached[0] == (k, j):
            return self._cached[1]
        self._cached = None  # let the previous bucket go before decoding the next
        parts = self._parts[(k, j)]
        frames = [decode_frame(p.data, where="head cut spool") for p in parts]
        ranks = np.concatenate([p.ranks for p in parts])
        counts = np.concatenate([p.counts for p in parts])
        ts = np.concatenate([f.timestamps for f in frames])
        vals = np.concatenate([f.values for f in frames])
        del frames
        if len(parts) > 1:
            order = np.argsort(ranks, kind="stable")
            idx = ranges((np.cumsum(counts) - counts)[order], counts[order])
            ranks, counts, ts, vals = ranks[order], counts[order], ts[idx], vals[idx]
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        bucket = _Bucket(ranks, offsets, ts, vals)
        self._cached = ((k, j), bucket)
        return bucket

    def release(self) -> None:
        """Drop the decoded bucket kept for the writer's next read."""
        self._cached = None

    def columns(self) -> tuple[list[Labels], SampleColumns]:
        """Everything spooled, decoded: the label sets of the series present (by ascending
        reference) and their samples sorted by (ref, t). For tests and small cuts."""
        refs_l: list[I64] = []
        ts_l: list[I64] = []
        vals_l: list[F64] = []
        for sl in self.slices():
            if not len(sl.keys):
                continue
            ts, vals = sl.read(0, len(sl.keys))
            refs_l.append(np.repeat(self.refs_by_rank[sl.keys], sl.counts))
            ts_l.append(ts)
            vals_l.append(vals)
        self.release()
        if not refs_l:
            return [], SampleColumns.empty()
        r, t, v = np.concatenate(refs_l), np.concatenate(ts_l), np.concatenate(vals_l)
        order = np.lexsort((t, r))
        cols = SampleColumns(r[order], t[order], v[order])
        present = cols.series_bounds()[0]
        ranks = self._rank_of[present]
        return self.labels_of(ranks), cols

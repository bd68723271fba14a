"""Backfill: build blocks from an OpenMetrics file with explicit timestamps.

This is the job of `promtool tsdb create-blocks-from openmetrics`: samples are grouped by
series across the whole file, cut into block ranges aligned to the block duration, and
each range becomes one block written next to whatever the data directory holds. Overlaps
with existing blocks are merged by the next compaction.

Memory is bounded by the samples of one *bucket*, not by the file (`import_openmetrics`).
A bucket is the part of one block-duration window that lies in one frame slice (see
`BlockWriteOptions.frame_span_ms`), so it belongs to exactly one output block and one
slice of it. While the file is parsed, each parsed piece's samples are appended to
per-bucket spill files in a temporary directory inside the data directory (runs of one
series as (id, length) pairs, timestamps as 4-byte offsets, values: about 12 bytes a
sample); only the label sets stay in memory. Once the whole file has parsed, each block
is written slice by slice: the slice's buckets are read back one at a time, sorted by
(series, t) and checked for duplicates, all but the last written back in sorted order,
and the slice's frames are gathered from them and encoded a batch of series at a time
(`write_block_slices`). The blocks are written into the temporary directory and moved
into the data directory only when all of them are done, so an input error, even a
conflicting duplicate found while writing the last block, leaves the data directory as it
was. On the 24 h x 20 hosts reference file (61.6 M samples, 2 h windows, written as a
24 h block) the peak RSS is about 440 MiB, where holding every sample took 6.4 GiB.

`collect` and `write_blocks` do the same job with every sample in memory; the two write
byte-identical blocks.
"""

from __future__ import annotations

import bisect
import logging
import os
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from .block.meta import BlockMeta
from .block.writer import (
    BlockSlice,
    BlockWriteOptions,
    fsync_dir,
    write_block,
    write_block_slices,
)
from .columns import SampleColumns, concat_time_ordered, ranges
from .compaction_plan import Span, final_layout
from .compiled import compile_loop
from .errors import InputParseError
from .dirlock import try_hold
from .filenames import TMP_SUFFIX
from .model import Labels
from .openmetrics_parse import ParsedChunk, parse_openmetrics

log = logging.getLogger("vigilops.tsdb.importer")

I64 = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]

DEFAULT_BLOCK_DURATION_MS = 2 * 3_600_000

#: Input read and parsed at a time. The parser's peak memory is about six times this
#: (its default, 64 MiB, took 425 MiB of RSS on the 5.9 GB reference file, 16 MiB 180 MiB)
#: and smaller pieces parse no slower: 8.1 CPU-s with 16 MiB, 8.6 with 64 MiB.
PARSE_CHUNK_BYTES = 16 << 20

#: Buckets whose spill files stay open between parsed pieces (three files each).
_OPEN_BUCKETS = 64

#: Series ids are spilled as uint32.
_MAX_SERIES = 2**32 - 1


@dataclass
class ImportReport:
    series: int = 0
    samples: int = 0
    duplicates_dropped: int = 0
    blocks: list[BlockMeta] | None = None


class _Conflict(Exception):
    """Two different values for series `key` (an id or a rank) at `t`."""

    def __init__(self, key: int, t: int) -> None:
        super().__init__(key, t)
        self.key = key
        self.t = t


def _conflict_error(labels: Sequence[Labels], c: _Conflict) -> InputParseError:
    return InputParseError(
        0, f"series {labels[c.key]} has two different values at timestamp {c.t} ms"
    )


def _label_ranks(labels: Sequence[Labels]) -> tuple[I64, list[Labels]]:
    """Each series' position in label order, and the label sets in that order."""
    order = sorted(range(len(labels)), key=labels.__getitem__)
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels), dtype=np.int64)
    return rank, [labels[i] for i in order]


def _sort_checked(keys: I64, ts: I64, vals: F64) -> tuple[I64, I64, F64, int]:
    """Sort samples by (key, t) and drop exact duplicates; returns the sorted columns and
    how many were dropped. Raises `_Conflict` for the first (key, t), in that order, with
    two different values (compared bit for bit)."""
    order = _series_order(keys)
    if order is not None:
        # One array at a time, so at most one extra copy is alive.
        keys = keys[order]
        ts = ts[order]
        vals = vals[order]
        del order
    return _time_sort_checked(keys, ts, vals)


def _time_sort_checked(keys: I64, ts: I64, vals: F64) -> tuple[I64, I64, F64, int]:
    """`_sort_checked` for samples already sorted by key (stably: duplicates in input order)."""
    same_series = keys[1:] == keys[:-1]
    if not ((~same_series) | (ts[1:] >= ts[:-1])).all():
        order = np.lexsort((ts, keys))
        keys = keys[order]
        ts = ts[order]
        vals = vals[order]
        del order
        same_series = keys[1:] == keys[:-1]
    dup = same_series & (ts[1:] == ts[:-1])
    if not dup.any():
        return keys, ts, vals, 0
    bits = vals.view(np.uint64)
    conflict = dup & (bits[1:] != bits[:-1])
    if conflict.any():
        i = int(np.flatnonzero(conflict)[0])
        raise _Conflict(int(keys[i]), int(ts[i]))
    keep = np.ones(len(keys), dtype=bool)
    keep[1:] = ~dup
    return keys[keep], ts[keep], vals[keep], int(dup.sum())


def collect(chunks: Iterable[ParsedChunk]) -> tuple[list[Labels], SampleColumns, int]:
    """Gather parsed chunks into columns sorted by (series, t) with global series ids,
    every sample in memory.

    Returns the label sets (by id), the columns and how many exact duplicates (same
    series, timestamp and value) were dropped. A second, different value for a series and
    timestamp is an error, as it is for promtool.
    """
    ids: dict[Labels, int] = {}
    labels: list[Labels] = []
    gid_parts, ts_parts, val_parts = [], [], []
    for chunk in chunks:
        mapping = np.empty(len(chunk.labels), dtype=np.int64)
        for i, ls in enumerate(chunk.labels):
            gid = ids.get(ls)
            if gid is None:
                gid = ids[ls] = len(labels)
                labels.append(ls)
            mapping[i] = gid
        gid_parts.append(mapping[chunk.series])
        ts_parts.append(chunk.timestamps)
        val_parts.append(chunk.values)
    if not gid_parts:
        return labels, SampleColumns.empty(), 0
    # Number series in label order, so that blocks need no reordering later.
    rank, labels = _label_ranks(labels)
    gids = rank[np.concatenate(gid_parts)]
    del gid_parts
    ts = np.concatenate(ts_parts)
    del ts_parts
    vals = np.concatenate(val_parts)
    del val_parts
    try:
        gids, ts, vals, dropped = _sort_checked(gids, ts, vals)
    except _Conflict as c:
        raise _conflict_error(labels, c) from None
    return labels, SampleColumns(gids, ts, vals), dropped


def _series_order(gids: I64) -> I64 | None:
    """A stable permutation sorting `gids`, or None if already sorted.

    Backfill files are usually series-major: few long runs of one series. Sorting the runs
    and gathering them costs O(n); only files with many short runs pay for a full sort.
    """
    if not len(gids):
        return None
    change = np.flatnonzero(gids[1:] != gids[:-1]) + 1
    starts = np.concatenate(([0], change)).astype(np.int64)
    run_ids = gids[starts]
    if (run_ids[1:] > run_ids[:-1]).all():
        return None
    if len(starts) > len(gids) // 8:
        return np.argsort(gids, kind="stable")
    lengths = np.diff(np.append(starts, len(gids)))
    run_order = np.argsort(run_ids, kind="stable")
    return ranges(starts[run_order], lengths[run_order])


def _block_layout(
    windows: Iterable[int], block_duration_ms: int, compaction_ranges_ms: Sequence[int]
) -> list[tuple[Span, int]]:
    """The blocks (span, level) to write for the aligned windows (numbers) holding samples."""
    spans = [(w * block_duration_ms, (w + 1) * block_duration_ms) for w in sorted(windows)]
    if not spans:
        return []
    if compaction_ranges_ms:
        return final_layout(spans, compaction_ranges_ms, max(end for _, end in spans))
    return [(span, 1) for span in spans]


def _log_block(meta: BlockMeta) -> None:
    log.info(
        "wrote block %s [%d, %d): %d series, %d samples",
        meta.ulid,
        meta.min_time,
        meta.max_time,
        meta.num_series,
        meta.num_samples,
    )


def write_blocks(
    data_dir: str,
    labels: list[Labels],
    cols: SampleColumns,
    block_duration_ms: int = DEFAULT_BLOCK_DURATION_MS,
    options: BlockWriteOptions | None = None,
    compaction_ranges_ms: Sequence[int] = (),
) -> list[BlockMeta]:
    """Write one block per aligned `block_duration_ms` window that holds samples.

    With `compaction_ranges_ms`, write instead the blocks that compacting those windows
    would end with (as `DB.maintain` would, see `compaction_plan.final_layout`), so that
    a backfill is encoded once instead of once per compaction level.
    """
    os.makedirs(data_dir, exist_ok=True)
    if not len(cols):
        return []
    window = cols.timestamps // block_duration_ms
    layout = _block_layout(np.unique(window).tolist(), block_duration_ms, compaction_ranges_ms)
    metas: list[BlockMeta] = []
    for (start, end), level in layout:
        if len(layout) == 1:
            part = cols
        else:
            part = cols.select((cols.timestamps >= start) & (cols.timestamps < end))
        ids, _ = part.series_bounds()
        meta = write_block(
            data_dir,
            [labels[i] for i in ids.tolist()],
            part,
            start,
            end,
            level=level,
            options=options,
        )
        del part
        if meta is not None:
            metas.append(meta)
            _log_block(meta)
    return metas


# ---- the bounded-memory path ---------------------------------------------------------


def _gather_runs_loop(
    src_ts: I64, base: int, src_bits: U64, starts: I64, lengths: I64, ts: I64, bits: U64
) -> None:
    # Unsigned offsets, so that the copies vectorize (see `frame_integrate`).
    p = np.uint64(0)
    for r in range(len(starts)):
        a = np.uint64(starts[r])
        n = np.uint64(lengths[r])
        for k in range(np.uint64(0), n):
            ts[p + k] = src_ts[a + k] + base
            bits[p + k] = src_bits[a + k]
        p += n


#: Copies the runs ``src[starts[r] : starts[r] + lengths[r]]`` one after the other, in
#: one pass: timestamps plus `base` (spilled timestamps are offsets, int32 or int64) and
#: values as their bits.
_gather_runs = compile_loop(
    _gather_runs_loop,
    lambda: (np.zeros(1, np.int32), 0, np.zeros(1, np.uint64), np.zeros(1, np.int64),
             np.ones(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.uint64)),
    lambda: (np.zeros(1, np.int64), 0, np.zeros(1, np.uint64), np.zeros(1, np.int64),
             np.ones(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.uint64)),
)


class _Buckets:
    """Bucket numbers: a bucket is the part of an aligned window of `window_ms` that lies
    in one aligned frame slice of `slice_ms`, so that it belongs to exactly one block and
    one slice of it. When slices are whole multiples of windows, a bucket is a window."""

    def __init__(self, window_ms: int, slice_ms: int) -> None:
        if window_ms < 1 or slice_ms < 1:
            raise ValueError(
                f"block duration {window_ms} ms and frame span {slice_ms} ms must be positive"
            )
        self.window_ms = window_ms
        self.slice_ms = slice_ms
        # Slices a window can touch, plus one: the stride between windows' bucket numbers.
        self.per_window = 1 if slice_ms % window_ms == 0 else window_ms // slice_ms + 2
        longest = window_ms if self.per_window == 1 else min(window_ms, slice_ms)
        #: Timestamps are spilled as offsets from their bucket's start, in 4 bytes if they fit.
        self.offset_dtype = np.dtype(np.int32 if longest <= 2**31 else np.int64)

    def of(self, ts: I64) -> I64:
        w = ts // self.window_ms
        if self.per_window == 1:
            return w
        first = (w * self.window_ms) // self.slice_ms
        out: I64 = w * self.per_window + (ts // self.slice_ms - first)
        return out

    def window(self, bucket: int) -> int:
        return bucket // self.per_window

    def slice(self, bucket: int) -> int:
        w = bucket // self.per_window
        return (w * self.window_ms) // self.slice_ms + bucket % self.per_window

    def start(self, bucket: int) -> int:
        """The bucket's first millisecond."""
        window_start = self.window(bucket) * self.window_ms
        return max(window_start, self.slice(bucket) * self.slice_ms)


def _group_runs(keys: I64) -> tuple[I64 | None, list[tuple[int, int, int]]]:
    """A stable permutation grouping equal `keys` (None if they already are: one run per
    key, ascending), and each key with the [start, end) of its group after it."""
    n = len(keys)
    if not n:
        return None, []
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate(([0], change)).astype(np.int64)
    run_keys = keys[starts]
    lengths = np.diff(np.append(starts, n))
    order: I64 | None = None
    if len(starts) > 1 and not (run_keys[1:] > run_keys[:-1]).all():
        if len(starts) > n // 8:
            order = np.argsort(keys, kind="stable")
            return order, _group_runs(keys[order])[1]
        run_order = np.argsort(run_keys, kind="stable")
        order = ranges(starts[run_order], lengths[run_order])
        run_keys = run_keys[run_order]
        lengths = lengths[run_order]
        starts = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        first = np.concatenate(([True], run_keys[1:] != run_keys[:-1]))
        run_keys = run_keys[first]
        starts = starts[first]
    ends = np.append(starts[1:], n)
    return order, list(zip(run_keys.tolist(), starts.tolist(), ends.tolist()))


def _read_into(path: str, first: int, out: npt.NDArray[np.generic]) -> None:
    """Fill `out` from the file at `path`, starting at element `first` of its type."""
    view = out.data.cast("B")
    with open(path, "rb", buffering=0) as f:
        f.seek(first * out.itemsize)
        got = 0
        while got < len(view):
            n = f.readinto(view[got:])
            if not n:
                raise OSError(f"{path} ends before element {first + len(out)}")
            got += n


class _Spill:
    """The samples parsed so far, on disk, one set of files per bucket: the runs of one
    series in input order (series id in order of first appearance and length, uint32
    pairs), timestamps as offsets from the bucket's start, and values. The label sets
    stay in memory."""

    def __init__(self, directory: str, buckets: _Buckets) -> None:
        self.directory = directory
        self.buckets = buckets
        self.labels: list[Labels] = []
        self.sizes: dict[int, int] = {}
        self._ids: dict[Labels, int] = {}
        self._open: OrderedDict[int, tuple[BinaryIO, BinaryIO, BinaryIO]] = OrderedDict()

    def path(self, bucket: int, column: str) -> str:
        return os.path.join(self.directory, f"{bucket}.{column}")

    def add(self, chunk: ParsedChunk) -> None:
        mapping = np.empty(len(chunk.labels), dtype=np.uint32)
        ids, labels = self._ids, self.labels
        for i, ls in enumerate(chunk.labels):
            gid = ids.get(ls)
            if gid is None:
                if len(labels) >= _MAX_SERIES:
                    raise InputParseError(0, f"more than {_MAX_SERIES} series")
                gid = ids[ls] = len(labels)
                labels.append(ls)
            mapping[i] = gid
        ts, vals, series = chunk.timestamps, chunk.values, chunk.series
        order, groups = _group_runs(self.buckets.of(ts))
        if order is not None:
            ts, vals, series = ts[order], vals[order], series[order]
            del order
        # Runs of one series; a bucket's group starts a new one.
        n = len(series)
        cut = series[1:] != series[:-1]
        group_starts = np.array([a for _, a, _ in groups], dtype=np.int64)
        cut[group_starts[1:] - 1] = True
        run_starts = np.concatenate(([0], np.flatnonzero(cut) + 1)).astype(np.int64)
        runs = np.empty((len(run_starts), 2), dtype=np.uint32)
        runs[:, 0] = mapping[series[run_starts]]
        runs[:, 1] = np.diff(np.append(run_starts, n))
        first_run = np.searchsorted(run_starts, group_starts).tolist() + [len(runs)]
        offset_dtype = self.buckets.offset_dtype
        for g, (bucket, a, b) in enumerate(groups):
            f_runs, f_ts, f_vals = self._files(bucket)
            f_runs.write(runs[first_run[g] : first_run[g + 1]].data)
            offsets = ts[a:b] - self.buckets.start(bucket)
            f_ts.write(offsets.astype(offset_dtype, copy=False).data)
            f_vals.write(vals[a:b].data)
            self.sizes[bucket] = self.sizes.get(bucket, 0) + (b - a)

    def _files(self, bucket: int) -> tuple[BinaryIO, BinaryIO, BinaryIO]:
        files = self._open.get(bucket)
        if files is not None:
            self._open.move_to_end(bucket)
            return files
        if len(self._open) >= _OPEN_BUCKETS:
            _, old = self._open.popitem(last=False)
            for f in old:
                f.close()
        files = (
            open(self.path(bucket, "runs"), "ab"),
            open(self.path(bucket, "ts"), "ab"),
            open(self.path(bucket, "vals"), "ab"),
        )
        self._open[bucket] = files
        return files

    def close(self) -> None:
        """Flush and close the files; the label-to-id dictionary is dropped too."""
        while self._open:
            _, files = self._open.popitem()
            for f in files:
                f.close()
        self._ids = {}

    def take(self, bucket: int) -> tuple[U32, npt.NDArray[np.signedinteger[Any]], F64]:
        """A bucket's runs (as rows of id, length), timestamp offsets and values, in input
        order; its files are deleted."""
        n = self.sizes[bucket]
        out: list[npt.NDArray[Any]] = []
        columns = (("runs", np.uint32), ("ts", self.buckets.offset_dtype), ("vals", np.float64))
        for col, dtype in columns:
            path = self.path(bucket, col)
            count = -1 if col == "runs" else n
            out.append(np.fromfile(path, dtype=dtype, count=count))
            os.remove(path)
        return out[0].reshape(-1, 2), out[1], out[2]


class _SortedBucket:
    """A bucket's samples sorted by (series, t), deduplicated, in memory or in files."""

    def __init__(self, keys: I64, starts: I64, ts: I64, vals: F64) -> None:
        self.keys = keys  # label ranks of the bucket's series, ascending
        self.starts = starts  # where each one's samples start, plus the total
        self._ts: I64 | None = ts
        self._vals: F64 | None = vals
        self._path = ""

    def store(self, path: str) -> None:
        """Move the samples into files at `path` + ``.ts`` / ``.vals``."""
        assert self._ts is not None and self._vals is not None
        self._ts.tofile(path + ".ts")
        self._vals.tofile(path + ".vals")
        self._path = path
        self._ts = self._vals = None

    def remove(self) -> None:
        if self._path:
            for suffix in (".ts", ".vals"):
                os.remove(self._path + suffix)
            self._path = ""

    def columns(self, a: int, b: int) -> tuple[I64, F64]:
        """Samples `a` to `b` (exclusive), as views if in memory."""
        if self._ts is not None and self._vals is not None:
            return self._ts[a:b], self._vals[a:b]
        ts = np.empty(b - a, dtype=np.int64)
        vals = np.empty(b - a, dtype=np.float64)
        self.read_into(a, ts, vals)
        return ts, vals

    def read_into(self, a: int, ts: I64, vals: F64) -> None:
        """Samples `a` to ``a + len(ts)`` into `ts` and `vals`."""
        if self._ts is not None and self._vals is not None:
            ts[:] = self._ts[a : a + len(ts)]
            vals[:] = self._vals[a : a + len(vals)]
            return
        _read_into(self._path + ".ts", a, ts)
        _read_into(self._path + ".vals", a, vals)


def _merged_slice(parts: list[_SortedBucket]) -> BlockSlice:
    """One slice from buckets of consecutive windows (time-ordered, disjoint)."""
    if len(parts) == 1:
        p = parts[0]

        def read_one(a: int, b: int) -> tuple[I64, F64]:
            return p.columns(int(p.starts[a]), int(p.starts[b]))

        return BlockSlice(p.keys, np.diff(p.starts), read_one)
    keys = np.unique(np.concatenate([p.keys for p in parts]))
    counts = np.zeros(len(keys), dtype=np.int64)
    for p in parts:
        counts[np.searchsorted(keys, p.keys)] += np.diff(p.starts)

    def read(a: int, b: int) -> tuple[I64, F64]:
        lo_key, hi_key = keys[a], keys[b - 1]
        where = []
        for p in parts:
            i = int(np.searchsorted(p.keys, lo_key, side="left"))
            j = int(np.searchsorted(p.keys, hi_key, side="right"))
            where.append((i, j))
        total = sum(int(p.starts[j] - p.starts[i]) for p, (i, j) in zip(parts, where))
        src_ts = np.empty(total, dtype=np.int64)
        src_vals = np.empty(total, dtype=np.float64)
        run_keys, run_starts, run_lengths = [], [], []
        at = 0
        for p, (i, j) in zip(parts, where):
            s, e = int(p.starts[i]), int(p.starts[j])
            p.read_into(s, src_ts[at : at + e - s], src_vals[at : at + e - s])
            run_keys.append(p.keys[i:j])
            run_starts.append(p.starts[i:j] - s + at)
            run_lengths.append(np.diff(p.starts[i : j + 1]))
            at += e - s
        # Parts are in time order: a stable sort of the runs by series puts each series'
        # runs one after the other in time order.
        order = np.argsort(np.concatenate(run_keys), kind="stable")
        ts = np.empty(total, dtype=np.int64)
        bits = np.empty(total, dtype=np.uint64)
        _gather_runs(
            src_ts,
            0,
            src_vals.view(np.uint64),
            np.concatenate(run_starts)[order],
            np.concatenate(run_lengths)[order],
            ts,
            bits,
        )
        return ts, bits.view(np.float64)

    return BlockSlice(keys, counts, read)


class _BackfillWriter:
    """Turns the spilled buckets into blocks, one bucket's samples in memory at a time.

    A slice's buckets are sorted one after the other; all but the last are written back
    to files in sorted order, from which the block writer's batches are read.
    """

    def __init__(self, spill: _Spill, options: BlockWriteOptions) -> None:
        self.spill = spill
        self.options = options
        self.rank, self.labels = _label_ranks(spill.labels)
        spill.labels = []
        self.dropped = 0
        self.done: set[int] = set()

    def load(self, bucket: int) -> _SortedBucket:
        """Read, sort and check a bucket (raises `_Conflict`)."""
        runs, offsets, vals = self.spill.take(bucket)
        self.done.add(bucket)
        run_keys = self.rank[runs[:, 0]]
        lengths = runs[:, 1].astype(np.int64)
        del runs
        base = self.spill.buckets.start(bucket)
        if (run_keys[1:] >= run_keys[:-1]).all():
            ts = offsets.astype(np.int64)
            ts += base
        else:
            # Gather the runs in series order, each series' runs in input order.
            order = np.argsort(run_keys, kind="stable")
            starts = np.zeros(len(lengths), dtype=np.int64)
            np.cumsum(lengths[:-1], out=starts[1:])
            run_keys, lengths = run_keys[order], lengths[order]
            ts = np.empty(len(offsets), dtype=np.int64)
            bits = np.empty(len(offsets), dtype=np.uint64)
            _gather_runs(offsets, base, vals.view(np.uint64), starts[order], lengths, ts, bits)
            vals = bits.view(np.float64)
            del bits, order, starts
        del offsets
        keys, ts, vals, dropped = _time_sort_checked(np.repeat(run_keys, lengths), ts, vals)
        self.dropped += dropped
        change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
        starts = np.concatenate(([0], change, [len(keys)])).astype(np.int64)
        return _SortedBucket(keys[starts[:-1]], starts, ts, vals)

    def first_conflict(self, found: _Conflict) -> _Conflict:
        """The conflict `collect` would report: the first in (series, t) order among
        `found` and those in the buckets not read yet."""
        best = found
        for bucket in sorted(set(self.spill.sizes) - self.done):
            try:
                self.load(bucket)
            except _Conflict as c:
                if (c.key, c.t) < (best.key, best.t):
                    best = c
        return best

    def slices(self, buckets: list[int]) -> Iterator[BlockSlice]:
        """The block's slices from its buckets (in time order), each read when needed."""
        by_slice: dict[int, list[int]] = {}
        for b in buckets:
            by_slice.setdefault(self.spill.buckets.slice(b), []).append(b)
        for k in sorted(by_slice):
            members = by_slice[k]
            parts = []
            for i, b in enumerate(members):
                part = self.load(b)
                if i < len(members) - 1:
                    part.store(self.spill.path(b, "sorted"))
                parts.append(part)
            yield _merged_slice(parts)
            for part in parts:
                part.remove()
            del parts, part

    def write(self, parent: str, span: Span, level: int, buckets: list[int]) -> BlockMeta | None:
        labels = self.labels
        return write_block_slices(
            parent,
            self.slices(buckets),
            lambda keys: [labels[i] for i in keys.tolist()],
            span[0],
            span[1],
            level=level,
            options=self.options,
        )


def import_openmetrics(
    source: BinaryIO,
    data_dir: str,
    block_duration_ms: int = DEFAULT_BLOCK_DURATION_MS,
    options: BlockWriteOptions | None = None,
    compaction_ranges_ms: Sequence[int] = (),
    chunk_bytes: int = PARSE_CHUNK_BYTES,
) -> ImportReport:
    """Parse `source` completely (nothing is written if it is malformed), then write
    blocks into `data_dir`: the blocks `write_blocks(collect(...))` would write, byte for
    byte, in bounded memory (see the module's docstring).

    The temporary directory (``import-*.tmp`` in `data_dir`, locked while the import runs;
    `DB.open` deletes it if a crash left it behind) is removed whatever happens; if `data_dir` did not exist and the
    import fails, it is removed too. Raises `InputParseError` for a malformed input or
    two different values for one series and timestamp.
    """
    opts = options or BlockWriteOptions()
    buckets = _Buckets(block_duration_ms, opts.frame_span_ms)
    created = not os.path.isdir(data_dir)
    os.makedirs(data_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix="import-", suffix=TMP_SUFFIX, dir=data_dir)
    # Held while the import runs: a server opening `data_dir` meanwhile leaves the
    # directory alone (`DB.open` removes only leftovers nobody holds).
    owner = try_hold(staging)
    assert owner is not None  # a directory made just now
    ok = False
    try:
        spill_dir = os.path.join(staging, "spill")
        os.mkdir(spill_dir)
        spill = _Spill(spill_dir, buckets)
        try:
            for chunk in parse_openmetrics(source, chunk_bytes):
                spill.add(chunk)
        finally:
            spill.close()
        writer = _BackfillWriter(spill, opts)
        present = sorted(spill.sizes)  # in window order
        windows = {buckets.window(b) for b in present}
        staged: list[BlockMeta] = []
        for span, level in _block_layout(windows, block_duration_ms, compaction_ranges_ms):
            # The block's windows' buckets: numbers from first * per_window on.
            lo = bisect.bisect_left(present, span[0] // block_duration_ms * buckets.per_window)
            hi = bisect.bisect_left(present, span[1] // block_duration_ms * buckets.per_window)
            members = present[lo:hi]
            try:
                meta = writer.write(staging, span, level, members)
            except _Conflict as c:
                raise _conflict_error(writer.labels, writer.first_conflict(c)) from None
            if meta is not None:
                staged.append(meta)
        # Every block is complete: only now do they appear in the data directory.
        for meta in staged:
            os.rename(os.path.join(staging, meta.ulid), os.path.join(data_dir, meta.ulid))
            _log_block(meta)
        if staged:
            fsync_dir(data_dir)
        ok = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        os.close(owner)
        if created and not ok:
            try:
                os.rmdir(data_dir)
            except OSError:
                pass
    return ImportReport(
        series=len(writer.labels),
        samples=sum(m.num_samples for m in staged),
        duplicates_dropped=writer.dropped,
        blocks=staged,
    )

"""Writing a block: sorted series, an index, and the samples as frames, atomically.

The directory is written under a temporary name, every file and the directory are
fsynced, and only then is it renamed to its ULID: a crash leaves either no block or a
complete one (left-over temporary directories are deleted when the database opens).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..chunks.frame import encode_frame
from ..filenames import BLOCK_CHUNKS, BLOCK_INDEX, BLOCK_META, TMP_SUFFIX
from ..columns import SampleColumns, ranges
from ..model import Labels
from .index import FRAME_DTYPE, FrameTable, write_index
from .meta import BlockMeta, new_ulid

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class BlockWriteOptions:
    #: Frames never span a multiple of this (aligned to the epoch), so a query over a short
    #: range of a long block decodes only the slices it touches.
    frame_span_ms: int = 6 * HOUR_MS
    #: Series are grouped into a frame until it holds about this many samples: large
    #: enough for zstd to find repetition across series, small enough to decode quickly.
    target_frame_samples: int = 1 << 16
    #: A frame holding this many samples already ends where the metric name changes: a
    #: query for one metric then decompresses little of its neighbours (a frame is
    #: decompressed whole, however few of its series are wanted).
    min_frame_samples: int = 1 << 14
    zstd_level: int = 9
    #: Frames are encoded on this many threads (zstd and most numpy work release the GIL).
    threads: int = 2
    #: Samples gathered and encoded at a time (whole frames, so a batch may exceed it by
    #: one frame): 16 MiB of columns, and about 16 frames to share among the threads.
    batch_samples: int = 1 << 20


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def order_series(labels: Sequence[Labels], cols: SampleColumns) -> tuple[list[Labels], SampleColumns]:
    """Renumber series 0..S-1 in label order.

    `cols` is sorted by (ref, t) and `labels[i]` belongs to its i-th distinct ref; the result
    is sorted by (series id, t) with ids that are positions in the returned label list.
    Columns already in label order are renumbered without copying samples.
    """
    refs, starts = cols.series_bounds()
    if len(refs) != len(labels):
        raise ValueError(f"{len(labels)} label sets for {len(refs)} series")
    order = sorted(range(len(labels)), key=labels.__getitem__)
    order_arr = np.asarray(order, dtype=np.int64)
    counts = np.diff(starts)
    new_ids = np.repeat(np.arange(len(order), dtype=np.int64), counts[order_arr])
    if (order_arr[1:] > order_arr[:-1]).all():
        return list(labels), SampleColumns(new_ids, cols.timestamps, cols.values)
    idx = ranges(starts[:-1][order_arr], counts[order_arr])
    return [labels[i] for i in order], SampleColumns(
        new_ids, cols.timestamps[idx], cols.values[idx]
    )


#: Reads the timestamps and values of the series ``keys[a:b]`` of a `BlockSlice`.
SliceReader = Callable[[int, int], tuple[I64, F64]]


@dataclass(frozen=True)
class BlockSlice:
    """The samples of a block that fall in one frame slice (``t // frame_span_ms``),
    handed to `write_block_slices` to be read a range of series at a time.

    `keys` identify the series present in the slice, ascending, and must sort like the
    series' label sets (a block numbers its series in label order); any integers do, for
    example positions in a sorted label list. ``counts[i]`` is how many samples series
    ``keys[i]`` has in the slice. ``read(a, b)`` returns the timestamps and values of the
    series ``keys[a:b]`` in the slice, sorted by (series, t), one sample per (series, t);
    the writer uses them only until its next call of `read`.
    """

    keys: I64
    counts: I64
    read: SliceReader


#: Samples of consecutive series of a slice: (keys, counts, timestamps, values), the
#: samples sorted by (series, t).
Chunk = tuple[I64, I64, I64, F64]


@dataclass(frozen=True)
class StreamedSlice:
    """A frame slice handed over as it is read, when the series it holds and their sample
    counts are not known in advance (a merge of blocks learns them only by decoding):
    `chunks` are `Chunk`s in ascending key order, each series in one chunk, the same
    keys as `BlockSlice`'s. The writer keeps only the chunk it is given and the series
    of a frame not complete yet."""

    chunks: Iterable[Chunk]


AnySlice = BlockSlice | StreamedSlice


def columns_slice(cols: SampleColumns) -> BlockSlice:
    """The slice of columns sorted by (series key, t) that all lie in one frame slice:
    every series' samples are one run, so a range of series is a range of samples."""
    keys, starts = cols.series_bounds()
    ts_all, vals_all = cols.timestamps, cols.values

    def read(a: int, b: int) -> tuple[I64, F64]:
        lo, hi = int(starts[a]), int(starts[b])
        return ts_all[lo:hi], vals_all[lo:hi]

    return BlockSlice(keys, np.diff(starts), read)


def _column_slices(
    cols: SampleColumns, num_series: int, opts: BlockWriteOptions
) -> list[BlockSlice]:
    """The slices of columns sorted by (series id, t) with ids 0..S-1, read from memory."""
    span = opts.frame_span_ms
    slice_no = cols.timestamps // span
    first_slice = int(slice_no.min())
    slice_no -= first_slice
    n_slices = int(slice_no.max()) + 1
    ts_all, vals_all = cols.timestamps, cols.values
    if n_slices == 1:
        return [columns_slice(cols)]
    counts = np.bincount(
        slice_no * num_series + cols.refs, minlength=n_slices * num_series
    ).reshape(n_slices, num_series)
    # Where each (slice, series) run starts: the series' first sample plus its samples in
    # earlier slices (samples are in time order within a series).
    series_start = np.zeros(num_series, dtype=np.int64)
    np.cumsum(counts.sum(axis=0)[:-1], out=series_start[1:])
    run_start = series_start + np.cumsum(counts, axis=0) - counts
    slices: list[BlockSlice] = []
    for k in range(n_slices):
        row = counts[k]
        present = np.flatnonzero(row).astype(np.int64)
        if not len(present):
            continue
        c = row[present].astype(np.int64)
        rs = run_start[k, present].astype(np.int64)

        def read(a: int, b: int, c: I64 = c, rs: I64 = rs) -> tuple[I64, F64]:
            idx = ranges(rs[a:b], c[a:b])
            return ts_all[idx], vals_all[idx]

        slices.append(BlockSlice(present, c, read))
    return slices


def write_block(
    parent: str,
    labels: Sequence[Labels],
    cols: SampleColumns,
    mint: int,
    maxt: int,
    level: int = 1,
    sources: Sequence[str] = (),
    options: BlockWriteOptions | None = None,
    ulid: str | None = None,
) -> BlockMeta | None:
    """Write a block covering [mint, maxt) and return its meta (None if `cols` is empty).

    `cols` is sorted by (ref, t), deduplicated, within [mint, maxt); `labels[i]` belongs to
    the i-th distinct ref.
    """
    opts = options or BlockWriteOptions()
    if not len(cols):
        return None
    labels_sorted, cols = order_series(labels, cols)
    return write_block_slices(
        parent,
        _column_slices(cols, len(labels_sorted), opts),
        lambda keys: [labels_sorted[i] for i in keys.tolist()],
        mint,
        maxt,
        level,
        sources,
        opts,
        ulid,
    )


def write_block_slices(
    parent: str,
    slices: Iterable[AnySlice],
    labels_of: Callable[[I64], Sequence[Labels]],
    mint: int,
    maxt: int,
    level: int = 1,
    sources: Sequence[str] = (),
    options: BlockWriteOptions | None = None,
    ulid: str | None = None,
) -> BlockMeta | None:
    """Write a block covering [mint, maxt) from its frame slices, in time order, and
    return its meta (None, and nothing left behind, if the slices hold no sample).

    Samples are read and encoded about `BlockWriteOptions.batch_samples` at a time, so
    memory stays bounded however large the block is; `slices` may be a generator that
    produces each slice only when the previous one is written. ``labels_of(keys)`` gives
    the label sets of series keys present in the slices (ascending, distinct): for a
    chunk's keys while it is written (frames end at metric names, see
    `BlockWriteOptions.min_frame_samples`) and for all of them at the end. The result is
    byte for byte what `write_block` writes for the same samples. If `slices` or a reader
    raises, the partial block is removed and the exception propagates.
    """
    opts = options or BlockWriteOptions()
    ulid = ulid or new_ulid()
    final = os.path.join(parent, ulid)
    tmp = final + TMP_SUFFIX
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        with ThreadPoolExecutor(max(opts.threads, 1)) as pool:
            rows, frame_keys, samples = _write_frames(
                os.path.join(tmp, BLOCK_CHUNKS), slices,
                lambda keys: [ls.name for ls in labels_of(keys)], opts, pool,
            )
        if not samples:
            shutil.rmtree(tmp, ignore_errors=True)
            return None
        present = np.unique(np.concatenate(frame_keys))
        frame_series = np.searchsorted(present, np.concatenate(frame_keys)).astype(np.uint32)
        labels = labels_of(present)
        if len(labels) != len(present):
            raise ValueError(f"{len(labels)} label sets for {len(present)} series")
        write_index(os.path.join(tmp, BLOCK_INDEX), labels, FrameTable(rows, frame_series))
        meta = BlockMeta(
            ulid=ulid,
            min_time=mint,
            max_time=maxt,
            num_series=len(labels),
            num_samples=samples,
            num_frames=len(rows),
            level=level,
            sources=list(sources) or [ulid],
        )
        with open(os.path.join(tmp, BLOCK_META), "w") as mf:
            mf.write(meta.to_json())
            mf.flush()
            os.fsync(mf.fileno())
        fsync_dir(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.rename(tmp, final)
    fsync_dir(parent)
    return meta


def _write_frames(
    path: str,
    slices: Iterable[AnySlice],
    names_of: Callable[[I64], Sequence[str]],
    opts: BlockWriteOptions,
    pool: ThreadPoolExecutor,
) -> tuple[npt.NDArray[np.void], list[I64], int]:
    """Encode the slices' frames into the chunks file at `path`. Returns the frame table
    rows, each frame's series keys and the number of samples."""
    row_list: list[tuple[int, int, int, int, int, int]] = []
    frame_keys: list[I64] = []
    samples = 0
    offset = 0
    series_pos = 0

    def encode(frame: Chunk) -> bytes:
        return encode_frame(frame[1], frame[2], frame[3], level=opts.zstd_level)

    with open(path, "wb") as f:

        def write(frames: list[Chunk]) -> None:
            nonlocal samples, offset, series_pos
            if len(frames) > 1 and opts.threads > 1:
                blobs = list(pool.map(encode, frames))
            else:
                blobs = [encode(frame) for frame in frames]
            for (keys, _, ts, _), blob in zip(frames, blobs):
                row_list.append(
                    (int(ts.min()), int(ts.max()), offset, len(blob), series_pos, len(keys))
                )
                frame_keys.append(keys)
                f.write(blob)
                offset += len(blob)
                series_pos += len(keys)
                samples += len(ts)

        for sl in slices:
            cutter = _FrameCutter(opts.target_frame_samples, opts.min_frame_samples, names_of)
            chunks = sl.chunks if isinstance(sl, StreamedSlice) else _chunks_of(sl, opts)
            for chunk in chunks:
                write(cutter.feed(chunk))
                del chunk
            write(cutter.finish())
            del sl, chunks  # before the next slice is produced, so that two are never alive
        f.flush()
        os.fsync(f.fileno())
    rows = np.array(row_list, dtype=FRAME_DTYPE)
    return rows, frame_keys, samples


def _chunks_of(sl: BlockSlice, opts: BlockWriteOptions) -> Iterator[Chunk]:
    """A `BlockSlice` read runs of consecutive series at a time, about `batch_samples`
    per read (`_FrameCutter` makes the frames)."""
    if not len(sl.keys):
        return
    batch = (np.cumsum(sl.counts) - sl.counts) // max(opts.batch_samples, 1)
    cuts = np.concatenate(([0], np.flatnonzero(np.diff(batch)) + 1, [len(sl.keys)])).tolist()
    for first, last in zip(cuts[:-1], cuts[1:]):
        ts, vals = sl.read(first, last)
        yield sl.keys[first:last], sl.counts[first:last], ts, vals


class _FrameCutter:
    """Cuts a slice's chunks into frames as they come: runs of consecutive series that end
    once they hold `target` samples, or at least `least` samples and the next series has
    another metric name (`names_of` gives the names of a chunk's keys)."""

    def __init__(self, target: int, least: int, names_of: Callable[[I64], Sequence[str]]) -> None:
        self.target = target
        self.least = least
        self.names_of = names_of
        self.filled = 0  # samples in the frame being filled
        self.name: str | None = None  # the metric name of its last series
        self.pending: list[Chunk] = []  # its series so far

    def feed(self, chunk: Chunk) -> list[Chunk]:
        """Take a chunk; return the frames it completes."""
        keys, counts, ts, vals = chunk
        if int(counts.sum()) != len(ts) or len(vals) != len(ts) or len(counts) != len(keys):
            raise ValueError(f"slice reader gave {len(ts)} samples, expected {int(counts.sum())}")
        if not len(keys):
            return []
        names = self.names_of(keys)
        at = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=at[1:])
        done: list[Chunk] = []
        first = 0  # the chunk's first series not in `pending` yet
        for i, (c, name) in enumerate(zip(counts.tolist(), names, strict=True)):
            if self.filled and (
                self.filled >= self.target or (self.filled >= self.least and name != self.name)
            ):
                if i > first:
                    x, y = int(at[first]), int(at[i])
                    self.pending.append((keys[first:i], counts[first:i], ts[x:y], vals[x:y]))
                done.append(_joined(self.pending))
                self.pending, self.filled, first = [], 0, i
            self.filled += c
            self.name = name
        if first < len(keys):  # copied, so that the chunk need not stay alive for it
            x = int(at[first])
            self.pending.append((keys[first:].copy(), counts[first:].copy(), ts[x:].copy(), vals[x:].copy()))
        return done

    def finish(self) -> list[Chunk]:
        """The last frame."""
        done = [_joined(self.pending)] if self.pending else []
        self.pending, self.filled, self.name = [], 0, None
        return done


def _joined(chunks: list[Chunk]) -> Chunk:
    if len(chunks) == 1:
        return chunks[0]
    return (
        np.concatenate([c[0] for c in chunks]),
        np.concatenate([c[1] for c in chunks]),
        np.concatenate([c[2] for c in chunks]),
        np.concatenate([c[3] for c in chunks]),
    )

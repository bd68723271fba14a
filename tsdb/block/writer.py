"""Writing a block: sorted series, an index, and the samples as frames, atomically.

The directory is written under a temporary name, every file and the directory are
fsynced, and only then is it renamed to its ULID: a crash leaves either no block or a
complete one (left-over temporary directories are deleted when the database opens).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
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

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class BlockWriteOptions:
    #: Frames never span a multiple of this (aligned to the epoch), so a query over a short
    #: range of a long block decodes only the slices it touches.
    frame_span_ms: int = 6 * HOUR_MS
    #: Series are grouped into a frame until it holds about this many samples: large
    #: enough for zstd to find repetition across series, small enough to decode quickly.
    target_frame_samples: int = 1 << 16
    zstd_level: int = 9
    #: Frames are encoded on this many threads (zstd and most numpy work release the GIL).
    threads: int = 2


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


@dataclass(frozen=True)
class _FramePlan:
    ids: I64  # series ids in the frame, ascending
    counts: I64  # samples of each
    index: I64  # positions of the frame's samples in the block's columns


def _frame_layout(cols: SampleColumns, num_series: int, opts: BlockWriteOptions) -> list[_FramePlan]:
    """Cut the block into frames: per time slice, runs of consecutive series holding about
    `target_frame_samples` samples. `cols` is sorted by (series id, t), ids 0..S-1."""
    span = opts.frame_span_ms
    slice_no = cols.timestamps // span
    first_slice = int(slice_no.min())
    slice_no -= first_slice
    n_slices = int(slice_no.max()) + 1
    counts = np.bincount(
        slice_no * num_series + cols.refs, minlength=n_slices * num_series
    ).reshape(n_slices, num_series)
    # Where each (slice, series) run starts: the series' first sample plus its samples in
    # earlier slices (samples are in time order within a series).
    series_start = np.zeros(num_series, dtype=np.int64)
    np.cumsum(counts.sum(axis=0)[:-1], out=series_start[1:])
    run_start = series_start + np.cumsum(counts, axis=0) - counts
    plans: list[_FramePlan] = []
    target = opts.target_frame_samples
    for k in range(n_slices):
        row = counts[k]
        present = np.flatnonzero(row)
        c = row[present]
        group = (np.cumsum(c) - c) // target
        bounds = np.flatnonzero(np.diff(group)) + 1
        for ids, cnt in zip(np.split(present, bounds), np.split(c, bounds)):
            ids64 = ids.astype(np.int64)
            cnt64 = cnt.astype(np.int64)
            plans.append(_FramePlan(ids64, cnt64, ranges(run_start[k, ids64], cnt64)))
    return plans


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
    plans = _frame_layout(cols, len(labels_sorted), opts)
    ts_all, vals_all = cols.timestamps, cols.values

    def encode(plan: _FramePlan) -> bytes:
        return encode_frame(
            plan.counts, ts_all[plan.index], vals_all[plan.index], level=opts.zstd_level
        )

    if opts.threads > 1 and len(plans) > 1:
        with ThreadPoolExecutor(opts.threads) as pool:
            blobs = list(pool.map(encode, plans))
    else:
        blobs = [encode(p) for p in plans]

    ulid = ulid or new_ulid()
    final = os.path.join(parent, ulid)
    tmp = final + TMP_SUFFIX
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    rows = np.zeros(len(plans), dtype=FRAME_DTYPE)
    offset = 0
    series_pos = 0
    with open(os.path.join(tmp, BLOCK_CHUNKS), "wb") as f:
        for i, (plan, blob) in enumerate(zip(plans, blobs)):
            frame_ts = ts_all[plan.index]
            rows[i] = (
                int(frame_ts.min()),
                int(frame_ts.max()),
                offset,
                len(blob),
                series_pos,
                len(plan.ids),
            )
            f.write(blob)
            offset += len(blob)
            series_pos += len(plan.ids)
        f.flush()
        os.fsync(f.fileno())
    frame_series = (
        np.concatenate([p.ids for p in plans]).astype(np.uint32)
        if plans
        else np.zeros(0, dtype=np.uint32)
    )
    write_index(os.path.join(tmp, BLOCK_INDEX), labels_sorted, FrameTable(rows, frame_series))
    meta = BlockMeta(
        ulid=ulid,
        min_time=mint,
        max_time=maxt,
        num_series=len(labels_sorted),
        num_samples=len(cols),
        num_frames=len(plans),
        level=level,
        sources=list(sources) or [ulid],
    )
    with open(os.path.join(tmp, BLOCK_META), "w") as mf:
        mf.write(meta.to_json())
        mf.flush()
        os.fsync(mf.fileno())
    fsync_dir(tmp)
    os.rename(tmp, final)
    fsync_dir(parent)
    return meta

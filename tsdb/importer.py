"""Backfill: build blocks from an OpenMetrics file with explicit timestamps.

This is the job of `promtool tsdb create-blocks-from openmetrics`: samples are grouped by
series across the whole file, cut into block ranges aligned to the block duration, and
each range becomes one block written next to whatever the data directory holds. Overlaps
with existing blocks are merged by the next compaction.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from .block.meta import BlockMeta
from .block.writer import BlockWriteOptions, write_block
from .columns import SampleColumns, ranges
from .compaction_plan import final_layout
from .errors import InputParseError
from .model import Labels
from .openmetrics_parse import ParsedChunk, parse_openmetrics

log = logging.getLogger("vigilops.tsdb.importer")

DEFAULT_BLOCK_DURATION_MS = 2 * 3_600_000


@dataclass
class ImportReport:
    series: int = 0
    samples: int = 0
    duplicates_dropped: int = 0
    blocks: list[BlockMeta] | None = None


def collect(chunks: Iterable[ParsedChunk]) -> tuple[list[Labels], SampleColumns, int]:
    """Gather parsed chunks into columns sorted by (series, t) with global series ids.

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
    rank = np.empty(len(labels), dtype=np.int64)
    rank[sorted(range(len(labels)), key=labels.__getitem__)] = np.arange(len(labels))
    labels = sorted(labels)
    gids = rank[np.concatenate(gid_parts)]
    del gid_parts
    ts = np.concatenate(ts_parts)
    del ts_parts
    vals = np.concatenate(val_parts)
    del val_parts
    order = _series_order(gids)
    if order is not None:
        # One array at a time, so at most one extra copy is alive.
        gids = gids[order]
        ts = ts[order]
        vals = vals[order]
        del order
    same_series = gids[1:] == gids[:-1]
    if not ((~same_series) | (ts[1:] >= ts[:-1])).all():
        order = np.lexsort((ts, gids))
        gids = gids[order]
        ts = ts[order]
        vals = vals[order]
        del order
        same_series = gids[1:] == gids[:-1]
    dup = same_series & (ts[1:] == ts[:-1])
    dropped = 0
    if dup.any():
        bits = vals.view(np.uint64)
        conflict = dup & (bits[1:] != bits[:-1])
        if conflict.any():
            i = int(np.flatnonzero(conflict)[0])
            raise InputParseError(
                0,
                f"series {labels[int(gids[i])]} has two different values at timestamp "
                f"{int(ts[i])} ms",
            )
        keep = np.ones(len(gids), dtype=bool)
        keep[1:] = ~dup
        dropped = int(dup.sum())
        gids, ts, vals = gids[keep], ts[keep], vals[keep]
    return labels, SampleColumns(gids, ts, vals), dropped


def _series_order(gids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64] | None:
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
    present = np.unique(window).tolist()
    spans = [(w * block_duration_ms, (w + 1) * block_duration_ms) for w in present]
    if compaction_ranges_ms:
        layout = final_layout(spans, compaction_ranges_ms, max(end for _, end in spans))
    else:
        layout = [(span, 1) for span in spans]
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
            log.info(
                "wrote block %s [%d, %d): %d series, %d samples",
                meta.ulid,
                meta.min_time,
                meta.max_time,
                meta.num_series,
                meta.num_samples,
            )
    return metas


def import_openmetrics(
    source: BinaryIO,
    data_dir: str,
    block_duration_ms: int = DEFAULT_BLOCK_DURATION_MS,
    options: BlockWriteOptions | None = None,
    compaction_ranges_ms: Sequence[int] = (),
) -> ImportReport:
    """Parse `source` completely (nothing is written if it is malformed), then write
    blocks into `data_dir`."""
    labels, cols, dropped = collect(parse_openmetrics(source))
    metas = write_blocks(data_dir, labels, cols, block_duration_ms, options, compaction_ranges_ms)
    return ImportReport(
        series=len(labels), samples=len(cols), duplicates_dropped=dropped, blocks=metas
    )

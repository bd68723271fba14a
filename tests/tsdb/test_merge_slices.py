"""Block compaction merges one frame slice of time at a time; the result must be what
merging the whole range at once gives: same series, same samples bit for bit, the later
block winning on an equal (series, t), tombstones applied."""

from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vigilops.tsdb.block.reader import BlockReader
from vigilops.tsdb.block.writer import BlockWriteOptions, write_block
from vigilops.tsdb.columns import SampleColumns, concat_columns
from vigilops.tsdb.db import DB, DBOptions
from vigilops.tsdb.model import Labels

HOUR = 3_600_000
SPAN = 2 * HOUR  # frame slices of 2 h, so that a 12 h merge has six of them


def _labels(i: int) -> Labels:
    return Labels({"__name__": f"m{i % 3}", "i": str(i)})


@st.composite
def _blocks(draw: st.DrawFn) -> list[tuple[int, int, list[tuple[int, int, int]], list[tuple[int, int, int]]]]:
    """Blocks as (mint, maxt, samples (series, t, value), tombstones (series, lo, hi))."""
    out = []
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, 5)) * 2 * HOUR
        length = draw(st.sampled_from([2, 4, 6])) * HOUR
        end = min(start + length, 12 * HOUR)
        samples = draw(st.lists(
            st.tuples(st.integers(0, 6), st.integers(start, end - 1).map(lambda t: t - t % 60_000), st.integers(0, 5)),
            max_size=25,
        ))
        tombs = draw(st.lists(st.tuples(st.integers(0, 6), st.integers(start, end), st.integers(0, HOUR)), max_size=2))
        out.append((start, end, samples, [(s, lo, lo + w) for s, lo, w in tombs]))
    return out


def _write(parent: str, mint: int, maxt: int, samples: list[tuple[int, int, int]], opts: BlockWriteOptions) -> str | None:
    dedup: dict[tuple[int, int], float] = {}
    for s, t, v in samples:
        dedup[(s, t)] = float(v) + s / 8
    if not dedup:
        return None
    keys = sorted(dedup)
    cols = SampleColumns(
        np.array([k[0] for k in keys], dtype=np.int64),
        np.array([k[1] for k in keys], dtype=np.int64),
        np.array([dedup[k] for k in keys], dtype=np.float64),
    )
    present = sorted({k[0] for k in keys})
    remap = {s: i for i, s in enumerate(present)}
    cols = SampleColumns(np.array([remap[s] for s in cols.refs.tolist()], dtype=np.int64), cols.timestamps, cols.values)
    meta = write_block(parent, [_labels(s) for s in present], cols, mint, maxt, 1, (), opts)
    return None if meta is None else os.path.join(parent, meta.ulid)


def _whole_range(group: list[BlockReader]) -> dict[Labels, list[tuple[int, int]]]:
    """The merge of the whole range at once (how compaction merged before slicing)."""
    index: dict[Labels, int] = {}
    labels: list[Labels] = []
    parts = []
    for b in group:
        cols = b.samples(b.index.all_postings(), b.mint, b.maxt - 1)
        if not len(cols):
            continue
        gids = []
        for sid in cols.refs.tolist():
            ls = b.labels(sid)
            if ls not in index:
                index[ls] = len(labels)
                labels.append(ls)
            gids.append(index[ls])
        parts.append(SampleColumns(np.array(gids, dtype=np.int64), cols.timestamps, cols.values))
    merged = concat_columns(parts)
    out: dict[Labels, list[tuple[int, int]]] = {}
    for r, t, v in zip(merged.refs.tolist(), merged.timestamps.tolist(), merged.values.view(np.uint64).tolist()):
        out.setdefault(labels[r], []).append((t, v))
    return out


def _read(block: BlockReader) -> dict[Labels, list[tuple[int, int]]]:
    cols = block.samples(block.index.all_postings(), block.mint, block.maxt - 1)
    out: dict[Labels, list[tuple[int, int]]] = {}
    for r, t, v in zip(cols.refs.tolist(), cols.timestamps.tolist(), cols.values.view(np.uint64).tolist()):
        out.setdefault(block.labels(r), []).append((t, v))
    return out


@settings(max_examples=60, deadline=None)
@given(_blocks())
def test_a_sliced_merge_equals_the_whole_range_merge(blocks) -> None:
    path = tempfile.mkdtemp(prefix="vigilops-merge-")
    try:
        opts = BlockWriteOptions(frame_span_ms=SPAN, threads=1)
        staging = os.path.join(path, "staging")
        os.makedirs(staging)
        written = []
        for mint, maxt, samples, tombs in blocks:
            p = _write(staging, mint, maxt, samples, opts)
            if p is None:
                continue
            b = BlockReader(p)
            for s, lo, hi in tombs:
                sid = [i for i in range(b.index.num_series) if b.labels(i) == _labels(s)]
                if sid:
                    b.add_tombstones(np.array(sid, dtype=np.int64), lo, hi)
            written.append(BlockReader(p))
        if not written:
            return
        want = _whole_range(written)
        db = DB.open(os.path.join(path, "db"), DBOptions(block_write=opts))
        try:
            db._merge(written)
            merged = [b for b in db.blocks]
            got: dict[Labels, list[tuple[int, int]]] = {}
            for b in merged:
                for ls, rows in _read(b).items():
                    got.setdefault(ls, []).extend(rows)
            assert got == want
            assert len(merged) <= 1
        finally:
            db.close()
    finally:
        shutil.rmtree(path, ignore_errors=True)

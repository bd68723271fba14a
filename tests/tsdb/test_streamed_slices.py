"""A frame slice handed to the block writer as a stream of chunks (what a merge of blocks
produces, not knowing its series' counts in advance) gives byte for byte the block that
the same samples give read a range of series at a time, however the stream is cut."""

from __future__ import annotations

import os
import tempfile

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vigilops.tsdb.block.meta import new_ulid
from vigilops.tsdb.block.reader import BlockReader
from vigilops.tsdb.block.writer import (
    BlockWriteOptions,
    StreamedSlice,
    write_block,
    write_block_slices,
)
from vigilops.tsdb.columns import SampleColumns
from vigilops.tsdb.model import Labels

SPAN = 1_000


def _files(path: str) -> dict[str, bytes]:
    out = {}
    for name in ("chunks", "index"):
        with open(os.path.join(path, name), "rb") as f:
            out[name] = f.read()
    return out


@settings(max_examples=120, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=1, max_size=40),  # samples per series
    st.integers(0, 2**32 - 1),
    st.sampled_from([1, 5, 16, 1 << 16]),  # target frame samples
    st.sampled_from([1, 4, 1 << 14]),  # least samples of a frame that ends at a new name
    st.integers(1, 8),  # series per metric name
    st.lists(st.integers(1, 12), min_size=1, max_size=5),  # chunk sizes, in series
)
def test_a_streamed_slice_writes_the_block_a_read_slice_writes(
    per_series: list[int], seed: int, target: int, least: int, per_name: int, chunk_sizes: list[int]
) -> None:
    rng = np.random.default_rng(seed)
    counts = np.array([c for c in per_series if c], dtype=np.int64)
    if not len(counts):
        return
    n = len(counts)
    refs = np.repeat(np.arange(n, dtype=np.int64), counts)
    ts = np.concatenate([np.sort(rng.choice(SPAN, c, replace=False)) for c in counts.tolist()])
    vals = rng.standard_normal(len(ts)).round(3)
    labels = [Labels({"__name__": f"m{i // per_name:03d}", "i": f"{i:03d}"}) for i in range(n)]
    opts = BlockWriteOptions(frame_span_ms=SPAN, target_frame_samples=target, min_frame_samples=least,
                             batch_samples=7)
    at = np.concatenate(([0], np.cumsum(counts)))

    def chunks():  # type: ignore[no-untyped-def]
        pos, k = 0, 0
        while pos < n:
            end = min(n, pos + chunk_sizes[k % len(chunk_sizes)])
            a, b = int(at[pos]), int(at[end])
            yield np.arange(pos, end, dtype=np.int64), counts[pos:end], ts[a:b], vals[a:b]
            pos, k = end, k + 1

    with tempfile.TemporaryDirectory() as d:
        streamed, whole = new_ulid(), new_ulid()
        write_block_slices(d, [StreamedSlice(chunks())], lambda keys: [labels[i] for i in keys.tolist()],
                           0, SPAN, options=opts, ulid=streamed)
        write_block(d, labels, SampleColumns(refs, ts, vals), 0, SPAN, options=opts, ulid=whole)
        assert _files(os.path.join(d, streamed)) == _files(os.path.join(d, whole))


def test_a_chunk_whose_counts_disagree_with_its_samples_is_refused() -> None:
    bad = (np.array([0]), np.array([3]), np.array([1, 2]), np.array([1.0, 2.0]))
    with tempfile.TemporaryDirectory() as d:
        try:
            write_block_slices(d, [StreamedSlice([bad])], lambda keys: [], 0, SPAN)
        except ValueError as exc:
            assert "expected 3" in str(exc)
        else:
            raise AssertionError("expected a ValueError")
        assert os.listdir(d) == []  # nothing left behind


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 6), st.integers(1, 30)), min_size=1, max_size=12),
    st.integers(4, 60),  # target frame samples
    st.integers(1, 30),  # least samples of a frame that ends at a new name
)
def test_frames_end_at_the_target_or_at_a_new_metric_name(
    metrics: list[tuple[int, int]], target: int, least: int
) -> None:
    # Each metric: (series, samples per series), all in one frame slice.
    labels, counts = [], []
    for m, (series, samples) in enumerate(metrics):
        for i in range(series):
            labels.append(Labels({"__name__": f"m{m:02d}", "i": f"{i:02d}"}))
            counts.append(samples)
    counts_a = np.array(counts, dtype=np.int64)
    refs = np.repeat(np.arange(len(counts_a), dtype=np.int64), counts_a)
    ts = np.concatenate([np.arange(c, dtype=np.int64) for c in counts])
    opts = BlockWriteOptions(frame_span_ms=SPAN, target_frame_samples=target, min_frame_samples=least)
    with tempfile.TemporaryDirectory() as d:
        meta = write_block(d, labels, SampleColumns(refs, ts, np.ones(len(ts))), 0, SPAN, options=opts)
        assert meta is not None
        reader = BlockReader(os.path.join(d, meta.ulid))
        try:
            rows, frame_series = reader.index.frames.rows, reader.index.frames.series
            cuts = [int(r) for r in rows["series_start"]] + [len(labels)]
        finally:
            reader.close()
    assert list(frame_series) == list(range(len(labels)))  # every series once, in order
    for a, b in zip(cuts[:-1], cuts[1:]):
        filled = 0
        for i in range(a, b):  # no series inside a frame where the frame should have ended
            if i > a:
                assert filled < target and not (filled >= least and labels[i].name != labels[i - 1].name)
            filled += counts[i]
        if b < len(labels):  # and it did end where it should
            assert filled >= target or (filled >= least and labels[b].name != labels[b - 1].name)

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
    st.lists(st.integers(1, 12), min_size=1, max_size=5),  # chunk sizes, in series
)
def test_a_streamed_slice_writes_the_block_a_read_slice_writes(
    per_series: list[int], seed: int, target: int, chunk_sizes: list[int]
) -> None:
    rng = np.random.default_rng(seed)
    counts = np.array([c for c in per_series if c], dtype=np.int64)
    if not len(counts):
        return
    n = len(counts)
    refs = np.repeat(np.arange(n, dtype=np.int64), counts)
    ts = np.concatenate([np.sort(rng.choice(SPAN, c, replace=False)) for c in counts.tolist()])
    vals = rng.standard_normal(len(ts)).round(3)
    labels = [Labels({"__name__": "m", "i": f"{i:03d}"}) for i in range(n)]
    opts = BlockWriteOptions(frame_span_ms=SPAN, target_frame_samples=target, batch_samples=7)
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

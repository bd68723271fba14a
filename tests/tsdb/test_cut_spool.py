"""The head cut's spool: shards of samples by reference in, the block writer's label-ordered
slices out, bit for bit, however small the buckets; and a head cut writes the same block
as writing its samples at once."""

from __future__ import annotations

import os
from unittest import mock

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vigilops.tsdb.block.reader import BlockReader
from vigilops.tsdb.block.meta import new_ulid
from vigilops.tsdb.block.writer import write_block, write_block_slices
from vigilops.tsdb.columns import SampleColumns, sort_dedup
from vigilops.tsdb.db import DB
from vigilops.tsdb.head import cut_spool as spool_mod
from vigilops.tsdb.head.cut_spool import CutSpool
from vigilops.tsdb.model import Labels

SPAN = 1_000


def _labels(ref: int, name_of: int) -> Labels:
    return Labels([("__name__", f"m{name_of}"), ("i", f"{ref:05d}")])


@settings(max_examples=120, deadline=None)
@given(
    st.integers(1, 60),  # series
    st.integers(0, 2**32 - 1),  # seed
    st.sampled_from([1, 2, 3, 50]),  # samples per series per slice (mean)
    st.sampled_from([1, 3, 64, 10_000]),  # bucket size in samples
    st.integers(1, 4),  # shards
)
def test_slices_give_back_every_sample_in_label_order(
    n: int, seed: int, per: int, bucket_samples: int, n_shards: int
) -> None:
    rng = np.random.default_rng(seed)
    refs_all = np.sort(rng.choice(1_000, n, replace=False)).astype(np.int64)
    labels = [_labels(int(r), int(rng.integers(0, 5))) for r in refs_all]
    # Samples across three frame slices; some series absent from some slices.
    r = np.repeat(refs_all, rng.integers(0, 3 * per + 1, n))
    t = rng.integers(0, 3 * SPAN, len(r))
    v = rng.standard_normal(len(r))
    v[rng.random(len(r)) < 0.1] = np.nan
    cols = sort_dedup(r, t, v)
    with mock.patch.object(spool_mod, "BUCKET_SAMPLES", bucket_samples):
        spool = CutSpool.for_series(refs_all, labels, SPAN, per)
    # One shard at a time, by reference ranges.
    edges = np.searchsorted(cols.refs, np.quantile(refs_all, np.linspace(0, 1, n_shards + 1)[1:-1]))
    bounds = [0, *edges.tolist(), len(cols)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        spool.add(SampleColumns(cols.refs[a:b], cols.timestamps[a:b], cols.values[a:b]))
    assert spool.num_samples == len(cols)

    rank_of = {int(ref): k for k, ref in enumerate(spool.refs_by_rank.tolist())}
    assert [labels[list(refs_all).index(x)] for x in spool.refs_by_rank.tolist()] == sorted(labels)
    got: list[tuple[int, int, int, int]] = []
    first_ts = []
    for sl in spool.slices():
        last_key = -1
        for keys, counts, ts, vals in sl.chunks:
            assert len(keys) and keys[0] > last_key and (np.diff(keys) > 0).all()
            assert counts.min() > 0 and int(counts.sum()) == len(ts) == len(vals)
            last_key = int(keys[-1])
            rr = np.repeat(keys, counts)
            got.extend(zip(rr.tolist(), ts.tolist(), vals.view(np.uint64).tolist(), (ts // SPAN).tolist()))
            first_ts.append(int(ts[0]) // SPAN)
    want = [
        (rank_of[int(x)], int(y), int(z), int(y) // SPAN)
        for x, y, z in zip(cols.refs, cols.timestamps, cols.values.view(np.uint64))
    ]
    # Slices in time order, each in (rank, t) order.
    assert got == sorted(want, key=lambda w: (w[3], w[0], w[1]))
    assert first_ts == sorted(first_ts)
    labels_out, back = spool.columns()
    assert np.array_equal(back.refs, cols.refs) and np.array_equal(back.timestamps, cols.timestamps)
    assert np.array_equal(back.values.view(np.uint64), cols.values.view(np.uint64))
    assert labels_out == [labels[list(refs_all).index(x)] for x in np.unique(cols.refs).tolist()]


def test_a_sample_of_a_series_without_labels_is_refused() -> None:
    spool = CutSpool.for_series(np.array([3, 7]), [_labels(3, 0), _labels(7, 0)], SPAN, 10)
    cols = SampleColumns(np.array([5]), np.array([1]), np.array([1.0]))
    try:
        spool.add(cols)
    except ValueError as exc:
        assert "no labels" in str(exc)
    else:
        raise AssertionError("expected a ValueError")


def test_a_head_cut_writes_the_block_that_writing_its_samples_at_once_writes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The block of a head cut (through the spool, several buckets and shards) is byte
    for byte the block `write_block` makes of the same samples."""
    db = DB.open(str(tmp_path / "db"))
    try:
        n = 5_000  # three shards of 2,048
        ls = [_labels(k, k % 37) for k in range(n)]
        refs = db.appender().refs(ls)
        t0 = 1_700_000_000_000 // 7_200_000 * 7_200_000
        rng = np.random.default_rng(1)
        for k in range(3 * 60):  # 3 h at one-minute steps
            a = db.appender()
            a.append(refs, t0 + k * 60_000, rng.standard_normal(n).round(2))
            a.commit()
        db.head.drain_seals()
        with mock.patch.object(spool_mod, "BUCKET_SAMPLES", 50_000):
            spool = db.head.cut(t0 + 7_200_000)
        labels, cols = spool.columns()
        assert len(labels) == n and len(cols) == n * 120
        assert len(spool._parts) > 3  # several buckets
        ulid, ulid2 = new_ulid(), new_ulid()
        write_block_slices(str(tmp_path), spool.slices(), spool.labels_of, t0, t0 + 7_200_000, ulid=ulid)
        write_block(str(tmp_path), labels, cols, t0, t0 + 7_200_000, ulid=ulid2)
        for f in ("chunks", "index"):
            with open(os.path.join(tmp_path, ulid, f), "rb") as x, open(os.path.join(tmp_path, ulid2, f), "rb") as y:
                assert x.read() == y.read(), f
        BlockReader(os.path.join(tmp_path, ulid)).close()
    finally:
        db.close()

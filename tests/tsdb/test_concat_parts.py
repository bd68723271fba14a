"""`concat_time_ordered` joining decoded parts and deferred ones (frames decoded straight
into the joined columns), against sorting all samples by (id, time)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigilops.tsdb import columns
from vigilops.tsdb.chunks.frame import decode_frame, encode_frame, open_frame
from vigilops.tsdb.columns import DeferredPart, Part, concat_time_ordered


def _frame_part(
    rng: np.random.Generator, ids: list[int], t0: int, deferred: bool, empty_runs: bool = False
) -> tuple[Part | DeferredPart, list[tuple[int, int, float]]]:
    """One time slice of series `ids`: as a frame (deferred) or decoded arrays; with
    `empty_runs`, decoded parts may give some ids no sample (a frame read over a range
    that misses a series' samples)."""
    counts = rng.integers(0 if empty_runs and not deferred else 1, 6, len(ids)).astype(np.int64)
    ts = np.concatenate([t0 + np.sort(rng.choice(1000, c, replace=False)) for c in counts]).astype(np.int64)
    kinds = rng.integers(0, 3, len(ts))
    vs = np.where(kinds == 0, rng.integers(0, 100, len(ts)) / 10, np.where(kinds == 1, rng.normal(size=len(ts)), np.nan))
    samples = [(i, int(t), float(v)) for i, c, t_, v_ in zip(ids, counts, np.split(ts, np.cumsum(counts)[:-1]),
                                                     np.split(vs, np.cumsum(counts)[:-1])) for t, v in zip(t_, v_)]
    id_arr = np.array(ids, dtype=np.int64)
    if deferred:
        frame = encode_frame(counts, ts, vs)
        opened = open_frame(frame)
        return DeferredPart(id_arr, opened.counts, opened.write_into), samples
    return (id_arr, counts, ts, vs), samples


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 8), st.booleans(), st.booleans())
def test_join_equals_sorting_samples(seed: int, slices: int, shuffled_ids: bool, empty_runs: bool) -> None:
    rng = np.random.default_rng(seed)
    parts: list[Part | DeferredPart] = []
    expected: list[tuple[int, int, float]] = []
    for k in range(slices):
        ids = sorted(rng.choice(40, int(rng.integers(1, 12)), replace=False).tolist())
        if shuffled_ids:  # the head's parts: ids renumbered, not ascending
            ids = rng.permutation(ids).tolist()
        deferred = bool(rng.integers(0, 2)) and not shuffled_ids
        part, samples = _frame_part(rng, ids, 1000 * k, deferred, empty_runs)
        parts.append(part)
        expected.extend(samples)
    expected.sort(key=lambda s: (s[0], s[1]))
    cols = concat_time_ordered(parts)
    ids, counts = cols.series_runs()
    assert ids.tolist() == sorted({i for i, _, _ in expected}) and counts.all()  # no empty run left
    got = list(zip(cols.refs.tolist(), cols.timestamps.tolist(), cols.values.tolist()))
    assert [(i, t) for i, t, _ in got] == [(i, t) for i, t, _ in expected]
    assert np.array_equal(cols.values.view(np.uint64), np.array([v for *_, v in expected]).view(np.uint64))


def test_many_deferred_parts_join_on_worker_threads_identically(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    made = [_frame_part(rng, list(range(0, 300, 1 + k % 3)), 1000 * k, deferred=k % 4 != 1) for k in range(12)]
    calls: list[int] = []
    real = columns.ordered_map
    monkeypatch.setattr(columns, "ordered_map", lambda fn, items: calls.append(len(items)) or real(fn, items))
    joined = concat_time_ordered([p for p, _ in made])
    assert calls == [12]
    monkeypatch.setattr(columns, "_PARALLEL_PARTS", 10**9)
    serial = concat_time_ordered([p for p, _ in made])
    assert np.array_equal(joined.refs, serial.refs) and np.array_equal(joined.timestamps, serial.timestamps)
    assert np.array_equal(joined.values.view(np.uint64), serial.values.view(np.uint64))


def test_deferred_frame_writes_what_decoding_gives() -> None:
    rng = np.random.default_rng(5)
    counts = rng.integers(1, 50, 30).astype(np.int64)
    ts = np.concatenate([np.sort(rng.choice(10**6, c, replace=False)) for c in counts]).astype(np.int64)
    vs = rng.normal(size=len(ts))
    frame = encode_frame(counts, ts, vs)
    select = np.array([2, 3, 11, 29], dtype=np.int64)
    opened = open_frame(frame, select=select)
    dest = np.array([100, 0, 400, 250], dtype=np.int64)  # any placement
    out_ts = np.full(500, -1, dtype=np.int64)
    out_vs = np.zeros(500)
    opened.write_into(dest, out_ts, out_vs)
    d = decode_frame(frame, select=select)
    for j, (a, c) in enumerate(zip(d.offsets()[:-1].tolist(), d.counts.tolist())):
        assert np.array_equal(out_ts[dest[j] : dest[j] + c], d.timestamps[a : a + c])
        assert np.array_equal(out_vs[dest[j] : dest[j] + c], d.values[a : a + c])
    assert (out_ts >= 0).sum() == int(d.counts.sum())
    with pytest.raises(IndexError):
        opened.write_into(np.array([0, 0, 0, 490], dtype=np.int64), out_ts, out_vs)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 6)), max_size=20), st.booleans())
def test_order_check_from_runs_equals_the_per_sample_one(samples: list[tuple[int, int]], as_runs: bool) -> None:
    refs = np.array([r for r, _ in samples], dtype=np.int64)
    ts = np.array([t for _, t in samples], dtype=np.int64)
    cols = columns.SampleColumns(refs, ts, np.zeros(len(ts)))
    if as_runs and len(refs) and (np.diff(refs) >= 0).all():
        ids, first = np.unique(refs, return_index=True)
        counts = np.diff(np.append(first, len(refs)))
        cols = columns.SampleColumns.from_runs(ids, counts, ts, np.zeros(len(ts)))
        assert np.array_equal(cols.refs, refs)  # expanded on demand
    assert columns.strictly_ordered_columns(cols) == columns.strictly_ordered(refs, ts)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-5, 30), max_size=40), st.booleans())
def test_sorted_unique_equals_numpys(values: list[int], presorted: bool) -> None:
    a = np.array(sorted(set(values)) if presorted else values, dtype=np.int64)
    assert columns.sorted_unique(a.copy()).tolist() == np.unique(a).tolist()

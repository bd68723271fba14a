"""The head's open log: compact pages must give back exactly what was appended."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vigilops.tsdb.head.log import OpenLog

_T = st.integers(min_value=-(2**62), max_value=2**62)


def _append_all(log: OpenLog, batches: list[tuple[list[int], list[int], list[float]]]) -> None:
    for refs, ts, vals in batches:
        r = np.array(refs, dtype=np.int64)
        t = np.array(ts, dtype=np.int64)
        v = np.array(vals, dtype=np.float64)
        log.add(r, t, v, int(t.min()), int(t.max()))


@st.composite
def _batches(draw: st.DrawFn) -> list[tuple[list[int], list[int], list[float]]]:
    out = []
    for _ in range(draw(st.integers(1, 6))):
        n = draw(st.integers(1, 40))
        base = draw(_T)
        spread = draw(st.sampled_from([0, 15_000, 2**31, 2**40]))
        ts = [base + draw(st.integers(-spread, spread)) for _ in range(n)]
        ts = [min(max(t, -(2**63)), 2**63 - 1) for t in ts]
        refs = [draw(st.integers(0, 2**31 - 1)) for _ in range(n)]
        vals = [draw(st.floats(allow_nan=True)) for _ in range(n)]
        out.append((refs, ts, vals))
    return out


@settings(max_examples=200, deadline=None)
@given(_batches(), st.sampled_from([1, 3, 16, 1024]))
def test_appended_samples_come_back_in_arrival_order(batches, page_samples):
    log = OpenLog(page_samples=page_samples)
    _append_all(log, batches)
    cols = log.view().columns()
    assert cols.refs.tolist() == [r for b in batches for r in b[0]]
    assert cols.timestamps.tolist() == [t for b in batches for t in b[1]]
    want = np.array([v for b in batches for v in b[2]], dtype=np.float64)
    assert cols.values.view(np.uint64).tolist() == want.view(np.uint64).tolist()
    assert len(log) == len(want)


def test_a_view_is_unchanged_by_later_appends_and_by_detach():
    log = OpenLog(page_samples=4)
    _append_all(log, [([1, 2, 3], [10, 10, 10], [1.0, 2.0, 3.0])])
    view = log.view()
    _append_all(log, [([1, 2, 3], [25, 25, 25], [4.0, 5.0, 6.0])])
    assert view.columns().timestamps.tolist() == [10, 10, 10]
    part = log.detach()
    assert len(log) == 0 and log.view().columns().refs.tolist() == []
    _append_all(log, [([9], [40], [7.0])])
    assert part.columns().values.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert part.bounds() == (10, 25)


def test_samples_far_apart_in_time_get_pages_of_their_own():
    log = OpenLog()
    t0 = 1_700_000_000_000
    far = t0 + 40 * 86_400_000  # beyond an int32 millisecond offset from t0
    _append_all(log, [([1], [t0], [1.0]), ([1], [far], [2.0]), ([2, 3], [t0 - 5, far + 5], [3.0, 4.0])])
    part = log.view()
    assert len(part.pages) >= 3
    assert part.columns().timestamps.tolist() == [t0, far, t0 - 5, far + 5]
    assert part.bounds() == (t0 - 5, far + 5)


def test_select_refs_and_sorted():
    log = OpenLog(page_samples=2)
    _append_all(log, [([5, 3, 5], [20, 20, 10], [1.0, 2.0, 3.0]), ([5], [20], [9.0])])
    part = log.view()
    got = [(int(r), int(t), float(v)) for c in part.select_refs(np.array([5])) for r, t, v in
           zip(c.refs, c.timestamps, c.values)]
    assert got == [(5, 20, 1.0), (5, 10, 3.0), (5, 20, 9.0)]
    s = part.sorted()
    # (5, 20) arrived twice: the later value wins.
    assert list(zip(s.refs.tolist(), s.timestamps.tolist(), s.values.tolist())) == [
        (3, 20, 2.0), (5, 10, 3.0), (5, 20, 9.0)]


def test_batches_alternating_far_apart_in_time_make_the_store_seal() -> None:
    from vigilops.tsdb.head.store import SampleStore

    store = SampleStore(seal_samples_per_series=16)
    t0 = 1_700_000_000_000
    far = t0 + 40 * 86_400_000
    sealed = False
    for k in range(40):
        t = t0 + k if k % 2 == 0 else far + k
        store.add(np.array([1, 2], dtype=np.int64), np.array([t, t], dtype=np.int64), np.array([1.0, 2.0]))
        if store.should_seal(live_series=2):
            sealed = True
            break
    # 2 samples a batch never reach 4,096 samples; the pages they started do reach the bound.
    assert sealed and store.log_len < 4096

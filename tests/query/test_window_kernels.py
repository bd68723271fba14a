"""The compiled window loops against plain searches, on arbitrary series and step grids."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vigilops.query.window_kernels import window_bounds

timestamps = st.lists(st.integers(-50, 50), max_size=12).map(lambda xs: sorted(set(xs)))


@settings(max_examples=300, deadline=None)
@given(
    series=st.lists(timestamps, max_size=5),
    eval_ts=st.lists(st.integers(-70, 70), max_size=8),
    range_ms=st.integers(0, 40),
)
def test_window_bounds_agree_with_binary_search(
    series: list[list[int]], eval_ts: list[int], range_ms: int
) -> None:
    # Step grids need not be increasing (instant `@` drifts, subquery edges): the loop
    # must restart its pointers rather than assume order.
    lengths = np.array([len(s) for s in series], dtype=np.int64)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    flat = np.array([t for s in series for t in s], dtype=np.int64)
    grid = np.array(eval_ts, dtype=np.int64)
    lo, hi = window_bounds(flat, starts, ends, grid, range_ms)
    assert lo.shape == hi.shape == (len(series), len(eval_ts))
    for i, s in enumerate(series):
        ts = np.array(s, dtype=np.int64)
        for j, t in enumerate(eval_ts):
            assert lo[i, j] == starts[i] + np.searchsorted(ts, t - range_ms, side="left")
            assert hi[i, j] == starts[i] + np.searchsorted(ts, t, side="right")

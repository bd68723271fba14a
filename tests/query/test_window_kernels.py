"""The compiled window loops against plain searches, on arbitrary series and step grids."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vigilops.query.window_kernels import window_bounds
import vigilops.tsdb.workers as workers_module

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


@settings(max_examples=100, deadline=None)
@given(
    series=st.lists(st.lists(st.integers(0, 9), max_size=15), min_size=1, max_size=7),
    steps=st.integers(1, 9),
    range_ms=st.integers(1, 40),
    is_counter=st.booleans(),
)
def test_grids_split_over_threads_give_the_same_windows_and_rates(
    series: list[list[int]], steps: int, range_ms: int, is_counter: bool
) -> None:
    """Rows split into pieces (one per worker): each piece finds the counter resets of its
    own samples only, and lands in its own rows."""
    import pytest

    from vigilops.query import window_kernels as wk

    lengths = np.array([len(s) for s in series], dtype=np.int64)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    ts = np.concatenate([np.arange(len(s), dtype=np.int64) * 5 for s in series] or [np.zeros(0, np.int64)])
    vs = np.array([float(v) for s in series for v in s])
    grid = np.arange(steps, dtype=np.int64) * 7

    def run() -> tuple[np.ndarray, ...]:  # type: ignore[type-arg]
        lo, hi = wk.window_bounds(ts, starts, ends, grid, range_ms)
        out, present = wk.extrapolated_rate_grid(ts, vs, starts, ends, grid, range_ms, range_ms / 1000, is_counter, True)
        return lo, hi, out, present

    whole = run()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(wk, "_PARALLEL_WINDOWS", 1)
        mp.setattr(workers_module, "workers", lambda: 3)
        pieces = min(3 * workers_module.PIECES_PER_THREAD, len(series))
        assert len(wk.row_ranges(len(series), len(series) * steps)) == pieces
        split = run()
    for a, b in zip(whole, split):
        assert np.array_equal(a.view(np.uint8), b.view(np.uint8))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["stale", "nan", "inf", "num"]), max_size=40), st.booleans())
def test_has_stale_is_any_of_the_stale_mask(kinds: list[str], readonly: bool) -> None:
    from vigilops.query.window_kernels import has_stale
    from vigilops.tsdb.model import STALE_NAN, stale_mask

    pick = {"stale": STALE_NAN, "nan": float("nan"), "inf": float("inf"), "num": 1.5}
    vs = np.array([pick[k] for k in kinds], dtype=np.float64)
    vs.flags.writeable = not readonly
    assert has_stale(vs) == bool(stale_mask(vs).any()) == ("stale" in kinds)

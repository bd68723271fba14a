"""The compiled (GIL-releasing) run repetition gives what np.repeat gives."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from vigilops.tsdb.columns import repeat_runs


@given(st.lists(st.tuples(st.integers(-(2**63), 2**63 - 1), st.integers(0, 5)), max_size=40))
def test_repeat_runs_is_np_repeat(runs: list[tuple[int, int]]) -> None:
    ids = np.array([r[0] for r in runs], dtype=np.int64)
    counts = np.array([r[1] for r in runs], dtype=np.int64)
    got = repeat_runs(ids, counts)
    assert got.dtype == np.int64
    assert got.tolist() == np.repeat(ids, counts).tolist()

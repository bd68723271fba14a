"""`range_result`: a range query's vector as the API's matrix: series in label order,
only their present points, series without any left out; `Matrix.flat` holds the same
points back to back."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vigilops.query.engine import range_result
from vigilops.query.values import Scalar, Vector
from vigilops.tsdb.model import Labels


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 6), st.integers(1, 7), st.integers(0, 2**32 - 1), st.booleans())
def test_points_per_series_in_label_order(series: int, steps: int, seed: int, full: bool) -> None:
    rng = np.random.default_rng(seed)
    labels = [Labels({"i": f"{k}"}) for k in rng.permutation(series).tolist()]
    present = np.ones((series, steps), bool) if full else rng.random((series, steps)) < 0.6
    values = rng.standard_normal((series, steps))
    times = np.arange(steps, dtype=np.int64) * 1000 + 5
    out = range_result(Vector(labels, values, present), times)
    want = sorted(
        (labels[i], times[present[i]].tolist(), values[i][present[i]].tolist())
        for i in range(series) if present[i].any()
    )
    got = [(ls, t.tolist(), v.tolist()) for ls, t, v in zip(out.labels, out.timestamps, out.values, strict=True)]
    assert got == want
    assert out.flat is not None
    assert out.flat[0].tolist() == [t for _, ts, _ in want for t in ts]
    assert out.flat[1].tolist() == [v for _, _, vs in want for v in vs]


def test_a_scalar_is_one_series_without_labels() -> None:
    times = np.array([1000, 2000], dtype=np.int64)
    out = range_result(Scalar(np.array([1.5, 2.5])), times)
    assert out.labels == [Labels()] and out.timestamps[0].tolist() == [1000, 2000]
    assert out.values[0].tolist() == [1.5, 2.5]

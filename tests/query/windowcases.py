"""Helpers of the range-function tests: windows built from sample lists, the samples of one
window as a reference implementation sees them, and float equality with NaN == NaN."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from vigilops.query.values import Windows, build_windows
from vigilops.tsdb.model import Labels, is_stale

Sample = tuple[int, float]


def make_windows(series: Sequence[Sequence[Sample]], times: Sequence[int], range_ms: int) -> Windows:
    labels = [Labels({"__name__": "m", "i": str(i)}) for i in range(len(series))]
    ts = [np.array([t for t, _ in s], dtype=np.int64) for s in series]
    vs = [np.array([v for _, v in s], dtype=np.float64) for s in series]
    return build_windows(labels, ts, vs, np.array(times, dtype=np.int64), range_ms)


def window_of(samples: Sequence[Sample], t: int, range_ms: int) -> list[Sample]:
    return [(ts, v) for ts, v in samples if t - range_ms <= ts <= t and not is_stale(v)]


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b

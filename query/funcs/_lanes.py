"""Lanes: the windows of a range vector that hold enough samples, walked column by column.

A `Windows` value describes ``N × S`` windows over flat sample arrays. Range functions
reduce each window that holds at least a minimum number of samples (one for most, two for
`rate` and friends) and leave the others absent. `Lanes` lists those windows as parallel
1-D arrays, longest first, so that a sequential per-window algorithm (a compensated sum, a
running mean, Holt-Winters) runs as one numpy operation per sample *position*: at position
`k` the windows still holding a `k`-th sample are a prefix ``[:m]`` (`Lanes.columns`). The
work is the number of samples in all windows plus one Python iteration per position of the
longest window, never one per window or per step.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from vigilops.query.values import (
    Float64Array,
    Int64Array,
    Vector,
    Windows,
    drop_metric_name,
)

#: Largest padded 2-D gather (rows × longest window) built at once, in elements.
GATHER_BUDGET = 1 << 22


class Lanes:
    """The windows of `win` holding at least `min_samples` samples, sorted by length
    (descending, stable), with the series (`rows`) and step (`cols`) each came from."""

    def __init__(self, win: Windows, min_samples: int = 1) -> None:
        counts = win.counts
        self.win = win
        self.mask = counts >= min_samples
        rows, cols = np.nonzero(self.mask)
        n = counts[rows, cols]
        order = np.argsort(-n, kind="stable")
        self.rows: Int64Array = rows[order].astype(np.int64)
        self.cols: Int64Array = cols[order].astype(np.int64)
        self.n: Int64Array = n[order].astype(np.int64)
        self.lo: Int64Array = win.lo[self.rows, self.cols].astype(np.int64)
        self.hi: Int64Array = self.lo + self.n
        self.max_len = int(self.n[0]) if len(self.n) else 0
        # _active[k]: how many lanes have more than k samples.
        per_len = np.bincount(self.n, minlength=self.max_len + 1)
        self._active: Int64Array = len(self.n) - np.cumsum(per_len)

    def __len__(self) -> int:
        return len(self.n)

    def columns(self, start: int = 0) -> Iterator[tuple[int, int]]:
        """``(k, m)`` for every sample position `k` from `start`: lanes ``[:m]`` hold one."""
        for k in range(start, self.max_len):
            yield k, int(self._active[k])

    def values_at(self, k: int, m: int) -> Float64Array:
        """The `k`-th sample value of lanes ``[:m]``."""
        out: Float64Array = self.win.vs[self.lo[:m] + k]
        return out

    def times_at(self, k: int, m: int) -> Int64Array:
        """The `k`-th sample timestamp of lanes ``[:m]``."""
        out: Int64Array = self.win.ts[self.lo[:m] + k]
        return out

    def first(self) -> Float64Array:
        out: Float64Array = self.win.vs[self.lo]
        return out

    def last(self) -> Float64Array:
        out: Float64Array = self.win.vs[self.hi - 1]
        return out

    def per_step(self, values: Float64Array | Int64Array) -> np.ndarray:
        """A per-step array (a scalar argument, the step times) looked up for each lane."""
        return values[self.cols]

    def gather_chunks(self) -> Iterator[tuple[slice, Float64Array]]:
        """The samples of consecutive lane slices as padded 2-D arrays (rows = lanes,
        columns = positions, padding NaN), each within `GATHER_BUDGET` elements."""
        start = 0
        while start < len(self.n):
            width = int(self.n[start])
            rows = max(1, GATHER_BUDGET // max(width, 1))
            stop = min(len(self.n), start + rows)
            pos = np.arange(width, dtype=np.int64)
            idx = self.lo[start:stop, None] + pos[None, :]
            inside = pos[None, :] < self.n[start:stop, None]
            block = np.where(inside, self.win.vs[np.where(inside, idx, 0)], np.nan)
            yield slice(start, stop), block
            start = stop

    def to_vector(self, values: Float64Array, keep_name: bool = False) -> Vector:
        """One output series per input series: `values[i]` (lane order) at lane `i`'s
        window, absent where a window had too few samples."""
        win = self.win
        out = np.zeros(self.mask.shape, dtype=np.float64)
        out[self.rows, self.cols] = values
        labels = list(win.labels) if keep_name else drop_metric_name(win.labels)
        return Vector(labels, out, self.mask.copy())

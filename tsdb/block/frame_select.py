"""Which frames of a block a read needs, and where the wanted series sit in each.

A read asks for series ids (sorted) over a time range. `select_frames` answers, in one
compiled pass over the frame table: the frames that overlap the range and hold a wanted
id, whether each lies wholly inside the range, and per frame the positions of the wanted
ids among its series (and those ids). Done with numpy, that was a dozen array operations
per frame; each kind costs tens of microseconds on its first call after the process has
idled, which is the state a dashboard's query finds the server in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..compiled import compile_helper, compile_loop
from .index import FrameTable

I64 = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]


@dataclass(frozen=True)
class FrameColumns:
    """The frame table's columns as contiguous arrays, for the compiled pass."""

    mint: I64
    maxt: I64
    series_start: I64
    series_count: I64
    series: U32

    @staticmethod
    def of(frames: FrameTable) -> FrameColumns:
        rows = frames.rows

        # Copies (writable, whatever the table's memory), so the compiled loop always
        # gets the argument types it was compiled for.
        def column(name: str) -> I64:
            return np.array(rows[name], dtype=np.int64)

        return FrameColumns(
            column("mint"), column("maxt"), column("series_start"), column("series_count"),
            np.array(frames.series, dtype=np.uint32),
        )


@dataclass(frozen=True)
class FrameSelection:
    """Frame ``frames[k]`` holds the wanted ids ``found[offsets[k]:offsets[k + 1]]`` at
    positions ``positions[offsets[k]:offsets[k + 1]]`` of its series; ``whole[k]``: the
    frame lies wholly inside the range."""

    frames: list[int]
    whole: list[bool]
    offsets: list[int]
    positions: I64
    found: I64


@compile_helper
def _lower_bound(a: I64 | U32, lo: int, hi: int, x: int) -> int:
    """The first position in ``a[lo:hi]`` (sorted) holding x or more (hi if none)."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _select_frames_loop(
    ids: I64, f_mint: I64, f_maxt: I64, f_start: I64, f_count: I64, f_series: U32,
    mint: int, maxt: int,
    frames: I64, whole: I64, offsets: I64, positions: I64, found: I64, sizes: I64,
) -> None:
    n_ids = len(ids)
    nf = 0
    k = 0
    offsets[0] = 0
    for i in range(len(f_mint)):
        c = f_count[i]
        if f_maxt[i] < mint or f_mint[i] > maxt or c == 0 or n_ids == 0:
            continue
        s0 = f_start[i]
        end = s0 + c
        if ids[n_ids - 1] < f_series[s0] or ids[0] > f_series[end - 1]:
            continue
        # Walk both sorted lists, leaping over runs of either by bisection.
        j = _lower_bound(ids, 0, n_ids, f_series[s0])
        p = s0
        start_k = k
        while j < n_ids and p < end:
            a = ids[j]
            b = f_series[p]
            if a == b:
                positions[k] = p - s0
                found[k] = a
                k += 1
                j += 1
                p += 1
            elif a < b:
                j = _lower_bound(ids, j + 1, n_ids, b)
            else:
                p = _lower_bound(f_series, p + 1, end, a)
        if k > start_k:
            frames[nf] = i
            whole[nf] = 1 if f_mint[i] >= mint and f_maxt[i] <= maxt else 0
            nf += 1
            offsets[nf] = k
    sizes[0] = nf
    sizes[1] = k


_select_frames = compile_loop(
    _select_frames_loop,
    lambda: (np.array([3, 9], np.int64), np.zeros(2, np.int64), np.full(2, 10, np.int64),
             np.array([0, 2], np.int64), np.array([2, 2], np.int64),
             np.array([1, 3, 8, 9], np.uint32), 0, 10, np.empty(2, np.int64),
             np.empty(2, np.int64), np.empty(3, np.int64), np.empty(4, np.int64),
             np.empty(4, np.int64), np.zeros(2, np.int64)),
)


def select_frames(cols: FrameColumns, ids: I64, mint: int, maxt: int) -> FrameSelection:
    """The frames overlapping [mint, maxt] that hold some of `ids` (sorted, distinct), in
    table order, and where those ids are in each."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    n = len(cols.mint)
    room = min(len(cols.series), len(ids) * n)
    frames = np.empty(n, dtype=np.int64)
    whole = np.empty(n, dtype=np.int64)
    offsets = np.empty(n + 1, dtype=np.int64)
    positions = np.empty(room, dtype=np.int64)
    found = np.empty(room, dtype=np.int64)
    sizes = np.zeros(2, dtype=np.int64)
    _select_frames(
        ids, cols.mint, cols.maxt, cols.series_start, cols.series_count, cols.series,
        mint, maxt, frames, whole, offsets, positions, found, sizes,
    )
    nf, k = int(sizes[0]), int(sizes[1])
    return FrameSelection(
        frames[:nf].tolist(), [bool(w) for w in whole[:nf].tolist()], offsets[: nf + 1].tolist(),
        positions[:k], found[:k],
    )

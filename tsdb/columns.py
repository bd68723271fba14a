"""Columns of samples of many series: the shape sample data has inside the engine.

`SampleColumns` holds parallel arrays (series reference or id, timestamp, value) sorted
by (series, time) with one sample per (series, time). Head, blocks, compaction and the
importer all pass data around in this form, so every step is a whole-array operation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .compiled import compile_loop, readonly
from .workers import ordered_map

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]
#: Samples of several series from one source: (ids, samples per id, timestamps, values).
Part = tuple[I64, I64, I64, F64]


@dataclass(frozen=True)
class DeferredPart:
    """Samples of several series written where the join places them: ``counts[k]``
    samples of series ``ids[k]``, which ``write(dest, out_ts, out_vs)`` writes into the
    columns, run ``k`` at offset ``dest[k]``. A block's frame wholly inside the range read
    is decoded there (saving a copy of every sample); one decoded already, for its part of
    the range, is copied (`runs_writer`)."""

    ids: I64
    counts: I64
    write: Callable[[I64, I64, F64], None]
    #: Known to hold no staleness marker (a frame whose series are all decimal).
    stale_free: bool = False


#: Either kind of part `concat_time_ordered` joins.
AnyPart = Part | DeferredPart


def part_runs(part: AnyPart) -> tuple[I64, I64]:
    """The ids and per-id sample counts of a part."""
    if isinstance(part, DeferredPart):
        return part.ids, part.counts
    return part[0], part[1]


def with_ids(part: AnyPart, ids: I64) -> AnyPart:
    """`part` with its ids replaced (same length): renumbering into a merged id space."""
    if isinstance(part, DeferredPart):
        return DeferredPart(ids, part.counts, part.write, part.stale_free)
    return ids, part[1], part[2], part[3]


class SampleColumns:
    """Samples of many series, sorted by (ref, t), one sample per (ref, t).

    Made from per-sample ``refs``, or with `from_runs` from each series' sample count, in
    which case ``refs`` is only expanded if asked for (`series_bounds` does not need it).
    ``stale_free``: known to hold no staleness marker (else unknown).
    """

    __slots__ = ("_refs", "_runs", "timestamps", "values", "stale_free")

    def __init__(self, refs: I64, timestamps: I64, values: F64) -> None:
        self._refs: I64 | None = refs
        self._runs: tuple[I64, I64] | None = None
        self.timestamps = timestamps
        self.values = values
        self.stale_free = False

    @classmethod
    def from_runs(
        cls, ids: I64, counts: I64, timestamps: I64, values: F64, stale_free: bool = False
    ) -> SampleColumns:
        """Series ``ids[k]`` (ascending) has the next ``counts[k]`` (>= 1) samples."""
        out = cls.__new__(cls)
        out._refs = None
        out._runs = (ids, counts)
        out.timestamps = timestamps
        out.values = values
        out.stale_free = stale_free
        return out

    @property
    def refs(self) -> I64:
        if self._refs is None:
            assert self._runs is not None
            self._refs = repeat_runs(*self._runs)
        return self._refs

    def __len__(self) -> int:
        return len(self.timestamps)

    @staticmethod
    def empty() -> SampleColumns:
        return SampleColumns(
            np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        )

    def select(self, mask: npt.NDArray[np.bool_]) -> SampleColumns:
        return SampleColumns(self.refs[mask], self.timestamps[mask], self.values[mask])

    def series_runs(self) -> tuple[I64, I64]:
        """Distinct refs and each one's sample count."""
        if self._runs is not None:
            return self._runs
        ids, starts = self.series_bounds()
        return ids, np.diff(starts)

    def series_bounds(self) -> tuple[I64, I64]:
        """Distinct refs and the start offset of each one's run (plus the end)."""
        if self._runs is not None:
            ids, counts = self._runs
            starts = np.zeros(len(counts) + 1, dtype=np.int64)
            np.cumsum(counts, out=starts[1:])
            return ids, starts
        if not len(self.refs):
            return np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64)
        change = np.flatnonzero(np.diff(self.refs)) + 1
        starts = np.concatenate(([0], change, [len(self.refs)])).astype(np.int64)
        return self.refs[starts[:-1]], starts


def sort_dedup(refs: I64, ts: I64, vals: F64) -> SampleColumns:
    """Sort by (ref, t); of samples sharing (ref, t) keep the one that came last."""
    if not len(refs):
        return SampleColumns.empty()
    # Fast path: samples usually arrive in time order per series (scrapes, sealed frames in
    # sequence), so a stable sort on the series alone already orders time within each one.
    order = np.argsort(refs, kind="stable")
    r, t = refs[order], ts[order]
    same = r[1:] == r[:-1]
    if ((~same) | (t[1:] > t[:-1])).all():
        return SampleColumns(r, t, vals[order])
    order = np.lexsort((ts, refs))
    r, t, v = refs[order], ts[order], vals[order]
    keep = np.ones(len(r), dtype=bool)
    keep[:-1] = (r[1:] != r[:-1]) | (t[1:] != t[:-1])
    if keep.all():
        return SampleColumns(r, t, v)
    return SampleColumns(r[keep], t[keep], v[keep])


def _strictly_ordered_loop(refs: I64, ts: I64, out: npt.NDArray[np.bool_]) -> None:
    out[0] = True
    for i in range(1, len(refs)):
        if refs[i] < refs[i - 1] or (refs[i] == refs[i - 1] and ts[i] <= ts[i - 1]):
            out[0] = False
            return


_strictly_ordered = compile_loop(
    _strictly_ordered_loop,
    lambda: (np.zeros(2, np.int64), np.arange(2, dtype=np.int64), np.ones(1, np.bool_)),
)


def strictly_ordered(refs: I64, ts: I64) -> bool:
    """Whether (refs, ts) pairs strictly increase: sorted by series then time, no two
    samples of a series at one time. One pass that stops at the first violation."""
    out = np.ones(1, dtype=np.bool_)
    _strictly_ordered(
        np.ascontiguousarray(refs, dtype=np.int64), np.ascontiguousarray(ts, dtype=np.int64), out
    )
    return bool(out[0])


def _times_increase_loop(starts: I64, ts: I64, out: npt.NDArray[np.bool_]) -> None:
    out[0] = True
    for s in range(len(starts) - 1):
        for i in range(starts[s] + 1, starts[s + 1]):
            if ts[i] <= ts[i - 1]:
                out[0] = False
                return


_times_increase = compile_loop(
    _times_increase_loop,
    lambda: (np.array([0, 2], np.int64), np.arange(2, dtype=np.int64), np.ones(1, np.bool_)),
)


def strictly_ordered_columns(cols: SampleColumns) -> bool:
    """`strictly_ordered` of a column set, from its series bounds (without expanding the
    per-sample refs of one made `from_runs`)."""
    ids, starts = cols.series_bounds()
    if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():
        return False
    out = np.ones(1, dtype=np.bool_)
    _times_increase(starts, np.ascontiguousarray(cols.timestamps, dtype=np.int64), out)
    return bool(out[0])


def ranges(starts: I64, lengths: I64) -> I64:
    """Concatenation of arange(s, s + n) for every (s, n), without a Python loop."""
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    shift = np.repeat(starts - (ends - lengths), lengths)
    out: I64 = np.arange(total, dtype=np.int64) + shift
    return out



def concat_columns(parts: list[SampleColumns]) -> SampleColumns:
    """Merge column sets that are each sorted by (ref, t); later parts win on equal keys."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return SampleColumns.empty()
    if len(parts) == 1:
        return parts[0]
    return sort_dedup(
        np.concatenate([p.refs for p in parts]),
        np.concatenate([p.timestamps for p in parts]),
        np.concatenate([p.values for p in parts]),
    )


#: Joins with at least this many deferred parts decode them on the shared worker threads.
_PARALLEL_PARTS = 4


def concat_time_ordered(parts: Sequence[AnyPart]) -> SampleColumns:
    """Join frame extracts into columns sorted by (id, t) without sorting samples.

    Each part is (distinct ids, per-id sample counts, timestamps, values), or a
    `DeferredPart`, and for any id the parts come in time order with disjoint time ranges
    (a block's frames: one per time slice). Ids need not be ascending within a part (the
    head's, renumbered). Only the runs are ordered (a stable sort of one entry per id per
    part); then every run is written once at its place: copied from a decoded part, or
    decoded there from a deferred one (those on several threads when there are many).
    """
    parts = [p for p in parts if len(part_runs(p)[0])]
    if not parts:
        return SampleColumns.empty()
    first = parts[0]
    if len(parts) == 1 and not isinstance(first, DeferredPart) and (np.diff(first[0]) > 0).all():
        ids, counts, ts, vals = first
        if counts.all():
            return SampleColumns.from_runs(ids, counts, ts, vals)
        return SampleColumns(repeat_runs(ids, counts), ts, vals)
    runs = [part_runs(p) for p in parts]
    run_ids = np.concatenate([ids for ids, _ in runs]).astype(np.int64, copy=False)
    run_len = np.concatenate([counts for _, counts in runs]).astype(np.int64, copy=False)
    dest = np.empty(len(run_ids), dtype=np.int64)
    ids = np.empty(len(run_ids), dtype=np.int64)
    totals = np.empty(len(run_ids), dtype=np.int64)
    sizes = np.zeros(2, dtype=np.int64)
    _plan_runs(run_ids, run_len, dest, ids, totals, sizes)
    ts = np.empty(int(sizes[1]), dtype=np.int64)
    vals = np.empty(len(ts), dtype=np.float64)
    bounds = [0]
    for part_ids, _ in runs:
        bounds.append(bounds[-1] + len(part_ids))

    def place(k: int) -> None:
        part, at = parts[k], dest[bounds[k] : bounds[k + 1]]
        if isinstance(part, DeferredPart):
            part.write(at, ts, vals)
        else:
            runs_writer(part[1], part[2], part[3])(at, ts, vals)

    deferred = sum(isinstance(p, DeferredPart) for p in parts)
    if deferred >= _PARALLEL_PARTS:
        ordered_map(place, range(len(parts)))
    else:
        for k in range(len(parts)):
            place(k)
    n = int(sizes[0])
    stale_free = all(isinstance(p, DeferredPart) and p.stale_free for p in parts)
    return SampleColumns.from_runs(ids[:n], totals[:n], ts, vals, stale_free)


def _plan_runs_loop(
    run_ids: I64, run_len: I64, dest: I64, ids: I64, totals: I64, sizes: I64
) -> None:
    # The runs in id order (stable: a series' runs stay in time order), each run's place
    # in the joined columns, and each id with at least one sample and its total.
    order = np.argsort(run_ids, kind="mergesort")
    at = 0
    n = 0
    for k in range(len(order)):
        r = order[k]
        dest[r] = at
        length = run_len[r]
        at += length
        if length == 0:
            continue
        if n and ids[n - 1] == run_ids[r]:
            totals[n - 1] += length
        else:
            ids[n] = run_ids[r]
            totals[n] = length
            n += 1
    sizes[0] = n
    sizes[1] = at


_plan_runs = compile_loop(
    _plan_runs_loop,
    lambda: (np.array([5, 2, 5], np.int64), np.array([1, 0, 2], np.int64), np.empty(3, np.int64),
             np.empty(3, np.int64), np.empty(3, np.int64), np.zeros(2, np.int64)),
)


def runs_writer(counts: I64, src_ts: I64, src_vs: F64) -> Callable[[I64, I64, F64], None]:
    """A `DeferredPart` writer of samples already decoded: ``counts[k]`` of them per run,
    run ``k`` copied to ``dest[k]`` of the columns."""
    if int(counts.sum()) != len(src_ts) or len(src_vs) != len(src_ts):
        raise ValueError("a part's counts do not match its samples")
    src_ts = np.ascontiguousarray(src_ts, dtype=np.int64)
    src_bits = np.ascontiguousarray(src_vs, dtype=np.float64).view(np.uint64)
    counts = np.ascontiguousarray(counts, dtype=np.int64)

    def write(dest: I64, ts: I64, vals: F64) -> None:
        _scatter_runs(src_ts, src_bits, counts, dest, ts, vals.view(np.uint64))

    return write


def _repeat_runs_loop(ids: I64, counts: I64, out: I64) -> None:
    k = 0
    for i in range(len(ids)):
        v = ids[i]
        for _ in range(counts[i]):
            out[k] = v
            k += 1


_repeat_runs = compile_loop(
    _repeat_runs_loop,
    lambda: (np.array([4, 7], np.int64), np.array([2, 1], np.int64), np.empty(3, np.int64)),
)


def repeat_runs(ids: I64, counts: I64) -> I64:
    """``np.repeat(ids, counts)`` as a compiled loop that releases the GIL: numpy's holds
    it throughout, and on the millions of samples a compaction reads at once that stopped
    the server's event loop for a quarter of a second."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    out = np.empty(int(counts.sum()), dtype=np.int64)
    _repeat_runs(ids, counts, out)
    return out


def _scatter_runs_loop(src_ts: I64, src_vs: U64, counts: I64, dest: I64, ts: I64, vs: U64) -> None:
    # Unsigned offsets, so that the copies vectorize (see `frame_integrate`).
    a = np.uint64(0)
    for r in range(len(counts)):
        p = np.uint64(dest[r])
        n = np.uint64(counts[r])
        for k in range(np.uint64(0), n):
            ts[p + k] = src_ts[a + k]
            vs[p + k] = src_vs[a + k]
        a += n


#: Copies the consecutive runs of ``src`` (``counts[r]`` samples each) to ``dest[r]``
#: (values as their bits), in one pass.
_scatter_runs = compile_loop(
    _scatter_runs_loop,
    lambda: (np.zeros(1, np.int64), np.zeros(1, np.uint64), np.ones(1, np.int64),
             np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.uint64)),
    # Parts of the head come as read-only views.
    lambda: (readonly(np.zeros(1, np.int64)), readonly(np.zeros(1, np.uint64)), np.ones(1, np.int64),
             np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.uint64)),
)


def _sort_unique_loop(a: I64, size: I64) -> None:
    n = len(a)
    for i in range(1, n):
        if a[i] <= a[i - 1]:
            break
    else:
        size[0] = n
        return
    a.sort()
    k = 1 if n else 0
    for i in range(1, n):
        if a[i] != a[k - 1]:
            a[k] = a[i]
            k += 1
    size[0] = k


_sort_unique = compile_loop(_sort_unique_loop, lambda: (np.array([3, 1, 3], np.int64), np.zeros(1, np.int64)))


def sorted_unique(a: I64) -> I64:
    """``np.unique(a)``, reordering `a` in place (pass a copy to keep it): a compiled loop
    that returns at once when `a` already ascends strictly, the usual case. (numpy's takes
    a hundred microseconds on its first call after the process idled, a query's usual
    state, against twenty for a compiled loop.)"""
    size = np.zeros(1, dtype=np.int64)
    _sort_unique(a, size)
    return a[: int(size[0])]


def find_positions(frame_ids: I64, wanted: I64) -> tuple[I64, I64]:
    """Positions in `frame_ids` (sorted) of the elements of `wanted` (sorted) found there,
    and those elements."""
    pos = np.searchsorted(frame_ids, wanted)
    inside = pos < len(frame_ids)
    hit = np.zeros(len(wanted), dtype=bool)
    hit[inside] = frame_ids[pos[inside]] == wanted[inside]
    return pos[hit].astype(np.int64), wanted[hit]


def clip_part(part: Part, mint: int, maxt: int) -> Part | None:
    """`part` without its samples outside [mint, maxt] (None if none is left). Only parts
    that straddle a boundary are copied: a query's first and last frames, not the rest."""
    ids, counts, ts, vs = part
    if not len(ts):
        return None
    if int(ts.min()) >= mint and int(ts.max()) <= maxt:
        return part
    inside = (ts >= mint) & (ts <= maxt)
    if not inside.any():
        return None
    owner = np.repeat(np.arange(len(ids), dtype=np.int64), counts)
    kept = np.bincount(owner[inside], minlength=len(ids)).astype(np.int64)
    has = kept > 0
    return ids[has], kept[has], ts[inside], vs[inside]

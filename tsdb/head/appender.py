"""The head's Appender: vectorized validation of sample batches, staging, commit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..api import AppendResult
from ..compiled import compile_loop
from ..errors import ClosedError, RejectReason
from ..model import MIN_TIME, Labels

if TYPE_CHECKING:
    from .head import Batch, Head

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]


def _repeats_loop(refs: I64, out: Mask) -> None:
    """out[0]: does some reference occur twice? Linear when `refs` ascend (a scrape's
    usually do), else a sorted copy is scanned."""
    out[0] = False
    n = len(refs)
    for i in range(1, n):
        if refs[i] <= refs[i - 1]:
            s = np.sort(refs)
            for j in range(1, n):
                if s[j] == s[j - 1]:
                    out[0] = True
                    return
            return


_repeats = compile_loop(_repeats_loop, lambda: (np.array([3, 1, 3], np.int64), np.zeros(1, np.bool_)))


def _has_repeats(refs: I64) -> bool:
    out = np.zeros(1, dtype=bool)
    _repeats(refs, out)
    return bool(out[0])


#: Positions in the counts `_validate_loop` fills, in the order results list them.
_REASONS = (
    RejectReason.UNKNOWN_SERIES,
    RejectReason.OUT_OF_BOUNDS,
    RejectReason.DUPLICATE,
    RejectReason.TOO_OLD,
    RejectReason.OUT_OF_ORDER,
)


def _validate_loop(
    refs: I64,
    ts: I64,
    bits: npt.NDArray[np.uint64],
    alive: Mask,
    next_ref: int,
    last_t: I64,
    last_v: npt.NDArray[np.uint64],
    min_valid_t: int,
    replay: bool,
    window: int,
    too_old_before: int,
    keep: Mask,
    counts: I64,
) -> None:
    """One pass over a batch: `keep[i]` says whether sample i may be appended, `counts`
    how many were rejected for each of `_REASONS`. A sample is checked, in this order:
    its series must be live; its time not before `min_valid_t` (during WAL replay that is
    all: the log holds accepted samples); if the next sample is of the same series and
    time, the next one wins (a conflict if the values differ); a sample at the series'
    newest time is dropped (a conflict if the value differs); an older one is out of order,
    or with an out-of-order window, too old only before `too_old_before`."""
    n = len(refs)
    for i in range(n):
        keep[i] = False
        r = refs[i]
        # (The length checks only guard against arrays read while another thread grows
        # the registry: the head revalidates at commit if anything changed.)
        if r <= 0 or r >= next_ref or r >= len(alive) or r >= len(last_t) or not alive[r]:
            counts[0] += 1
            continue
        t = ts[i]
        if t < min_valid_t:
            counts[1] += 1
            continue
        if replay:
            keep[i] = True
            continue
        if i + 1 < n and refs[i + 1] == r and ts[i + 1] == t:
            if bits[i + 1] != bits[i]:
                counts[2] += 1
            continue
        lt = last_t[r]
        if t == lt:
            if bits[i] != last_v[r]:
                counts[2] += 1
            continue
        if t < lt:
            if window <= 0:
                counts[4] += 1
                continue
            if t < too_old_before:
                counts[3] += 1
                continue
        keep[i] = True


_validate = compile_loop(
    _validate_loop,
    lambda: (
        np.array([1, 1, 2], np.int64),
        np.array([5, 5, 4], np.int64),
        np.zeros(3, np.uint64),
        np.ones(3, np.bool_),
        3,
        np.full(3, 4, np.int64),
        np.zeros(3, np.uint64),
        0,
        False,
        0,
        0,
        np.empty(3, np.bool_),
        np.zeros(5, np.int64),
    ),
)


def validate(
    head: Head, refs: I64, ts: I64, values: F64, replay: bool = False
) -> tuple[Mask, AppendResult]:
    """Which samples may be appended given what the head holds; rejections by reason.

    `ts` has one timestamp per sample. With several samples of one series in the batch,
    they must come sorted by time (the appender sorts array-timestamp batches). During
    WAL replay only bounds and unknown series are checked: the log holds accepted samples.
    """
    reg = head.registry
    window = head.options.out_of_order_window_ms
    keep = np.empty(len(refs), dtype=bool)
    counts = np.zeros(len(_REASONS), dtype=np.int64)
    _validate(
        refs, ts, values.view(np.uint64), reg.alive, reg.next_ref, reg.last_t, reg.last_v,
        head.min_valid_t, replay, window, max(head.store.maxt - window, MIN_TIME) if window > 0 else 0,
        keep, counts,
    )
    result = AppendResult()
    if counts.any():
        for reason, count in zip(_REASONS, counts.tolist()):
            result.reject(reason, count)
    return keep, result


class HeadAppender:
    """See `tsdb.api.Appender`. One per scrape, rule evaluation or import batch."""

    def __init__(self, head: Head) -> None:
        self._head = head
        self._batches: list[Batch] = []
        self._generation = head.generation
        self._result = AppendResult()
        self._done = False

    def refs(self, label_sets: Sequence[Labels]) -> I64:
        head = self._head
        with head.lock:
            if head.closed:
                raise ClosedError("head is closed")
            refs, _ = head.registry.get_or_create(label_sets)
        return refs

    def append(
        self, refs: I64, t: int | I64, values: F64
    ) -> AppendResult:
        from .head import Batch

        if self._done:
            raise RuntimeError("appender already committed or rolled back")
        r = np.array(refs, dtype=np.int64, copy=True).reshape(-1)
        v = np.array(values, dtype=np.float64, copy=True).reshape(-1)
        if len(r) != len(v):
            raise ValueError(f"{len(r)} refs but {len(v)} values")
        head = self._head
        if isinstance(t, (int, np.integer)):
            ts = np.full(len(r), int(t), dtype=np.int64)
            if len(r) > 1 and _has_repeats(r):
                # Same series twice at one timestamp: order them so validate sees pairs.
                order = np.argsort(r, kind="stable")
                r, v = r[order], v[order]
        else:
            ts = np.array(t, dtype=np.int64, copy=True).reshape(-1)
            if len(ts) != len(r):
                raise ValueError(f"{len(r)} refs but {len(ts)} timestamps")
            if len(r) > 1 and not _sorted_by_ref_then_time(r, ts):
                order = np.lexsort((ts, r))
                r, ts, v = r[order], ts[order], v[order]
        keep, result = validate(head, r, ts, v)
        if not keep.all():
            r, ts, v = r[keep], ts[keep], v[keep]
        if len(r):
            self._batches.append(Batch(r, ts, v))
        self._result.merge(result)
        out = AppendResult(appended=len(r), rejected=dict(result.rejected))
        return out

    def commit(self) -> AppendResult:
        if self._done:
            raise RuntimeError("appender already committed or rolled back")
        self._done = True
        total = AppendResult(rejected=dict(self._result.rejected))
        if self._batches:
            total.merge(self._head.commit(self._batches, self._generation))
        self._batches = []
        return total

    def rollback(self) -> None:
        self._done = True
        self._batches = []


def _sorted_by_ref_then_time(refs: I64, ts: I64) -> bool:
    """True if refs are non-decreasing and times do not decrease within each ref's run."""
    dr = refs[1:] - refs[:-1]
    return bool((dr >= 0).all() and ((dr > 0) | (ts[1:] >= ts[:-1])).all())

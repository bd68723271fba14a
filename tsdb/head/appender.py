"""The head's Appender: vectorized validation of sample batches, staging, commit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..api import AppendResult
from ..errors import ClosedError, RejectReason
from ..model import Labels

if TYPE_CHECKING:
    from .head import Batch, Head

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]


def _last_occurrence(refs: I64, scratch_size: int) -> Mask:
    """Mask of the last occurrence of every reference in `refs`."""
    pos = np.full(scratch_size, -1, dtype=np.int64) if scratch_size < 4 * len(refs) + 1024 else None
    idx = np.arange(len(refs), dtype=np.int64)
    if pos is not None:
        pos[refs] = idx
        last: Mask = pos[refs] == idx
        return last
    order = np.argsort(refs, kind="stable")
    s = refs[order]
    last = np.ones(len(s), dtype=bool)
    last[:-1] = s[1:] != s[:-1]
    out = np.zeros(len(refs), dtype=bool)
    out[order[last]] = True
    return out


def validate(
    head: Head, refs: I64, ts: I64, values: F64, replay: bool = False
) -> tuple[Mask, AppendResult]:
    """Which samples may be appended given what the head holds; rejections by reason.

    `ts` has one timestamp per sample. With several samples of one series in the batch,
    they must come sorted by time (the appender sorts array-timestamp batches). During
    WAL replay only bounds and unknown series are checked: the log holds accepted samples.
    """
    reg = head.registry
    result = AppendResult()
    keep = reg.known(refs)
    result.reject(RejectReason.UNKNOWN_SERIES, int((~keep).sum()))
    oob = keep & (ts < head.min_valid_t)
    result.reject(RejectReason.OUT_OF_BOUNDS, int(oob.sum()))
    keep &= ~oob
    if replay or not len(refs):
        return keep, result
    safe = np.where(keep, refs, 0)
    last_t = reg.last_t[safe]
    # Samples of one series within the batch: compare each with its predecessor.
    prev_same = np.zeros(len(refs), dtype=bool)
    prev_same[1:] = refs[1:] == refs[:-1]
    same_t = np.zeros(len(refs), dtype=bool)
    same_t[1:] = prev_same[1:] & (ts[1:] == ts[:-1])
    if same_t.any():
        # Duplicates inside the batch: keep the last, count a conflict if values differ.
        bits = values.view(np.uint64)
        conflict = np.zeros(len(refs), dtype=bool)
        conflict[:-1] = same_t[1:] & (bits[1:] != bits[:-1])
        dup_in_batch = np.zeros(len(refs), dtype=bool)
        dup_in_batch[:-1] = same_t[1:]
        result.reject(RejectReason.DUPLICATE, int((keep & conflict).sum()))
        keep &= ~dup_in_batch
    same = keep & (ts == last_t)
    if same.any():
        differs = same & (values.view(np.uint64) != reg.last_v[safe])
        result.reject(RejectReason.DUPLICATE, int(differs.sum()))
        keep &= ~same  # an identical re-send of the newest sample is ignored silently
    older = keep & (ts < last_t)
    if older.any():
        window = head.options.out_of_order_window_ms
        if window > 0:
            too_old = older & (ts < head.store.maxt - window)
            result.reject(RejectReason.TOO_OLD, int(too_old.sum()))
            keep &= ~too_old
        else:
            result.reject(RejectReason.OUT_OF_ORDER, int(older.sum()))
            keep &= ~older
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
            if len(r) > 1:
                last = _last_occurrence(r, head.registry.next_ref)
                if not last.all():
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

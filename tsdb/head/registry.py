"""The head's series registry: label set ↔ reference, the inverted index, per-series state.

References are dense positive integers handed out in increasing order and never reused
while the process runs, so per-series state lives in numpy arrays indexed by reference
(`last_t`, `last_v`, …) and an append batch costs a few fancy-indexing operations.
Postings are `array('q')` lists that only grow by appending increasing references, hence
stay sorted.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from ..model import MIN_TIME, Labels
from ..postings import EMPTY, Postings

I64 = npt.NDArray[np.int64]
_A = TypeVar("_A", bound=npt.NDArray[Any])


class SeriesRegistry:
    """Not thread-safe; the head serialises access with its lock."""

    def __init__(self, capacity: int = 1024) -> None:
        self._by_labels: dict[Labels, int] = {}
        self._labels: list[Labels | None] = [None]  # reference 0 is never used
        self._postings: dict[str, dict[str, array[int]]] = {}
        self.next_ref = 1
        self.last_t = np.full(capacity, MIN_TIME, dtype=np.int64)
        self.last_v = np.zeros(capacity, dtype=np.uint64)  # float64 bits of the newest sample
        self.logged = np.zeros(capacity, dtype=bool)  # series record is in the WAL
        self.alive = np.zeros(capacity, dtype=bool)
        #: Scratch space for `has_duplicates` (any content; only written slots are read).
        self._slot = np.zeros(capacity, dtype=np.int64)

    # -- creation and lookup -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._by_labels)

    def ref_of(self, labels: Labels) -> int:
        """The reference of `labels`, 0 if unknown."""
        return self._by_labels.get(labels, 0)

    def labels_of(self, ref: int) -> Labels | None:
        return self._labels[ref] if 0 < ref < len(self._labels) else None

    def get_or_create(self, label_sets: Sequence[Labels]) -> tuple[I64, list[int]]:
        """References for `label_sets`, and the list of those created by this call."""
        out = np.empty(len(label_sets), dtype=np.int64)
        created: list[int] = []
        by_labels = self._by_labels
        for i, ls in enumerate(label_sets):
            ref = by_labels.get(ls)
            if ref is None:
                ref = self._create(ls, self.next_ref)
                created.append(ref)
            out[i] = ref
        return out, created

    def create_with_ref(self, labels: Labels, ref: int) -> None:
        """Re-create a series with a known reference (WAL replay); idempotent."""
        existing = self._by_labels.get(labels)
        if existing == ref:
            return
        if existing is not None:
            # The same labels under another reference: keep both mapped to the newest ref.
            self._by_labels[labels] = ref
            self._grow(ref)
            self._labels[ref] = labels
            self.alive[ref] = True
            self.next_ref = max(self.next_ref, ref + 1)
            self._index(labels, ref)
            return
        self._create(labels, ref)

    def _create(self, labels: Labels, ref: int) -> int:
        self._grow(ref)
        self._by_labels[labels] = ref
        self._labels[ref] = labels
        self.alive[ref] = True
        self.next_ref = max(self.next_ref, ref + 1)
        self._index(labels, ref)
        return ref

    def _index(self, labels: Labels, ref: int) -> None:
        postings = self._postings
        for i in range(0, len(labels), 2):
            by_value = postings.get(labels[i])
            if by_value is None:
                by_value = postings[labels[i]] = {}
            plist = by_value.get(labels[i + 1])
            if plist is None:
                plist = by_value[labels[i + 1]] = array("q")
            if plist and plist[-1] > ref:
                plist.append(ref)
                by_value[labels[i + 1]] = array("q", sorted(plist))
            else:
                plist.append(ref)

    def _grow(self, ref: int) -> None:
        while len(self._labels) <= ref:
            self._labels.append(None)
        cap = len(self.last_t)
        if ref < cap:
            return
        new_cap = max(cap * 2, ref + 1)
        self.last_t = _resized(self.last_t, new_cap, MIN_TIME)
        self.last_v = _resized(self.last_v, new_cap, 0)
        self.logged = _resized(self.logged, new_cap, False)
        self.alive = _resized(self.alive, new_cap, False)
        self._slot = _resized(self._slot, new_cap, 0)

    def has_duplicates(self, refs: I64) -> bool:
        """True if some reference occurs twice in `refs` (live references only): each
        slot is written with its position, and a later occurrence overwrites an earlier
        one. Linear, no sort."""
        pos = np.arange(len(refs), dtype=np.int64)
        self._slot[refs] = pos
        return bool((self._slot[refs] != pos).any())

    def known(self, refs: I64) -> npt.NDArray[np.bool_]:
        """Mask of `refs` that name live series."""
        ok = (refs > 0) & (refs < self.next_ref)
        ok[ok] = self.alive[refs[ok]]
        return ok

    # -- removal ---------------------------------------------------------------------------
    def remove(self, refs: I64) -> None:
        """Forget series (head garbage collection); their references are not reused."""
        if not len(refs):
            return
        dead = {int(r) for r in refs}
        for r in dead:
            ls = self._labels[r]
            if ls is not None:
                del self._by_labels[ls]
                self._labels[r] = None
        self.alive[refs] = False
        self.logged[refs] = False
        self.last_t[refs] = MIN_TIME
        for name, by_value in list(self._postings.items()):
            for value, plist in list(by_value.items()):
                kept = array("q", (r for r in plist if r not in dead))
                if kept:
                    by_value[value] = kept
                else:
                    del by_value[value]
            if not by_value:
                del self._postings[name]

    # -- index access (PostingsSource) -----------------------------------------------------
    def label_names(self) -> list[str]:
        return sorted(self._postings)

    def label_values_of(self, name: str) -> Sequence[str]:
        return list(self._postings.get(name, ()))

    def postings_for(self, name: str, values: Sequence[str]) -> Postings:
        by_value = self._postings.get(name)
        if not by_value:
            return EMPTY
        lists = [by_value[v] for v in values if v in by_value]
        if not lists:
            return EMPTY
        if len(lists) == 1:
            return np.array(lists[0], dtype=np.int64)
        return np.unique(np.concatenate([np.array(p, dtype=np.int64) for p in lists]))

    def all_postings(self) -> Postings:
        return np.flatnonzero(self.alive[: self.next_ref]).astype(np.int64)

    def live_refs(self) -> I64:
        return self.all_postings()

    def memory_items(self) -> int:
        """Number of posting entries, for size accounting."""
        return sum(len(p) for by_value in self._postings.values() for p in by_value.values())


def _resized(a: _A, size: int, fill: object) -> _A:
    out = np.full(size, fill, dtype=a.dtype)
    out[: len(a)] = a
    return out  # type: ignore[return-value]  # same dtype as `a`

"""The scrape cache: exposition series text → series reference, per target.

A steady target sends the same series in the same order on every scrape, so the common
case is a single list comparison (`keys == last_keys`) that reuses the whole reference
array from the previous scrape. Otherwise each key costs a dict lookup; only keys never
seen before are parsed, merged with the target labels, relabeled and turned into refs
(in one `Appender.refs` call for all of them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from vigilops.tsdb.model import Labels

I64 = npt.NDArray[np.int64]

#: Reference stored for keys whose series metric relabeling dropped.
DROPPED = -1


class ScrapeCache:
    def __init__(self) -> None:
        self._refs: dict[str, int] = {}
        self._last_keys: list[str] = []
        self._last_refs: I64 = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._refs)

    def known(self) -> dict[str, int]:
        """Keys already validated (passed to the parser so it skips re-validating them)."""
        return self._refs

    def resolve(
        self,
        keys: list[str],
        make_labels: Callable[[str], Labels | None],
        make_refs: Callable[[Sequence[Labels]], I64],
    ) -> tuple[I64, int]:
        """References for `keys` (DROPPED where relabeling dropped the series), and how
        many keys were new to the cache.

        `make_labels` turns a key into the final label set (or None: dropped); `make_refs`
        creates references for label sets in one batch.
        """
        if keys == self._last_keys:
            return self._last_refs, 0
        get = self._refs.get
        refs = [get(k) for k in keys]
        added = 0
        if None in refs:
            missing = [i for i, r in enumerate(refs) if r is None]
            fresh: dict[str, Labels | None] = {}
            for i in missing:
                k = keys[i]
                if k not in fresh:
                    fresh[k] = make_labels(k)
            kept = [(k, ls) for k, ls in fresh.items() if ls is not None]
            new_refs = make_refs([ls for _, ls in kept]) if kept else np.zeros(0, dtype=np.int64)
            for (k, _), r in zip(kept, new_refs.tolist()):
                self._refs[k] = r
            for k, ls in fresh.items():
                if ls is None:
                    self._refs[k] = DROPPED
            added = len(kept)
            refs = [self._refs[k] for k in keys]
        arr = np.array(refs, dtype=np.int64)
        self._last_keys = keys
        self._last_refs = arr
        return arr, added

    def forget(self) -> None:
        """Drop every entry (references became unknown to the storage, e.g. after GC)."""
        self._refs.clear()
        self._last_keys = []
        self._last_refs = np.zeros(0, dtype=np.int64)

"""The head's open log: recent samples in arrival order, kept in fixed-size pages.

A page holds up to `PAGE_SAMPLES` samples in three columns: the series reference (int32;
references are dense indices), the timestamp as an int32 offset from the page's base time,
and the value (float64): 16 bytes a sample where three int64/float64 columns took 24.
Pages are allocated one at a time as the log fills and are never grown, copied or
rewritten below their fill mark, so:

- the log's memory follows the samples it holds (no doubling capacity kept after a seal);
- a detached log's pages are released when its frame is published, and the allocator
  hands those same-size blocks to the next pages instead of fragmenting the heap;
- a view taken under the head's lock stays valid without copying.

A batch whose timestamps do not fit the current page's int32 offsets (about ±24 days
from its base) starts a new page based at the batch's oldest timestamp; a batch spread over
more than that is split until every piece fits.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..columns import SampleColumns, sort_dedup

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

#: Samples per page: 256 KiB of columns. Small enough that the last, partly filled page
#: costs little; large enough that a scrape batch rarely straddles two pages.
PAGE_SAMPLES = 16_384

_OFFSET_MIN = int(np.iinfo(np.int32).min)
_OFFSET_MAX = int(np.iinfo(np.int32).max)


@dataclass(frozen=True)
class LogPage:
    """A read-only view of a page's filled samples, in arrival order."""

    refs: I32
    offsets: I32
    base_t: int
    values: F64

    def __len__(self) -> int:
        return len(self.refs)

    def timestamps(self) -> I64:
        t = self.offsets.astype(np.int64)
        t += self.base_t
        return t

    def bounds(self) -> tuple[int, int]:
        return self.base_t + int(self.offsets.min()), self.base_t + int(self.offsets.max())

    def columns(self) -> SampleColumns:
        return SampleColumns(self.refs.astype(np.int64), self.timestamps(), self.values)

    def select(self, mask: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> SampleColumns:
        """The samples at `mask` (a boolean mask or positions, in the order given)."""
        t = self.offsets[mask].astype(np.int64)
        t += self.base_t
        return SampleColumns(self.refs[mask].astype(np.int64), t, self.values[mask])


@dataclass(frozen=True, eq=False)
class LogPart:
    """Samples in arrival order: a view of the open log, or a detached log waiting to be
    sealed.

    Compared by identity: the sealer publishes its frame only if the part it encoded is
    still the one the store holds (a head cut may have replaced it meanwhile).
    """

    pages: tuple[LogPage, ...]

    def __len__(self) -> int:
        return sum(len(p) for p in self.pages)

    def columns(self) -> SampleColumns:
        """All samples in arrival order (int64 columns)."""
        pages = [p for p in self.pages if len(p)]
        if not pages:
            return SampleColumns.empty()
        if len(pages) == 1:
            return pages[0].columns()
        cols = [p.columns() for p in pages]
        return SampleColumns(
            np.concatenate([c.refs for c in cols]),
            np.concatenate([c.timestamps for c in cols]),
            np.concatenate([c.values for c in cols]),
        )

    def sorted(self) -> SampleColumns:
        """Sorted by (ref, t); of samples sharing (ref, t) the later arrival is kept."""
        c = self.columns()
        return sort_dedup(c.refs, c.timestamps, c.values)

    def select_refs(self, wanted: I64) -> list[SampleColumns]:
        """The samples of the series `wanted`, one column set per page that has any."""
        out: list[SampleColumns] = []
        for page in self.pages:
            if len(page):
                mask = np.isin(page.refs, wanted)
                if mask.any():
                    out.append(page.select(mask))
        return out

    def by_shard(self, bits: int) -> Iterator[tuple[int, SampleColumns]]:
        """The samples grouped by shard (`ref >> bits`), shards ascending, each group in
        arrival order. Works page by page: beyond the groups themselves, the temporaries
        are one page's sort order."""
        pieces: dict[int, list[tuple[LogPage, npt.NDArray[np.intp]]]] = {}
        for page in self.pages:
            if not len(page):
                continue
            keys = page.refs >> bits
            order = np.argsort(keys, kind="stable")
            sorted_keys = keys[order]
            cuts = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
            starts = [0, *cuts.tolist()]
            ends = [*cuts.tolist(), len(order)]
            for a, b in zip(starts, ends):
                pieces.setdefault(int(sorted_keys[a]), []).append((page, order[a:b]))
        for shard in sorted(pieces):
            cols = [page.select(idx) for page, idx in pieces.pop(shard)]
            if len(cols) == 1:
                yield shard, cols[0]
            else:
                yield shard, SampleColumns(
                    np.concatenate([c.refs for c in cols]),
                    np.concatenate([c.timestamps for c in cols]),
                    np.concatenate([c.values for c in cols]),
                )

    def bounds(self) -> tuple[int, int] | None:
        """(min t, max t) of the samples, None if there are none."""
        b = [p.bounds() for p in self.pages if len(p)]
        if not b:
            return None
        return min(lo for lo, _ in b), max(hi for _, hi in b)


class _Page:
    __slots__ = ("refs", "offsets", "values", "base_t", "n")

    def __init__(self, capacity: int, base_t: int) -> None:
        # Uninitialised: only [:n] is ever read, and memory is touched only as it fills.
        self.refs = np.empty(capacity, dtype=np.int32)
        self.offsets = np.empty(capacity, dtype=np.int32)
        self.values = np.empty(capacity, dtype=np.float64)
        self.base_t = base_t
        self.n = 0

    def room(self) -> int:
        return len(self.refs) - self.n

    def fits(self, tmin: int, tmax: int) -> bool:
        return tmin - self.base_t >= _OFFSET_MIN and tmax - self.base_t <= _OFFSET_MAX

    def write(self, refs: I64, ts: I64, vals: F64) -> None:
        a, b = self.n, self.n + len(refs)
        self.refs[a:b] = refs
        np.subtract(ts, self.base_t, out=self.offsets[a:b], casting="unsafe")
        self.values[a:b] = vals
        self.n = b

    def view(self) -> LogPage:
        n = self.n
        return LogPage(self.refs[:n], self.offsets[:n], self.base_t, self.values[:n])


class OpenLog:
    """The log new samples are appended to. Not thread-safe (the head's lock guards it)."""

    def __init__(self, page_samples: int = PAGE_SAMPLES) -> None:
        self.page_samples = page_samples
        self._pages: list[_Page] = []
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def capacity(self) -> int:
        """Samples the allocated pages can hold (batches alternating between far-apart
        times each start a page: the caller seals on this too, not only on `len`)."""
        return len(self._pages) * self.page_samples

    def add(self, refs: I64, ts: I64, vals: F64, tmin: int, tmax: int) -> None:
        """Append samples (arrays of equal length) whose timestamps lie in [tmin, tmax]."""
        n = len(refs)
        if not n:
            return
        if tmax - tmin > _OFFSET_MAX:
            # Spread over more than an int32 offset range (explicit timestamps far apart):
            # split so that every piece fits a page of its own base.
            half = n // 2
            for lo, hi in ((0, half), (half, n)):
                t = ts[lo:hi]
                self.add(refs[lo:hi], t, vals[lo:hi], int(t.min()), int(t.max()))
            return
        page = self._pages[-1] if self._pages else None
        if page is None or not page.room() or not page.fits(tmin, tmax):
            page = self._new_page(tmin)
        done = 0
        while done < n:
            take = min(n - done, page.room())
            end = done + take
            page.write(refs[done:end], ts[done:end], vals[done:end])
            done = end
            if done < n:
                page = self._new_page(tmin)
        self._len += n

    def _new_page(self, base_t: int) -> _Page:
        page = _Page(self.page_samples, base_t)
        self._pages.append(page)
        return page

    def view(self) -> LogPart:
        """The samples appended so far; stays valid while the log goes on filling."""
        return LogPart(tuple(p.view() for p in self._pages))

    def detach(self) -> LogPart:
        """The samples appended so far; the log starts empty (its pages now belong to the
        returned part only)."""
        part = self.view()
        self._pages = []
        self._len = 0
        return part

"""The two seams every other subsystem uses: the Appender (writes) and the Querier (reads).

Sample data crosses these seams as numpy arrays: int64 millisecond timestamps, float64
values (staleness markers kept bit-exact), int64 series references. Nothing outside
`tsdb/` knows whether data lives in the head or in blocks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol

import numpy as np
import numpy.typing as npt

from .columns import SampleColumns
from .errors import RejectReason
from .model import Labels, Matcher

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]


@dataclass
class AppendResult:
    """What an append (or a commit) did: samples stored and samples dropped per reason.

    Rejected samples are counted, not raised: a scrape of 1,000 series with one out-of-order
    sample stores 999 and reports one `RejectReason.OUT_OF_ORDER`.
    """

    appended: int = 0
    rejected: dict[RejectReason, int] = field(default_factory=dict)

    def reject(self, reason: RejectReason, count: int) -> None:
        if count:
            self.rejected[reason] = self.rejected.get(reason, 0) + count

    def merge(self, other: AppendResult) -> None:
        self.appended += other.appended
        for reason, count in other.rejected.items():
            self.reject(reason, count)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


class Appender(Protocol):
    """A short-lived write transaction. Not thread-safe: one per scrape, rule evaluation or
    import batch.

    Appends are batches: `refs` once per distinct label set (cache the result), then
    `append` with one timestamp (or one per sample) and arrays of refs and values.
    Nothing is visible to queriers before `commit`.
    """

    def refs(self, label_sets: Sequence[Labels]) -> Int64Array:
        """Return the series reference of each label set, creating series on first use.

        References are stable for the life of the process while the series is in the head;
        a caller may cache them and must call `refs` again after `UnknownRef` rejections.
        """
        ...

    def append(
        self, refs: Int64Array, t: int | Int64Array, values: Float64Array
    ) -> AppendResult:
        """Stage samples: ``values[i]`` at time ``t`` (or ``t[i]``) for series ``refs[i]``.

        Returns the samples that pass validation against what is committed and staged so
        far; rejected samples are counted by reason and dropped. The arrays are copied.
        """
        ...

    def commit(self) -> AppendResult:
        """Write the staged samples to the WAL and make them visible to queries.

        Samples that became invalid because another appender committed newer data meanwhile
        are dropped and counted in the returned result (which covers the whole transaction).
        """
        ...

    def rollback(self) -> None:
        """Drop everything staged. Series created by `refs` stay (without samples)."""
        ...


class Appendable(Protocol):
    def appender(self) -> Appender: ...


@dataclass(frozen=True)
class SelectHints:
    """Advisory information for `Querier.select`; an implementation may ignore any field.

    Times are int64 milliseconds. `range_ms` is the range of a range selector, `step_ms` the
    query step, `func` the function applied to the selection, `limit` a cap on the number
    of series returned (0: none).
    """

    start: int | None = None
    end: int | None = None
    step_ms: int = 0
    range_ms: int = 0
    func: str = ""
    grouping: tuple[str, ...] = ()
    by: bool = False
    limit: int = 0


@dataclass(frozen=True)
class SeriesData:
    """One series and its samples in the querier's range.

    `timestamps` is strictly increasing int64 milliseconds; `values` float64 with staleness
    markers preserved bit-exactly. The arrays are read-only and owned by the caller.
    """

    labels: Labels
    timestamps: Int64Array
    values: Float64Array


class Querier(Protocol):
    """Read access to the samples in ``[mint, maxt]`` (milliseconds, both ends inclusive).

    Use as a context manager or call `close`. Results are a consistent view of the data
    committed when the querier was created or later; head and blocks are merged.
    """

    mint: int
    maxt: int

    def select(
        self,
        matchers: Sequence[Matcher],
        hints: SelectHints | None = None,
        sort: bool = False,
    ) -> Iterator[SeriesData]:
        """Yield the series matching every matcher that have samples in range.

        With `sort`, series come in label order. Series without samples in range are not
        yielded.
        """
        ...

    def select_columns(
        self, matchers: Sequence[Matcher], hints: SelectHints | None = None
    ) -> tuple[list[Labels], SampleColumns]:
        """`select` in one piece, for callers that work on many series at once: the
        matching series with samples in range in label order, and one `SampleColumns`
        sorted by (series, t) whose ``refs`` are indexes into that list."""
        ...

    def series(self, matchers: Sequence[Matcher], limit: int = 0) -> list[Labels]:
        """Label sets of the series matching every matcher that have data in range."""
        ...

    def label_names(
        self, matchers: Sequence[Matcher] = (), limit: int = 0
    ) -> tuple[list[str], list[str]]:
        """Sorted label names of matching series in range, and warnings."""
        ...

    def label_values(
        self, name: str, matchers: Sequence[Matcher] = (), limit: int = 0
    ) -> tuple[list[str], list[str]]:
        """Sorted values of label `name` among matching series in range, and warnings."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Querier: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Queryable(Protocol):
    def querier(self, mint: int, maxt: int) -> Querier: ...

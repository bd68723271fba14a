"""The values PromQL evaluation passes around, laid out for numpy over the whole step grid.

A query is evaluated at the `S` step times of its grid at once (an instant query is a grid of
one step). Every intermediate value covers all steps:

* `Scalar` — one float64 per step.
* `String` — one string (the same at every step).
* `Vector` — an instant vector at every step: `N` series (label sets), an ``(N, S)`` float64
  array of values and an ``(N, S)`` boolean array saying at which steps each series has a
  sample. Values where `present` is False are meaningless (kept 0 by convention, never read).
  A series present at no step may be dropped at any time.
* `Windows` — a range vector at every step: the samples of `N` series concatenated into flat
  arrays (staleness markers removed), and for each series and step the half-open index range
  ``[lo, hi)`` of the samples inside that step's window ``[eval_ts - range_ms, eval_ts]``
  (both ends inclusive, Prometheus 2.x). Range functions reduce windows to a `Vector`.

Results leave the engine as `InstantVector`, `Matrix`, `ScalarResult` or `StringResult`, the
four shapes of the HTTP API's ``resultType``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from vigilops.query.window_kernels import has_stale, window_bounds
from vigilops.tsdb.model import METRIC_NAME, Labels, stale_mask

Int64Array: TypeAlias = npt.NDArray[np.int64]
Float64Array: TypeAlias = npt.NDArray[np.float64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]


class EngineBusy(Exception):
    """Every query slot of the engine is taken, and the caller asked not to wait for one
    (``wait=False``: the API's queries on the event loop, which then go to the executor)."""


class QueryError(Exception):
    """Base of errors raised while evaluating; `kind` maps to the API's ``errorType``."""

    kind = "execution"


class ExecutionError(QueryError):
    """A query that is valid PromQL but cannot be evaluated (``execution``, HTTP 422),
    e.g. many-to-many matching or a vector with duplicate label sets."""


class TooManySamplesError(ExecutionError):
    """The query would hold more samples in memory than ``--query.max-samples``."""

    def __init__(self) -> None:
        super().__init__(
            "query processing would load too many samples into memory in query execution"
        )


class QueryTimeoutError(QueryError):
    """The query ran longer than ``--query.timeout`` (``timeout``, HTTP 503)."""

    kind = "timeout"


class QueryCanceledError(QueryError):
    """The query was canceled (client gone, shutdown) (``canceled``, HTTP 503)."""

    kind = "canceled"


class BadQueryError(QueryError):
    """Invalid query parameters detected by the engine (``bad_data``, HTTP 400), e.g. a range
    query of a range-vector expression or too many points per series."""

    kind = "bad_data"


@dataclass(frozen=True)
class StepGrid:
    """The evaluation times: ``start, start + step, …, <= end`` in ms. `step` is 0 for an
    instant query (one step at `start`)."""

    start: int
    end: int
    step: int

    @property
    def times(self) -> Int64Array:
        if self.step <= 0:
            return np.array([self.start], dtype=np.int64)
        return np.arange(self.start, self.end + 1, self.step, dtype=np.int64)

    def __len__(self) -> int:
        if self.step <= 0:
            return 1
        return (self.end - self.start) // self.step + 1


@dataclass
class Scalar:
    values: Float64Array  # (S,)


@dataclass
class String:
    value: str


@dataclass
class Vector:
    labels: list[Labels]
    values: Float64Array  # (N, S)
    present: BoolArray  # (N, S)
    #: For a vector straight from a selector: the timestamp of each selected sample
    #: (``timestamp(foo)`` returns it, not the step time). None once transformed.
    sample_ts: Int64Array | None = None

    @classmethod
    def empty(cls, steps: int) -> Vector:
        return cls([], np.zeros((0, steps)), np.zeros((0, steps), dtype=bool))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def steps(self) -> int:
        return int(self.values.shape[1])

    def compact(self) -> Vector:
        """Drop the series present at no step."""
        keep = self.present.any(axis=1)
        if keep.all():
            return self
        return self.take(np.flatnonzero(keep))

    def take(self, rows: Sequence[int] | Int64Array) -> Vector:
        idx = np.asarray(rows, dtype=np.int64)
        sample_ts = None if self.sample_ts is None else self.sample_ts[idx]
        return Vector([self.labels[i] for i in idx], self.values[idx], self.present[idx], sample_ts)


@dataclass
class Windows:
    """A range vector at every step (see the module docstring).

    `starts[i]:ends[i]` delimits series `i` in the flat `ts`/`vs` arrays; `lo[i, j]:hi[i, j]`
    the samples of series `i` in the window of step `j` (empty when ``lo == hi``), found
    when first asked for (`window_bounds`: the rate family finds them as it goes).
    `eval_ts[j]` is the window's right end (the step time with ``@`` and ``offset``
    applied), so the window is ``[eval_ts[j] - range_ms, eval_ts[j]]``.
    """

    labels: list[Labels]
    ts: Int64Array
    vs: Float64Array
    starts: Int64Array  # (N,)
    ends: Int64Array  # (N,)
    eval_ts: Int64Array  # (S,)
    range_ms: int

    def __len__(self) -> int:
        return len(self.labels)

    @cached_property
    def _bounds(self) -> tuple[Int64Array, Int64Array]:
        return window_bounds(self.ts, self.starts, self.ends, self.eval_ts, self.range_ms)

    @property
    def lo(self) -> Int64Array:
        """First sample of each window, ``(N, S)``."""
        return self._bounds[0]

    @property
    def hi(self) -> Int64Array:
        """One past the last sample of each window, ``(N, S)``."""
        return self._bounds[1]

    @property
    def counts(self) -> Int64Array:
        """Samples in each window, ``(N, S)``."""
        counts: Int64Array = self.hi - self.lo
        return counts


Value: TypeAlias = Scalar | String | Vector | Windows


@dataclass
class FunctionContext:
    """What a function implementation may need besides its evaluated arguments."""

    times: Int64Array  # (S,) the step times of the grid being evaluated, ms
    args: tuple[object, ...] = ()  # the argument AST nodes (absent() reads their matchers)
    lookback_ms: int = 300_000


# ---- results -----------------------------------------------------------------------------
@dataclass
class InstantVector:
    """``resultType: vector``: one sample per series at time `t`."""

    t: int
    labels: list[Labels]
    values: Float64Array


@dataclass
class Matrix:
    """``resultType: matrix``: per series, its points (timestamps ms, values).

    `flat`, when set, holds every series' points back to back (series order), and
    `timestamps`/`values` are views into it: what the JSON writer takes."""

    labels: list[Labels]
    timestamps: list[Int64Array]
    values: list[Float64Array]
    flat: tuple[Int64Array, Float64Array] | None = None


@dataclass
class ScalarResult:
    t: int
    value: float


@dataclass
class StringResult:
    t: int
    value: str


Result: TypeAlias = InstantVector | Matrix | ScalarResult | StringResult


@dataclass
class QueryStats:
    samples_loaded: int = 0
    peak_samples: int = 0


@dataclass
class QueryResult:
    value: Result
    warnings: list[str] = field(default_factory=list)
    stats: QueryStats = field(default_factory=QueryStats)


# ---- helpers shared by the evaluator and the functions -----------------------------------
def drop_metric_name(labels: Sequence[Labels]) -> list[Labels]:
    """The label sets without ``__name__`` (what functions and arithmetic return)."""
    out: list[Labels] = []
    for ls in labels:
        if ls and ls[0] == METRIC_NAME:
            # Where it usually is (only names beginning with an upper-case letter sort
            # before it): the rest of the tuple, its strings already interned.
            out.append(tuple.__new__(Labels, ls[2:]))
        else:
            out.append(ls.without(METRIC_NAME) if ls.get(METRIC_NAME) else ls)
    return out


def merge_same_labels(vec: Vector) -> Vector:
    """Merge series that have equal label sets, as Prometheus's step-by-step evaluation
    does when it collects a function's output by label set. Two of them present at the
    same step is an error."""
    first: dict[Labels, int] = {}
    groups: list[list[int]] = []
    for i, ls in enumerate(vec.labels):
        g = first.get(ls)
        if g is None:
            first[ls] = len(groups)
            groups.append([i])
        else:
            groups[g].append(i)
    if len(groups) == len(vec.labels):
        return vec
    labels: list[Labels] = []
    values = np.zeros((len(groups), vec.steps))
    present = np.zeros((len(groups), vec.steps), dtype=bool)
    for g, rows in enumerate(groups):
        labels.append(vec.labels[rows[0]])
        if len(rows) == 1:
            values[g] = vec.values[rows[0]]
            present[g] = vec.present[rows[0]]
            continue
        p = vec.present[rows]
        if (p.sum(axis=0) > 1).any():
            raise ExecutionError("vector cannot contain metrics with the same labelset")
        present[g] = p.any(axis=0)
        pick = np.argmax(p, axis=0)  # the row present at each step (0 where none is)
        values[g] = vec.values[rows][pick, np.arange(vec.steps)]
    return Vector(labels, values, present)


def build_windows(
    labels: Sequence[Labels],
    series_ts: Sequence[Int64Array],
    series_vs: Sequence[Float64Array],
    eval_ts: Int64Array,
    range_ms: int,
) -> Windows:
    """Lay out the samples of each series (sorted timestamps) as `Windows` for the windows
    ``[eval_ts[j] - range_ms, eval_ts[j]]`` (see `windows_from_flat`)."""
    lengths = np.fromiter((len(t) for t in series_ts), dtype=np.int64, count=len(series_ts))
    flat_ts = np.concatenate(series_ts).astype(np.int64, copy=False) if len(series_ts) else np.zeros(0, np.int64)
    flat_vs = np.concatenate(series_vs).astype(np.float64, copy=False) if len(series_vs) else np.zeros(0)
    return windows_from_flat(labels, flat_ts, flat_vs, lengths, eval_ts, range_ms)


def windows_from_flat(
    labels: Sequence[Labels],
    ts: Int64Array,
    vs: Float64Array,
    lengths: Int64Array,
    eval_ts: Int64Array,
    range_ms: int,
    keep: BoolArray | None = None,
    stale_free: bool = False,
) -> Windows:
    """`Windows` over series laid out back to back: series ``i`` is the next ``lengths[i]``
    samples of `ts`/`vs` (timestamps sorted within each). Staleness markers are dropped, as
    Prometheus drops them from range selections (unless `stale_free` says there is none),
    and so are samples where `keep` is False. The windows' bounds are found when asked for
    (`Windows.lo`)."""
    n = len(labels)
    eval_ts = np.asarray(eval_ts, dtype=np.int64)
    if keep is None and (stale_free or not has_stale(vs)):  # usual: nothing to drop, no mask
        drop = None
    else:
        drop = stale_mask(vs)
        if keep is not None:
            drop |= ~keep
    if drop is not None and drop.any():
        kept = ~drop
        owner = np.repeat(np.arange(n, dtype=np.int64), lengths)
        ts, vs = ts[kept], vs[kept]
        lengths = np.bincount(owner[kept], minlength=n).astype(np.int64)
    ends = np.cumsum(lengths, dtype=np.int64)
    starts = ends - lengths
    return Windows(list(labels), ts, vs, starts, ends, eval_ts, range_ms)

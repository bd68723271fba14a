"""``histogram_quantile`` over classic ``le`` buckets, and the native-histogram functions
(Prometheus 2.42).

Series are grouped by their labels without ``le`` (the metric name included, so buckets of
two metrics never mix); a series whose ``le`` Go's `ParseFloat` rejects is ignored. At each
step a group's present buckets form one histogram, evaluated as 2.42's `bucketQuantile`:
sorted by upper bound, the highest must be +Inf, buckets with equal bounds are merged,
counts are made monotonic (running maximum), at least two buckets and a non-zero total are
needed, and the quantile interpolates linearly inside the bucket holding its rank (from 0
for the first bucket if its bound is positive; the +Inf bucket yields the second-highest
bound). q < 0 gives -Inf, q > 1 +Inf, NaN q NaN. The output drops ``__name__`` and ``le``.

The loop is per group; everything inside is array work over (buckets × steps).
"""

from __future__ import annotations

import numpy as np

from vigilops.query.funcs._args import scalar_arg, vector_arg
from vigilops.query.funcs._go import parse_float
from vigilops.query.values import (
    BoolArray,
    Float64Array,
    FunctionContext,
    Int64Array,
    Value,
    Vector,
)
from vigilops.tsdb.model import METRIC_NAME, Labels

BUCKET_LABEL = "le"


def bucket_quantile(
    q: Float64Array, bounds: Float64Array, counts: Float64Array, present: BoolArray
) -> Float64Array:
    """2.42's `bucketQuantile` at every step of one group.

    `bounds` (B,) are the group's distinct upper bounds sorted ascending (NaN last),
    `counts` (B, S) the summed bucket counts, `present` (B, S) which buckets exist at each
    step; `q` (S,). Steps without any bucket get NaN (the caller drops them).
    """
    n_buckets, steps = counts.shape
    cols = np.arange(steps)
    # Move each step's present buckets to the top, keeping bound order.
    order = np.argsort(~present, axis=0, kind="stable")
    c = np.take_along_axis(counts, order, axis=0)
    b = bounds[order]
    size = present.sum(axis=0)
    valid = np.arange(n_buckets)[:, None] < size[None, :]
    top = np.maximum(size - 1, 0)
    with np.errstate(all="ignore"):
        running = np.fmax.accumulate(np.where(valid & ~np.isnan(c), c, -np.inf), axis=0)
        c = np.where(np.isnan(c), c, running)
        observations = c[top, cols]
        rank = q * observations
        # Go's sort.Search(size-1, count[i] >= rank), the same probes for every step.
        low = np.zeros(steps, dtype=np.int64)
        high = np.maximum(size - 1, 0)
        while True:
            open_ = low < high
            if not open_.any():
                break
            mid = (low + high) // 2
            hit = c[np.minimum(mid, n_buckets - 1), cols] >= rank
            low = np.where(open_ & ~hit, mid + 1, low)
            high = np.where(open_ & hit, mid, high)
        found = low
        prev = np.maximum(found - 1, 0)
        has_prev = found > 0
        start = np.where(has_prev, b[prev, cols], 0.0)
        end = b[found, cols]
        count = c[found, cols] - np.where(has_prev, c[prev, cols], 0.0)
        rank_in = rank - np.where(has_prev, c[prev, cols], 0.0)
        out = start + (end - start) * (rank_in / count)
        out = np.where((found == 0) & (end <= 0), end, out)
        out = np.where(found == size - 1, b[np.maximum(size - 2, 0), cols], out)
        bad = (size < 2) | (observations == 0) | ~np.isposinf(b[top, cols])
        out = np.where(bad, np.nan, out)
    out = np.where(q < 0, -np.inf, out)
    out = np.where(q > 1, np.inf, out)
    result: Float64Array = np.where(np.isnan(q), np.nan, out)
    return result


def _group_buckets(
    rows: list[int], les: list[float], vec: Vector
) -> tuple[Float64Array, Float64Array, BoolArray]:
    """Sort a group's series by bound and merge equal bounds: (bounds, counts, present)."""
    bound = np.array(les)
    order = np.lexsort((bound, np.isnan(bound)))  # ascending, NaN last
    bound = bound[order]
    idx: Int64Array = np.asarray(rows, dtype=np.int64)[order]
    pres = vec.present[idx]
    vals = np.where(pres, vec.values[idx], 0.0)
    starts = np.flatnonzero(np.r_[True, ~(bound[1:] == bound[:-1])])
    if len(starts) == len(bound):
        return bound, vals, pres
    counts = np.add.reduceat(vals, starts, axis=0)
    present = np.logical_or.reduceat(pres, starts, axis=0)
    return bound[starts], counts, present


def histogram_quantile(args: list[Value], ctx: FunctionContext) -> Value:
    """``histogram_quantile(φ scalar, b instant-vector)`` over classic buckets."""
    q = scalar_arg(args, 0).astype(np.float64)
    vec = vector_arg(args, 1)
    groups: dict[Labels, tuple[list[int], list[float]]] = {}
    for i, ls in enumerate(vec.labels):
        le = parse_float(ls.get(BUCKET_LABEL))
        if le is None:
            continue
        rows, les = groups.setdefault(ls.without(BUCKET_LABEL), ([], []))
        rows.append(i)
        les.append(le)
    labels: list[Labels] = []
    values = np.zeros((len(groups), vec.steps))
    present = np.zeros((len(groups), vec.steps), dtype=bool)
    for g, (key, (rows, les)) in enumerate(groups.items()):
        bounds, counts, pres = _group_buckets(rows, les, vec)
        labels.append(key.without(METRIC_NAME))
        values[g] = bucket_quantile(q, bounds, counts, pres)
        present[g] = pres.any(axis=0)
    return Vector(labels, values, present)


def native_histogram_only(args: list[Value], ctx: FunctionContext) -> Value:
    """``histogram_count``, ``histogram_sum``, ``histogram_fraction``: they read native
    histogram samples only, and classic data has none, so the result is empty."""
    return Vector.empty(len(ctx.times))

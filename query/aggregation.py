"""Aggregation operators (``sum``, ``avg``, …, ``topk``, ``quantile``, ``count_values``)
over whole step grids, with Prometheus 2.42's numerics.

Series are grouped once (``by`` keeps the listed labels, ``without`` drops them and
``__name__``); groups are numbered in order of first appearance, which is the order
Prometheus returns them in an instant query. Reductions are numpy over all groups and steps:

* ``sum`` adds each group's rows one by one in row order (the order of the input vector:
  a selector's series in label order, a function's output in its input's order), as
  Prometheus's ``group.value += s.V`` does, so that rounding (``1e20 + -1e20 + 1``) is the
  same: ``ufunc.reduceat`` and pairwise summation would add in another order;
* ``count``, ``group``, ``min``, ``max`` reduce each group's rows with ``ufunc.reduceat``
  (exact in any order);
* ``avg`` (incremental mean with 2.42's infinity handling) and ``stddev``/``stdvar``
  (Welford) are sequential recurrences: one numpy step per group *member*, over all groups
  and steps at once;
* ``topk``/``bottomk``/``quantile`` rank the rows of every group at every step with stable
  sorts along the series axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from vigilops.query.ast import AggOp, AggregateExpr
from vigilops.query.gomath import go_format_f, go_format_g
from vigilops.query.grouping import keep_labels, number_groups
from vigilops.query.limits import QueryLimits
from vigilops.tsdb.compiled import compile_loop
from vigilops.query.values import (
    BoolArray,
    ExecutionError,
    Float64Array,
    Int64Array,
    Scalar,
    String,
    Value,
    Vector,
)
from vigilops.tsdb.model import METRIC_NAME, Labels, go_quote, valid_label_name

# The int64 range a float may be converted to (Go's float → int64 bounds in Prometheus).
_MAX_INT64_FLOAT = 9223372036854774784.0
_MIN_INT64_FLOAT = -9223372036854775808.0


def eval_aggregation(expr: AggregateExpr, vec: Vector, param: Value | None, limits: QueryLimits) -> Vector:
    """Evaluate `expr` given its evaluated operand `vec` and parameter."""
    vec = vec.compact()
    if expr.op is AggOp.COUNT_VALUES:
        assert isinstance(param, String)
        return _count_values(expr, vec, param.value, limits)
    if expr.op in (AggOp.TOPK, AggOp.BOTTOMK):
        assert isinstance(param, Scalar)
        ks = _k_per_step(param.values)
        if not len(vec):
            return Vector.empty(vec.steps)
        return _top_bottom(expr, vec, ks)
    if not len(vec):
        return Vector.empty(vec.steps)
    group_labels = group_keys(vec.labels, expr.grouping, expr.without)
    ids, n = number_groups(group_labels)
    groups = _Groups(ids, n)
    labels = list(dict.fromkeys(group_labels))
    op = expr.op
    if op is AggOp.SUM:
        values, present = groups.ordered_sum(vec, limits)
        return Vector(labels, np.where(present, values, 0.0), present)
    present = groups.any_present(vec.present)
    if op is AggOp.COUNT:
        values = groups.reduce(np.add, vec.present.astype(np.float64))
    elif op is AggOp.GROUP:
        values = np.ones(present.shape)
    elif op is AggOp.MAX:
        values = groups.reduce(np.fmax, np.where(vec.present, vec.values, np.nan))
    elif op is AggOp.MIN:
        values = groups.reduce(np.fmin, np.where(vec.present, vec.values, np.nan))
    elif op is AggOp.AVG:
        values = _incremental_mean(groups, vec, limits)
    elif op in (AggOp.STDDEV, AggOp.STDVAR):
        values = _variance(groups, vec, limits)
        if op is AggOp.STDDEV:
            values = np.sqrt(values)
    elif op is AggOp.QUANTILE:
        assert isinstance(param, Scalar)
        values = _quantile(groups, vec, param.values)
    else:  # pragma: no cover - the parser knows no other operator
        raise ExecutionError(f"unknown aggregation {op.value}")
    return Vector(labels, np.where(present, values, 0.0), present)


def group_keys(label_sets: Sequence[Labels], grouping: tuple[str, ...], without: bool) -> list[Labels]:
    """`group_key` of every series; with ``by``, one `Labels` per distinct group, looked up
    by the grouping labels' values (series far outnumber groups)."""
    if without:
        return [group_key(ls, grouping, without) for ls in label_sets]
    if not grouping:
        return [Labels()] * len(label_sets)
    names = sorted(set(grouping))
    if len(names) == 1:
        return _one_label_keys(label_sets, names[0])
    memo: dict[tuple[str, ...], Labels] = {}
    out: list[Labels] = []
    for ls in label_sets:
        values = tuple(ls.get(n) for n in names)
        key = memo.get(values)
        if key is None:
            key = memo[values] = Labels.from_flat(
                s for n, v in zip(names, values, strict=True) if v for s in (n, v)
            )
        out.append(key)
    return out


def _one_label_keys(label_sets: Sequence[Labels], name: str) -> list[Labels]:
    """`group_keys` for ``by (name)``: keyed by that one value, no tuple per series."""
    memo: dict[str, Labels] = {}
    out: list[Labels] = []
    for ls in label_sets:
        value = ls.get(name)
        key = memo.get(value)
        if key is None:
            key = memo[value] = Labels.from_flat((name, value) if value else ())
        out.append(key)
    return out


def group_key(labels: Labels, grouping: tuple[str, ...], without: bool) -> Labels:
    """The label set of the group a series falls into."""
    if without:
        return labels.without(METRIC_NAME, *grouping)
    return keep_labels(labels, grouping) if grouping else Labels()


class _Groups:
    """Rows sorted by group: ``perm`` (row order), ``starts`` (first sorted index of each
    group), ``sizes``, and each group's members as a ``(groups, max_size)`` matrix."""

    def __init__(self, ids: Int64Array, n: int) -> None:
        self.ids = ids
        self.n = n
        self.perm = np.argsort(ids, kind="stable")
        self.sizes = np.bincount(ids, minlength=n)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)

    def reduce(self, ufunc: np.ufunc, arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Reduce the rows of each group in row order: ``(groups, S)``."""
        out: npt.NDArray[Any] = ufunc.reduceat(arr[self.perm], self.starts, axis=0)
        return out

    def ordered_sum(self, vec: Vector, limits: QueryLimits) -> tuple[Float64Array, BoolArray]:
        """``(groups, S)``: each group's present samples added strictly one after the other
        in row order, starting from -0.0, and where it has any: one compiled pass."""
        limits.check()
        out = np.full((self.n, vec.steps), -0.0)
        present = np.zeros((self.n, vec.steps), dtype=np.bool_)
        _ordered_sum(np.ascontiguousarray(vec.values, dtype=np.float64),
                     np.ascontiguousarray(vec.present, dtype=np.bool_), self.ids.astype(np.int64), out,
                     present)
        return out, present

    def any_present(self, present: BoolArray) -> BoolArray:
        """``(groups, S)``: whether any row of the group is present."""
        out = np.zeros((self.n, present.shape[1]), dtype=np.bool_)
        _any_present(np.ascontiguousarray(present, dtype=np.bool_), self.ids.astype(np.int64), out)
        return out

    def members(self) -> Int64Array:
        """``(groups, max_size)`` row indices, -1 padded, each group's rows in order."""
        pos = np.arange(len(self.ids)) - self.starts[self.ids[self.perm]]
        out = np.full((self.n, int(self.sizes.max())), -1, dtype=np.int64)
        out[self.ids[self.perm], pos] = self.perm
        return out


def _ordered_sum_loop(
    values: Float64Array, present: BoolArray, ids: Int64Array, out: Float64Array, out_present: BoolArray
) -> None:
    for r in range(values.shape[0]):
        g = ids[r]
        for j in range(values.shape[1]):
            if present[r, j]:
                out[g, j] += values[r, j]
                out_present[g, j] = True


#: Adds the present samples of row ``r`` into row ``ids[r]`` of `out`, rows in order: per
#: group and step the same sequence of IEEE additions as Prometheus's loop over the series
#: (skipping an absent sample is adding -0.0, which changes nothing).
_ordered_sum = compile_loop(
    _ordered_sum_loop,
    lambda: (np.zeros((1, 1)), np.ones((1, 1), np.bool_), np.zeros(1, np.int64), np.zeros((1, 1)),
             np.zeros((1, 1), np.bool_)),
)


def _any_present_loop(present: BoolArray, ids: Int64Array, out: BoolArray) -> None:
    for r in range(present.shape[0]):
        g = ids[r]
        for j in range(present.shape[1]):
            out[g, j] |= present[r, j]


_any_present = compile_loop(
    _any_present_loop, lambda: (np.ones((1, 1), np.bool_), np.zeros(1, np.int64), np.zeros((1, 1), np.bool_)),
)


def _incremental_mean(groups: _Groups, vec: Vector, limits: QueryLimits) -> Float64Array:
    """2.42's ``avg``: ``mean += v/n - mean/n`` per sample in row order, an infinite mean
    kept when the new value cannot change it."""
    mean = np.zeros((groups.n, vec.steps))
    count = np.zeros((groups.n, vec.steps))
    members = groups.members()
    with np.errstate(all="ignore"):
        for k in range(members.shape[1]):
            limits.check()
            rows = members[:, k]
            g = np.flatnonzero(rows >= 0)
            v, p = vec.values[rows[g]], vec.present[rows[g]]
            m, c = mean[g], count[g] + p
            inf = np.isinf(m)
            same_inf = np.isinf(v) & ((m > 0) == (v > 0))
            finite = ~np.isinf(v) & ~np.isnan(v)
            skip = inf & (same_inf | finite)
            updated = np.where(skip, m, m + (v / c - m / c))
            mean[g] = np.where(p, np.where(c == 1, v, updated), m)
            count[g] = c
    return mean


def _variance(groups: _Groups, vec: Vector, limits: QueryLimits) -> Float64Array:
    """2.42's ``stdvar``: Welford's running mean and sum of squares, divided by n."""
    mean = np.zeros((groups.n, vec.steps))
    m2 = np.zeros((groups.n, vec.steps))
    count = np.zeros((groups.n, vec.steps))
    members = groups.members()
    with np.errstate(all="ignore"):
        for k in range(members.shape[1]):
            limits.check()
            rows = members[:, k]
            g = np.flatnonzero(rows >= 0)
            v, p = vec.values[rows[g]], vec.present[rows[g]]
            m, c = mean[g], count[g] + p
            first = p & (c == 1)
            later = p & (c > 1)
            delta = v - m
            new_mean = m + delta / c
            mean[g] = np.where(first, v, np.where(later, new_mean, m))
            m2[g] = np.where(later, m2[g] + delta * (v - new_mean), m2[g])
            count[g] = c
        return np.asarray(m2 / count, dtype=np.float64)


def _sorted_order(keys: list[np.ndarray]) -> Int64Array:
    """Row order per step (``(N, S)``) sorting by `keys`, most significant last, each
    sort stable (so earlier keys break ties)."""
    order = np.broadcast_to(np.arange(keys[0].shape[0])[:, None], keys[0].shape).copy()
    for key in keys:
        idx = np.argsort(np.take_along_axis(key, order, axis=0), axis=0, kind="stable")
        order = np.take_along_axis(order, idx, axis=0)
    return order


def _quantile(groups: _Groups, vec: Vector, q: Float64Array) -> Float64Array:
    """2.42's ``quantile``: sort (NaN first), interpolate between the two closest ranks;
    ``q < 0`` gives -Inf, ``q > 1`` +Inf, NaN gives NaN."""
    nan = np.isnan(vec.values)
    category = np.where(vec.present, np.where(nan, 0, 1), 2)
    value_key = np.where(category == 1, vec.values, 0.0)
    group_ids = np.broadcast_to(groups.ids[:, None], vec.present.shape)
    order = _sorted_order([value_key, category, group_ids])
    ranked = np.take_along_axis(vec.values, order, axis=0)
    n = groups.reduce(np.add, vec.present.astype(np.float64))
    cols = np.arange(vec.steps)[None, :]
    with np.errstate(all="ignore"):
        rank = q[None, :] * (n - 1)
        lower = np.maximum(0.0, np.floor(rank))
        upper = np.minimum(n - 1, lower + 1)
        weight = rank - np.floor(rank)
        base = groups.starts[:, None]
        lo_i = np.clip(base + np.nan_to_num(lower).astype(np.int64), 0, len(vec) - 1)
        hi_i = np.clip(base + np.nan_to_num(upper).astype(np.int64), 0, len(vec) - 1)
        out = ranked[lo_i, cols] * (1 - weight) + ranked[hi_i, cols] * weight
    out = np.where(q[None, :] < 0, -np.inf, np.where(q[None, :] > 1, np.inf, out))
    return np.asarray(np.where(np.isnan(q)[None, :], np.nan, out), dtype=np.float64)


# ---- topk / bottomk ------------------------------------------------------------------------
def _k_per_step(param: Float64Array) -> Int64Array:
    bad = ~((param <= _MAX_INT64_FLOAT) & (param >= _MIN_INT64_FLOAT))
    if bad.any():
        raise ExecutionError(f"Scalar value {go_format_g(float(param[np.argmax(bad)]))} overflows int64")
    return np.trunc(param).astype(np.int64)


def _top_bottom(expr: AggregateExpr, vec: Vector, ks: Int64Array) -> Vector:
    """``topk``/``bottomk``: the `k` largest (smallest) series of each group at each step,
    with their own labels. As Prometheus's heap does, NaN loses to any number, among equal
    numbers the earlier series wins and among NaNs the later one."""
    group_labels = group_keys(vec.labels, expr.grouping, expr.without)
    ids, n = number_groups(group_labels)
    if vec.steps > 1 and len(vec) and int(ks.max()) <= _SMALL_K:
        # A range query's usual small k: the k best of each group kept step by step in a
        # compiled pass (the sorts below cost one strided argsort per key).
        chosen = np.zeros_like(vec.present)
        _top_bottom_small_k(
            np.ascontiguousarray(vec.values, dtype=np.float64),
            np.ascontiguousarray(vec.present), ids, n, np.ascontiguousarray(ks, dtype=np.int64),
            expr.op is AggOp.BOTTOMK, chosen,
        )
        return Vector(list(vec.labels), np.where(chosen, vec.values, 0.0), chosen).compact()
    groups = _Groups(ids, n)
    nan = np.isnan(vec.values)
    rows = np.arange(len(vec))[:, None]
    category = np.where(vec.present, np.where(nan, 1, 0), 2)
    value = vec.values if expr.op is AggOp.BOTTOMK else -vec.values
    value_key = np.where(category == 0, value, 0.0)
    tie_key = np.where(nan, -rows, rows)
    group_ids = np.broadcast_to(ids[:, None], vec.present.shape)
    order = _sorted_order([tie_key, value_key, category, group_ids])
    rank = np.arange(len(vec))[:, None] - groups.starts[np.take_along_axis(group_ids, order, axis=0)]
    chosen_sorted = (rank < ks[None, :]) & (np.take_along_axis(category, order, axis=0) < 2)
    chosen = np.zeros_like(vec.present)
    np.put_along_axis(chosen, order, chosen_sorted, axis=0)
    out_rows = order[:, 0][chosen_sorted[:, 0]] if vec.steps == 1 else np.arange(len(vec))
    out = Vector(
        [vec.labels[i] for i in out_rows.tolist()],
        np.where(chosen, vec.values, 0.0)[out_rows],
        chosen[out_rows],
    )
    return out.compact()


#: Largest k (per step) that `_top_bottom_small_k` handles.
_SMALL_K = 64


def _top_bottom_small_k_loop(
    values: Float64Array, present: BoolArray, ids: Int64Array, n_groups: int, ks: Int64Array,
    bottom: bool, chosen: BoolArray,
) -> None:
    rows, steps = values.shape
    kmax = 0
    for j in range(steps):
        kmax = max(kmax, ks[j])
    best = np.empty((n_groups, max(kmax, 1)), dtype=np.int64)  # rows, best first
    held = np.zeros(n_groups, dtype=np.int64)
    for j in range(steps):
        k = ks[j]
        if k <= 0:
            continue
        held[:] = 0
        for r in range(rows):
            if not present[r, j]:
                continue
            g = ids[r]
            v = values[r, j]
            # Where r goes among the group's best: after every row it does not beat. A
            # number beats NaN and, for topk, any smaller number (bottomk: larger); an
            # earlier row keeps its place on a tie, except that among NaNs the later wins.
            h = held[g]
            pos = h
            while pos > 0:
                other = values[best[g, pos - 1], j]
                if v != v:
                    beats = other != other
                elif other != other:
                    beats = True
                elif bottom:
                    beats = v < other
                else:
                    beats = v > other
                if not beats:
                    break
                pos -= 1
            if pos >= k:
                continue
            last = h if h < k else k - 1
            for q in range(last, pos, -1):
                best[g, q] = best[g, q - 1]
            best[g, pos] = r
            if h < k:
                held[g] = h + 1
        for g in range(n_groups):
            for q in range(held[g]):
                chosen[best[g, q], j] = True


#: Marks ``chosen[r, j]`` for the ``ks[j]`` best present rows of each group at each step
#: (topk, or bottomk with `bottom`), in one pass over the rows per step.
_top_bottom_small_k = compile_loop(
    _top_bottom_small_k_loop,
    lambda: (np.zeros((1, 2)), np.ones((1, 2), np.bool_), np.zeros(1, np.int64), 1,
             np.ones(2, np.int64), False, np.zeros((1, 2), np.bool_)),
)


# ---- count_values --------------------------------------------------------------------------
def _count_values(expr: AggregateExpr, vec: Vector, label: str, limits: QueryLimits) -> Vector:
    """``count_values("label", v)``: per group and distinct value (formatted like Go's
    ``FormatFloat(v, 'f', -1, 64)``), how many series have it at each step. The group of a
    series is its group with `label` set to the value (unless ``without`` drops `label`)."""
    if not valid_label_name(label):
        raise ExecutionError(f"invalid label name {go_quote(label)}")
    rows, cols = np.nonzero(vec.present)
    if not len(rows):
        return Vector.empty(vec.steps)
    bits, bits_inv = np.unique(vec.values[rows, cols].view(np.uint64), return_inverse=True)
    texts = [go_format_f(float(b)) for b in bits.view(np.float64)]
    text_ids, n_texts = number_groups(texts)
    text_of = dict(zip(text_ids.tolist(), texts))
    sample_text = text_ids[bits_inv.reshape(-1)]
    if expr.without:
        with_text = label not in expr.grouping
        base = [ls.without(METRIC_NAME, label, *expr.grouping) for ls in vec.labels]
    else:
        with_text = True
        base = [keep_labels(ls, [g for g in expr.grouping if g != label]) for ls in vec.labels]
    base_ids, _ = number_groups(base)
    base_list = list(dict.fromkeys(base))
    pair = base_ids[rows] * n_texts + (sample_text if with_text else 0)
    keys, inv = np.unique(pair, return_inverse=True)
    inv = inv.reshape(-1)
    limits.dense(len(keys) * vec.steps)
    first_row = np.full(len(keys), len(vec), dtype=np.int64)
    np.minimum.at(first_row, inv, rows)
    order = np.argsort(first_row, kind="stable")  # groups by first appearance, as Prometheus
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    labels = []
    for key in keys[order].tolist():
        d = base_list[key // n_texts].to_dict()
        if with_text:
            d[label] = text_of[key % n_texts]
        labels.append(Labels(d))
    counts = np.zeros((len(keys), vec.steps))
    np.add.at(counts, (rank[inv], cols), 1.0)
    present: BoolArray = counts > 0
    return Vector(labels, counts, present)

"""Binary operators over whole step grids, with Prometheus 2.42's semantics.

* Arithmetic (``+ - * / % ^ atan2``) follows Go's float64 rules (``%`` is ``math.Mod``,
  ``^`` ``math.Pow``; division by zero gives ±Inf or NaN). Comparisons filter, or give 0/1
  with ``bool``; a comparison with NaN is false (except ``!=``).
* ``__name__`` is dropped by ``+ - * / % ^`` and by ``bool`` comparisons; ``atan2`` and
  filtering comparisons keep it (2.42's ``shouldDropMetricName``).
* Vector/vector operations match series by signature (``on``/``ignoring``), one-to-one or
  many-to-one/one-to-many with ``group_left``/``group_right``; the matching errors are
  checked step by step, as Prometheus evaluates, and worded as Prometheus words them.
* ``and``/``or``/``unless`` match many-to-many and keep the label sets as they are.

Signatures and result label sets are computed once per series in Python; values, presence
and the per-step error checks are numpy over all series and steps.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vigilops.query.ast import BinaryExpr, BinOp, Cardinality, VectorMatching
from vigilops.query.gomath import go_atan2, go_pow
from vigilops.query.grouping import (
    first_dup_step,
    group_any,
    group_count,
    keep_labels,
    labels_string,
    number_groups,
    without_name,
)
from vigilops.query.values import (
    BoolArray,
    ExecutionError,
    Float64Array,
    Int64Array,
    Scalar,
    Value,
    Vector,
    merge_same_labels,
)
from vigilops.tsdb.model import METRIC_NAME, Labels

_ARITHMETIC: dict[BinOp, Callable[[Float64Array, Float64Array], Float64Array]] = {
    BinOp.ADD: np.add,
    BinOp.SUB: np.subtract,
    BinOp.MUL: np.multiply,
    BinOp.DIV: np.divide,
    BinOp.MOD: np.fmod,
    BinOp.POW: go_pow,
    BinOp.ATAN2: go_atan2,
}
_COMPARE: dict[BinOp, Callable[[Float64Array, Float64Array], BoolArray]] = {
    BinOp.EQLC: np.equal,
    BinOp.NEQ: np.not_equal,
    BinOp.GTR: np.greater,
    BinOp.LSS: np.less,
    BinOp.GTE: np.greater_equal,
    BinOp.LTE: np.less_equal,
}
#: Operators whose result has no ``__name__`` (2.42 leaves it on ``atan2``).
_DROPS_NAME = frozenset({BinOp.ADD, BinOp.SUB, BinOp.MUL, BinOp.DIV, BinOp.MOD, BinOp.POW})


def apply_op(op: BinOp, a: Float64Array, b: Float64Array) -> tuple[Float64Array, BoolArray | None]:
    """``a op b`` elementwise: the value and, for comparisons, whether it holds (the value
    of a comparison is `a`)."""
    with np.errstate(all="ignore"):
        fn = _ARITHMETIC.get(op)
        if fn is not None:
            return np.asarray(fn(a, b), dtype=np.float64), None
        keep = np.asarray(_COMPARE[op](a, b), dtype=bool)
    return np.broadcast_to(a, keep.shape), keep


def eval_binary(expr: BinaryExpr, lhs: Value, rhs: Value) -> Value:
    """Evaluate `expr` given its evaluated operands (scalars and/or vectors)."""
    if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
        value, keep = apply_op(expr.op, lhs.values, rhs.values)
        if keep is not None:  # the parser allows scalar comparisons only with bool
            value = keep.astype(np.float64)
        return Scalar(np.array(value, dtype=np.float64))
    if isinstance(lhs, Vector) and isinstance(rhs, Scalar):
        return vector_scalar(expr.op, lhs, rhs, swap=False, return_bool=expr.return_bool)
    if isinstance(lhs, Scalar) and isinstance(rhs, Vector):
        return vector_scalar(expr.op, rhs, lhs, swap=True, return_bool=expr.return_bool)
    if isinstance(lhs, Vector) and isinstance(rhs, Vector):
        matching = expr.matching or VectorMatching()
        if expr.op.is_set_operator:
            return set_operation(expr.op, lhs, rhs, matching)
        return vector_vector(expr.op, lhs, rhs, matching, expr.return_bool)
    raise ExecutionError(f"unsupported operand types for {expr.op.value}")  # the parser prevents it


def vector_scalar(op: BinOp, vec: Vector, scalar: Scalar, swap: bool, return_bool: bool) -> Vector:
    """``vector op scalar`` (or ``scalar op vector`` with `swap`)."""
    lv, sv = vec.values, scalar.values[None, :]
    value, keep = apply_op(op, sv, lv) if swap else apply_op(op, lv, sv)
    labels = vec.labels
    if keep is None:
        present = vec.present
        labels = [without_name(ls) for ls in labels] if op in _DROPS_NAME else labels
    elif return_bool:
        value, present = keep.astype(np.float64), vec.present
        labels = [without_name(ls) for ls in labels]
    else:
        value, present = lv, vec.present & keep  # a filter keeps the vector's own value
    out = Vector(labels, np.where(present, value, 0.0), present).compact()
    return merge_same_labels(out) if labels is not vec.labels else out


# ---- vector matching -----------------------------------------------------------------------
def _signature_fn(matching: VectorMatching) -> Callable[[Labels], object]:
    if matching.on:
        names = sorted(set(matching.labels))
        return lambda ls: tuple(ls.get(n) for n in names)
    drop = (METRIC_NAME, *matching.labels)
    return lambda ls: ls.without(*drop)


def _match_labels(labels: Labels, matching: VectorMatching) -> Labels:
    """Go's ``Labels.MatchLabels``: the labels a signature is made of."""
    names = set(matching.labels)
    if matching.on:
        return keep_labels(labels, list(names))
    return labels.without(METRIC_NAME, *names)


def result_labels(
    many: Labels, one: Labels, op: BinOp, matching: VectorMatching, return_bool: bool
) -> Labels:
    """Label set of a matched pair (2.42's ``resultMetric``): the "many" side's labels,
    without ``__name__`` for arithmetic, reduced to/by the ``on``/``ignoring`` labels in
    one-to-one matching, with the ``group_x`` labels copied from the "one" side."""
    ls = without_name(many) if op in _DROPS_NAME else many
    if matching.card is Cardinality.ONE_TO_ONE:
        ls = keep_labels(ls, matching.labels) if matching.on else ls.without(*matching.labels)
    if matching.include:
        d = ls.to_dict()
        for name in matching.include:
            v = one.get(name)
            if v:
                d[name] = v
            else:
                d.pop(name, None)
        ls = Labels(d)
    return without_name(ls) if return_bool else ls


def _first(step: int | None) -> int:
    return step if step is not None else 1 << 62


def vector_vector(
    op: BinOp, lhs: Vector, rhs: Vector, matching: VectorMatching, return_bool: bool
) -> Vector:
    """An arithmetic or comparison operator between two vectors (one-to-one, many-to-one
    or one-to-many matching)."""
    steps = lhs.steps
    swapped = matching.card is Cardinality.ONE_TO_MANY
    many, one = (rhs, lhs) if swapped else (lhs, rhs)
    sig = _signature_fn(matching)
    index: dict[object, int] = {}
    one_ids = np.fromiter(
        (index.setdefault(sig(ls), len(index)) for ls in one.labels), dtype=np.int64, count=len(one)
    )
    many_ids = np.fromiter((index.get(sig(ls), -1) for ls in many.labels), dtype=np.int64, count=len(many))
    n_sigs = len(index)
    # Prometheus skips a step at which either side is empty (no match, no error).
    active: BoolArray = np.asarray(many.present.any(axis=0) & one.present.any(axis=0), dtype=bool)

    # The "one" side per signature and step: at most one present series may carry it.
    one_present = one.present & active[None, :]
    one_counts = group_count(one_ids, one_present, n_sigs)
    dup_bad = (one_counts > 1).any(axis=0)
    dup_step = int(np.argmax(dup_bad)) if dup_bad.any() else None
    sig_present = one_counts > 0
    rows = np.arange(len(one), dtype=np.int64)[:, None]
    sig_row = np.full((n_sigs, steps), -1, dtype=np.int64)
    if len(one):
        np.maximum.at(sig_row, one_ids, np.where(one_present, rows, -1))
    safe_row = np.maximum(sig_row, 0)
    sig_value = one.values[safe_row, np.arange(steps)[None, :]] if len(one) else np.zeros((0, steps))

    # Per "many" series and step: the matched value and series of the "one" side.
    has_sig = many_ids >= 0
    ids = np.where(has_sig, many_ids, 0)
    matched = many.present & has_sig[:, None] & (sig_present[ids] if n_sigs else False)
    other = sig_value[ids] if n_sigs else np.zeros_like(many.values)
    left, right = (other, many.values) if swapped else (many.values, other)
    value, keep = apply_op(op, left, right)
    if keep is None:
        present = matched
    elif return_bool:
        value, present = keep.astype(np.float64), matched
    else:
        present = matched & keep
    other_row = sig_row[ids] if n_sigs else np.zeros_like(many.present, dtype=np.int64)

    # Output series: one per "many" series, or per (many, one) pair when group_x labels
    # are copied (then the "one" series chosen may change from step to step).
    if matching.include and len(one):
        pair = np.where(present, np.arange(len(many))[:, None] * len(one) + other_row, -1)
        keys = np.unique(pair[pair >= 0])
        out_rows = keys // len(one)
        out_present = pair[out_rows] == keys[:, None]
        labels = [
            result_labels(many.labels[m], one.labels[o], op, matching, return_bool)
            for m, o in zip(out_rows.tolist(), (keys % len(one)).tolist())
        ]
    else:
        out_rows = np.flatnonzero(present.any(axis=1))
        out_present = present[out_rows]
        empty = Labels()
        labels = [
            result_labels(many.labels[m], empty, op, matching, return_bool) for m in out_rows.tolist()
        ]
    out_values = np.where(out_present, value[out_rows], 0.0)

    # Errors, the earliest step first; at one step in Prometheus's order of checks.
    out_sigs = many_ids[out_rows]
    if matching.card is Cardinality.ONE_TO_ONE:
        match_step = first_dup_step(out_sigs, out_present, n_sigs)
        match_msg = "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
    else:
        key_ids, n_keys = number_groups(list(zip(out_sigs.tolist(), labels)))
        match_step = first_dup_step(key_ids, out_present, n_keys)
        match_msg = "multiple matches for labels: grouping labels must ensure unique matches"
    label_ids, n_labels = number_groups(labels)
    same_step = first_dup_step(label_ids, out_present, n_labels)
    worst = min(_first(dup_step), _first(match_step), _first(same_step))
    if worst == _first(dup_step) and dup_step is not None:
        raise ExecutionError(_duplicate_message(one, one_ids, dup_step, matching))
    if worst == _first(match_step) and match_step is not None:
        raise ExecutionError(match_msg)
    if same_step is not None:
        raise ExecutionError("vector cannot contain metrics with the same labelset")
    out = Vector(labels, out_values, out_present)
    return merge_same_labels(out) if n_labels < len(labels) else out


def _duplicate_message(one: Vector, one_ids: Int64Array, step: int, matching: VectorMatching) -> str:
    seen: dict[int, int] = {}
    for r in np.flatnonzero(one.present[:, step]).tolist():
        s = int(one_ids[r])
        if s in seen:
            first, dup = one.labels[seen[s]], one.labels[r]
            side = "left" if matching.card is Cardinality.ONE_TO_MANY else "right"
            return (
                f"found duplicate series for the match group {labels_string(_match_labels(dup, matching))} "
                f"on the {side} hand-side of the operation: [{labels_string(dup)}, {labels_string(first)}]"
                ";many-to-many matching not allowed: matching labels must be unique on one side"
            )
        seen[s] = r
    raise AssertionError("no duplicate at the reported step")  # pragma: no cover


# ---- set operators -------------------------------------------------------------------------
def set_operation(op: BinOp, lhs: Vector, rhs: Vector, matching: VectorMatching) -> Vector:
    """``and``, ``or``, ``unless``: series kept whole (``__name__`` included)."""
    sig = _signature_fn(matching)
    ids, n = number_groups([sig(ls) for ls in lhs.labels] + [sig(ls) for ls in rhs.labels])
    lhs_ids, rhs_ids = ids[: len(lhs)], ids[len(lhs) :]
    if op is BinOp.OR:
        lhs_sigs = group_any(lhs_ids, lhs.present, n)
        rhs_present = rhs.present & ~lhs_sigs[rhs_ids]
        out = Vector(
            lhs.labels + rhs.labels,
            np.concatenate([lhs.values, np.where(rhs_present, rhs.values, 0.0)]),
            np.concatenate([lhs.present, rhs_present]),
        ).compact()
        return merge_same_labels(out)
    rhs_sigs = group_any(rhs_ids, rhs.present, n)[lhs_ids]
    present = lhs.present & rhs_sigs if op is BinOp.AND else lhs.present & ~rhs_sigs
    return Vector(lhs.labels, np.where(present, lhs.values, 0.0), present).compact()

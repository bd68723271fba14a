"""Small vectorised helpers for rows that fall into groups (aggregation groups, matching
signatures, equal label sets): numbering the groups, per-group reductions over all steps at
once, and finding the first step at which a group holds two present rows."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from vigilops.query.values import BoolArray, Int64Array
from vigilops.tsdb.model import METRIC_NAME, Labels, go_quote


def number_groups(keys: Sequence[Hashable]) -> tuple[Int64Array, int]:
    """Group ids in order of first appearance: ``(ids, group_count)``."""
    seen: dict[Hashable, int] = {}
    ids = np.fromiter((seen.setdefault(k, len(seen)) for k in keys), dtype=np.int64, count=len(keys))
    return ids, len(seen)


def group_count(ids: Int64Array, present: BoolArray, groups: int) -> Int64Array:
    """``(groups, S)``: how many rows of each group are present at each step."""
    counts = np.zeros((groups, present.shape[1]), dtype=np.int64)
    if len(ids):
        np.add.at(counts, ids, present.astype(np.int64))
    return counts


def group_any(ids: Int64Array, present: BoolArray, groups: int) -> BoolArray:
    """``(groups, S)``: whether any row of each group is present at each step."""
    out: BoolArray = group_count(ids, present, groups) > 0
    return out


def first_dup_step(ids: Int64Array, present: BoolArray, groups: int) -> int | None:
    """The first step at which some group has two present rows, or None."""
    if groups == len(ids):
        return None
    bad = (group_count(ids, present, groups) > 1).any(axis=0)
    return int(np.argmax(bad)) if bad.any() else None


def labels_string(labels: Labels) -> str:
    """Go's ``labels.Labels.String()``: ``{__name__="x", a="b"}`` (used in error messages)."""
    return "{" + ", ".join(f"{n}={go_quote(v)}" for n, v in labels.pairs()) + "}"


def keep_labels(labels: Labels, names: Sequence[str]) -> Labels:
    """The labels of `labels` whose names are in `names`."""
    want = set(names)
    return Labels.from_flat(
        s for i in range(0, len(labels), 2) if labels[i] in want for s in labels[i : i + 2]
    )


def without_name(labels: Labels) -> Labels:
    """`labels` without ``__name__`` (which need not come first: ``A`` sorts before it)."""
    for i in range(0, len(labels), 2):
        if labels[i] == METRIC_NAME:
            return Labels.from_flat(labels[:i] + labels[i + 2 :])
    return labels

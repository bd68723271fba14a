"""Matcher evaluation over an inverted index, shared by the head and by blocks.

An index answers three questions (`PostingsSource`): which values a label name has, which
series carry a given name=value pair (a sorted int64 array: "postings"), and which series
exist at all. Selection is set algebra on sorted arrays, the way Prometheus's
`PostingsForMatchers` works: intersect the postings of the matchers that need a label,
subtract those of negative matchers, and only fall back to "all series" when every
matcher also matches the empty string.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from .model import Matcher, MatchType

Postings = npt.NDArray[np.int64]
EMPTY: Postings = np.zeros(0, dtype=np.int64)


class PostingsSource(Protocol):
    def label_values_of(self, name: str) -> Sequence[str]:
        """All values of label `name` in the index (any order)."""
        ...

    def postings_for(self, name: str, values: Sequence[str]) -> Postings:
        """Sorted, unique ids of series that have `name` set to any of `values`."""
        ...

    def all_postings(self) -> Postings:
        """Sorted ids of every series in the index."""
        ...


def matching_values(source: PostingsSource, m: Matcher) -> list[str]:
    """The values of `m.name` in the index that `m` accepts (empty string excluded)."""
    if m.type is MatchType.EQUAL:
        return [m.value] if m.value else []
    alternatives = m.literal_alternatives()
    if alternatives is not None:
        present = set(source.label_values_of(m.name))
        return [v for v in alternatives if v in present]
    return [v for v in source.label_values_of(m.name) if m.matches(v)]


def postings_for_matchers(source: PostingsSource, matchers: Sequence[Matcher]) -> Postings:
    """Sorted ids of the series selected by all `matchers`."""
    positive: list[Postings] = []
    negative: list[Postings] = []
    for m in matchers:
        if m.matches_empty():
            # Selects series lacking the label too: subtract those with a rejected value.
            rejected = [v for v in source.label_values_of(m.name) if v and not m.matches(v)]
            if rejected:
                negative.append(source.postings_for(m.name, rejected))
        else:
            values = matching_values(source, m)
            if not values:
                return EMPTY
            positive.append(source.postings_for(m.name, values))
    if positive:
        positive.sort(key=len)
        result = positive[0]
        for p in positive[1:]:
            result = np.intersect1d(result, p, assume_unique=True)
            if not len(result):
                return EMPTY
    else:
        result = source.all_postings()
    for n in negative:
        result = np.setdiff1d(result, n, assume_unique=True)
    return result


def merge_postings(lists: Sequence[Postings]) -> Postings:
    """Union of sorted postings lists."""
    if not lists:
        return EMPTY
    if len(lists) == 1:
        return lists[0]
    return np.unique(np.concatenate(lists))

"""The head's one-pass batch validation against a plain numpy statement of the rules."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vigilops.tsdb.errors import RejectReason
from vigilops.tsdb.head.appender import _REASONS, _validate
from vigilops.tsdb.model import MIN_TIME


def reference(refs, ts, bits, alive, next_ref, last_t, last_v, min_valid_t, replay, window, too_old_before):
    """The rules mask by mask (how the head validated before the compiled pass)."""
    counts = dict.fromkeys(_REASONS, 0)
    ok = (refs > 0) & (refs < next_ref)
    ok[ok] = alive[refs[ok]]
    keep = ok.copy()
    counts[RejectReason.UNKNOWN_SERIES] += int((~keep).sum())
    oob = keep & (ts < min_valid_t)
    counts[RejectReason.OUT_OF_BOUNDS] += int(oob.sum())
    keep &= ~oob
    if replay or not len(refs):
        return keep, counts
    safe = np.where(keep, refs, 0)
    lt = last_t[safe]
    same_t = np.zeros(len(refs), dtype=bool)
    same_t[1:] = (refs[1:] == refs[:-1]) & (ts[1:] == ts[:-1])
    conflict = np.zeros(len(refs), dtype=bool)
    conflict[:-1] = same_t[1:] & (bits[1:] != bits[:-1])
    dup_in_batch = np.zeros(len(refs), dtype=bool)
    dup_in_batch[:-1] = same_t[1:]
    counts[RejectReason.DUPLICATE] += int((keep & conflict).sum())
    keep &= ~dup_in_batch
    same = keep & (ts == lt)
    counts[RejectReason.DUPLICATE] += int((same & (bits != last_v[safe])).sum())
    keep &= ~same
    older = keep & (ts < lt)
    if window > 0:
        too_old = older & (ts < too_old_before)
        counts[RejectReason.TOO_OLD] += int(too_old.sum())
        keep &= ~too_old
    else:
        counts[RejectReason.OUT_OF_ORDER] += int(older.sum())
        keep &= ~older
    return keep, counts


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-1, 9), st.integers(0, 6), st.integers(0, 2)), max_size=30),
    st.lists(st.booleans(), min_size=8, max_size=8),
    st.lists(st.one_of(st.just(MIN_TIME), st.integers(0, 6)), min_size=8, max_size=8),
    st.lists(st.integers(0, 2), min_size=8, max_size=8),
    st.integers(0, 8),
    st.integers(0, 3),
    st.booleans(),
    st.integers(0, 3),
    st.integers(-1, 5),
)
def test_one_pass_agrees_with_the_rules(samples, alive_l, last_t_l, last_v_l, next_ref, min_valid_t, replay, window,
                                        too_old_before):
    refs = np.array([s[0] for s in samples], dtype=np.int64)
    ts = np.array([s[1] for s in samples], dtype=np.int64)
    bits = np.array([s[2] for s in samples], dtype=np.uint64)
    alive = np.array(alive_l, dtype=bool)
    last_t = np.array(last_t_l, dtype=np.int64)
    last_v = np.array(last_v_l, dtype=np.uint64)
    keep = np.empty(len(refs), dtype=bool)
    counts = np.zeros(len(_REASONS), dtype=np.int64)
    _validate(refs, ts, bits, alive, next_ref, last_t, last_v, min_valid_t, replay, window, too_old_before, keep,
              counts)
    want_keep, want_counts = reference(refs, ts, bits, alive, next_ref, last_t, last_v, min_valid_t, replay, window,
                                       too_old_before)
    assert keep.tolist() == want_keep.tolist()
    assert dict(zip(_REASONS, counts.tolist())) == want_counts


@given(st.lists(st.integers(-3, 12), max_size=30))
def test_repeated_references_are_found(refs: list[int]) -> None:
    from vigilops.tsdb.head.appender import _has_repeats

    arr = np.array(refs, dtype=np.int64)
    assert _has_repeats(arr) == (len(set(refs)) != len(refs))

"""topk/bottomk over a step grid: the compiled small-k pass agrees with the sorting path.

The sorting path (`_top_bottom` with k above `_SMALL_K`, and every instant query) is the
one the promqltest scripts and the comparisons with Prometheus check; this compares the
compiled pass with it on grids full of ties, NaNs, infinities, signed zeros and gaps.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vigilops.query import aggregation
from vigilops.query.ast import AggOp, AggregateExpr, NumberLiteral, VectorSelector
from vigilops.query.values import Vector
from vigilops.tsdb.model import Labels, Matcher, MatchType

_VALUES = [0.0, -0.0, 1.0, -1.0, 2.5, np.nan, np.inf, -np.inf, 1e300]


def _expr(op: AggOp, grouping: list[str]) -> AggregateExpr:
    selector = VectorSelector("m", (Matcher(MatchType.EQUAL, "__name__", "m"),))
    return AggregateExpr(op, selector, NumberLiteral(1.0), tuple(grouping), False)


@st.composite
def _grids(draw: st.DrawFn) -> tuple[Vector, np.ndarray, AggOp, list[str]]:
    rows = draw(st.integers(1, 12))
    steps = draw(st.integers(2, 6))
    pick = draw(st.lists(st.integers(0, len(_VALUES) - 1), min_size=rows * steps, max_size=rows * steps))
    values = np.array([_VALUES[i] for i in pick]).reshape(rows, steps)
    present = np.array(draw(st.lists(st.booleans(), min_size=rows * steps, max_size=rows * steps))).reshape(rows, steps)
    values = np.where(present, values, 0.0)
    labels = [Labels({"__name__": "m", "i": str(i), "g": str(draw(st.integers(0, 2)))}) for i in range(rows)]
    ks = np.array(draw(st.lists(st.integers(-1, rows + 1), min_size=steps, max_size=steps)), dtype=np.int64)
    op = draw(st.sampled_from([AggOp.TOPK, AggOp.BOTTOMK]))
    grouping = draw(st.sampled_from([[], ["g"]]))
    return Vector(labels, values, present), ks, op, grouping


@st.composite
def _slow_grids(draw: st.DrawFn) -> tuple[Vector, np.ndarray, AggOp, list[str]]:
    """Grids whose values mostly keep their order from step to step, as a dashboard's do
    (the compiled pass then keeps the step before's choice after checking it), with now
    and then a value that moves, a tie, a NaN, a gap or a different k."""
    rows = draw(st.integers(1, 10))
    steps = draw(st.integers(2, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    values = np.empty((rows, steps))
    values[:, 0] = rng.choice([0.0, 1.0, 2.0, 3.0, 5.0, 8.0, -1.0], rows) + rng.integers(0, 3, rows) * 10
    for j in range(1, steps):
        values[:, j] = values[:, j - 1]
        moved = rng.random(rows) < 0.15
        values[moved, j] = rng.choice([0.0, 1.0, 2.0, 5.0, 40.0, -3.0, np.nan, np.inf, -0.0], int(moved.sum()))
    present = rng.random((rows, steps)) > draw(st.sampled_from([0.0, 0.05, 0.3]))
    values = np.where(present, values, 0.0)
    labels = [Labels({"__name__": "m", "i": str(i), "g": str(int(rng.integers(0, 3)))}) for i in range(rows)]
    k = draw(st.integers(1, rows + 1))
    ks = np.where(rng.random(steps) < 0.1, rng.integers(-1, rows + 2, steps), k).astype(np.int64)
    op = draw(st.sampled_from([AggOp.TOPK, AggOp.BOTTOMK]))
    grouping = draw(st.sampled_from([[], ["g"]]))
    return Vector(labels, values, present), ks, op, grouping


@settings(max_examples=400, deadline=None)
@given(st.one_of(_grids(), _slow_grids()))
def test_small_k_pass_chooses_what_the_sorts_choose(case: tuple[Vector, np.ndarray, AggOp, list[str]]) -> None:
    vec, ks, op, grouping = case
    expr = _expr(op, grouping)
    compiled = aggregation._top_bottom(expr, vec, ks)
    saved = aggregation._SMALL_K
    aggregation._SMALL_K = -1  # every k above it: the sorting path
    try:
        sorted_path = aggregation._top_bottom(expr, vec, ks)
    finally:
        aggregation._SMALL_K = saved
    assert compiled.labels == sorted_path.labels
    np.testing.assert_array_equal(compiled.present, sorted_path.present)
    np.testing.assert_array_equal(compiled.values.view(np.uint64), sorted_path.values.view(np.uint64))


def test_ties_keep_the_earlier_series_and_nans_the_later() -> None:
    labels = [Labels({"__name__": "m", "i": str(i)}) for i in range(4)]
    values = np.array([[5.0, np.nan], [5.0, np.nan], [7.0, np.nan], [5.0, 1.0]])
    vec = Vector(labels, values, np.ones((4, 2), dtype=bool))
    out = aggregation._top_bottom(_expr(AggOp.TOPK, []), vec, np.array([2, 2]))
    chosen = {ls.get("i"): list(p) for ls, p in zip(out.labels, out.present)}
    # Step 0: 7 then the first of the 5s. Step 1: the number, then the last NaN.
    # (The second 5 is never chosen: its series is left out.)
    assert chosen == {"0": [True, False], "2": [True, True], "3": [False, True]}

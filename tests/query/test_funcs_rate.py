"""rate, increase, delta, irate, idelta: hand-computed cases and a property test against a
per-window reference written from Prometheus 2.42's `extrapolatedRate`/`instantValue`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigilops.query.funcs import IMPLEMENTATIONS
from vigilops.query.values import FunctionContext, Vector
from vigilops.tsdb.model import STALE_NAN, Labels

from tests.query.windowcases import Sample, make_windows, same, window_of



# ---- reference: one window at a time, plain Python floats -------------------------------------
def div(a: float, b: float) -> float:
    """IEEE division (Python raises on zero)."""
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def ref_extrapolated(
    window: Sequence[Sample], t: int, range_ms: int, is_counter: bool, is_rate: bool
) -> float | None:
    if len(window) < 2:
        return None
    range_start, range_end = t - range_ms, t
    result = window[-1][1] - window[0][1]
    if is_counter:
        prev = window[0][1]
        for _, v in window[1:]:
            if v < prev:
                result += prev
            prev = v
    to_start = (window[0][0] - range_start) / 1000
    to_end = (range_end - window[-1][0]) / 1000
    sampled = (window[-1][0] - window[0][0]) / 1000
    average = sampled / (len(window) - 1)
    if is_counter and result > 0 and window[0][1] >= 0:
        to_zero = sampled * (window[0][1] / result)
        if to_zero < to_start:
            to_start = to_zero
    threshold = average * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    factor = interval / sampled
    if is_rate:
        factor /= (range_ms // 1000) + (range_ms % 1000) * 1_000_000 / 1e9  # Duration.Seconds()
    return result * factor


def ref_instant(window: Sequence[Sample], is_rate: bool) -> float | None:
    if len(window) < 2:
        return None
    (t0, prev), (t1, last) = window[-2], window[-1]
    result = last if is_rate and last < prev else last - prev
    if t1 == t0:
        return None
    if is_rate:
        result = div(result, (t1 - t0) / 1000)
    return result


REFERENCES = {
    "rate": lambda w, t, r: ref_extrapolated(w, t, r, True, True),
    "increase": lambda w, t, r: ref_extrapolated(w, t, r, True, False),
    "delta": lambda w, t, r: ref_extrapolated(w, t, r, False, False),
    "irate": lambda w, t, r: ref_instant(w, True),
    "idelta": lambda w, t, r: ref_instant(w, False),
}


# ---- helpers shared by the cases ----------------------------------------------------------------
def run(name: str, series: Sequence[Sequence[Sample]], times: Sequence[int], range_ms: int) -> Vector:
    out = IMPLEMENTATIONS[name]([make_windows(series, times, range_ms)], FunctionContext(np.array(times, dtype=np.int64)))
    assert isinstance(out, Vector)
    return out


def one(name: str, samples: Sequence[Sample], t: int, range_ms: int) -> float | None:
    out = run(name, [samples], [t], range_ms)
    return float(out.values[0, 0]) if out.present[0, 0] else None


# ---- hand-computed cases ------------------------------------------------------------------------
def test_rate_of_a_regular_counter_extrapolates_to_the_window() -> None:
    # Samples every 15 s at 0..60 s, value 10 per sample; window [0, 60] s: no extrapolation
    # needed at the end, the start is on the boundary.
    samples = [(t * 1000, float(t // 15 * 10)) for t in range(0, 61, 15)]
    assert one("increase", samples, 60_000, 60_000) == 40.0
    assert one("rate", samples, 60_000, 60_000) == pytest.approx(40.0 / 60)
    assert one("delta", samples, 60_000, 60_000) == 40.0


def test_counter_reset_adds_the_value_before_the_drop() -> None:
    samples = [(0, 5.0), (10_000, 8.0), (20_000, 2.0), (30_000, 4.0)]
    # 4 - 5 + 8 = 7 over 30 s sampled, window [0, 30] s → no extrapolation.
    assert one("increase", samples, 30_000, 30_000) == 7.0
    # delta ignores resets.
    assert one("delta", samples, 30_000, 30_000) == -1.0


def test_extrapolation_stops_at_counter_zero_before_the_threshold_test() -> None:
    # 2.42 clamps durationToStart to the zero point (10 s) first, then compares with the
    # threshold (11 s): extrapolates by 10 s, giving 2 * 40 / 20 = 4 (Prometheus 2.42 says 4).
    samples = [(30_000, 1.0), (40_000, 2.0), (50_000, 3.0)]
    assert one("increase", samples, 60_000, 60_000) == 4.0


def test_far_boundaries_extrapolate_half_an_interval() -> None:
    # Samples at 100..120 s in a [0, 200] s window: both ends are > 1.1 intervals away.
    samples = [(100_000, 10.0), (110_000, 20.0), (120_000, 30.0)]
    assert one("delta", samples, 200_000, 200_000) == 20.0 * (20 + 5 + 5) / 20


def test_fewer_than_two_samples_is_absent() -> None:
    assert one("rate", [(0, 1.0)], 10_000, 60_000) is None
    assert one("irate", [(0, 1.0)], 10_000, 60_000) is None
    assert one("rate", [], 10_000, 60_000) is None


def test_range_ends_are_inclusive() -> None:
    samples = [(0, 0.0), (30_000, 3.0), (60_000, 6.0)]
    assert one("delta", samples, 60_000, 60_000) == 6.0


def test_irate_and_idelta_use_the_last_two_samples() -> None:
    samples = [(0, 1.0), (10_000, 5.0), (20_000, 9.0)]
    assert one("irate", samples, 20_000, 60_000) == 0.4
    assert one("idelta", samples, 20_000, 60_000) == 4.0
    reset = [(0, 1.0), (10_000, 5.0), (15_000, 2.0)]
    assert one("irate", reset, 20_000, 60_000) == 2.0 / 5
    assert one("idelta", reset, 20_000, 60_000) == -3.0


def test_output_drops_the_metric_name_and_keeps_row_order() -> None:
    out = run("rate", [[(0, 1.0), (10_000, 2.0)], [(0, 1.0)]], [10_000], 60_000)
    assert out.labels == [Labels({"i": "0"}), Labels({"i": "1"})]
    assert out.present[:, 0].tolist() == [True, False]


def test_staleness_markers_are_not_samples() -> None:
    samples = [(0, 1.0), (10_000, STALE_NAN), (20_000, 3.0)]
    assert one("delta", samples, 20_000, 20_000) == 2.0


def test_many_steps_at_once_match_single_steps() -> None:
    samples = [(t * 1000, float(t * t % 17)) for t in range(0, 300, 7)]
    times = list(range(0, 320_000, 13_000))
    for name in REFERENCES:
        grid = run(name, [samples], times, 45_000)
        for j, t in enumerate(times):
            single = one(name, samples, t, 45_000)
            assert (single is None) == (not grid.present[0, j])
            if single is not None:
                assert same(single, float(grid.values[0, j]))


# ---- property: vectorized == reference ----------------------------------------------------------
values = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(-3, 20).map(float),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e300, STALE_NAN]),
)


@st.composite
def series_sets(draw: st.DrawFn) -> tuple[list[list[Sample]], list[int], int]:
    series: list[list[Sample]] = []
    for _ in range(draw(st.integers(1, 4))):
        times = sorted(draw(st.sets(st.integers(0, 400), max_size=25)))
        counter = draw(st.booleans())
        level = 0.0
        samples: list[Sample] = []
        for t in times:
            if counter:
                level = 0.0 if draw(st.integers(0, 9)) == 0 else level + draw(st.integers(0, 5))
                samples.append((t * 1000, level))
            else:
                samples.append((t * 1000, draw(values)))
        series.append(samples)
    steps = draw(st.lists(st.integers(-20, 450), min_size=1, max_size=6, unique=True))
    if draw(st.booleans()):  # usually a grid; step times out of order must work too
        steps.sort()
    range_ms = draw(st.sampled_from([1_000, 10_000, 15_000, 60_000, 300_000]) | st.integers(1, 200_000))
    return series, [s * 1000 for s in steps], range_ms


@given(series_sets())
def test_vectorized_rates_match_the_reference(case: tuple[list[list[Sample]], list[int], int]) -> None:
    series, times, range_ms = case
    for name, ref in REFERENCES.items():
        out = run(name, series, times, range_ms)
        for i, samples in enumerate(series):
            for j, t in enumerate(times):
                want = ref(window_of(samples, t, range_ms), t, range_ms)
                assert (want is None) == (not out.present[i, j]), (name, i, t)
                if want is not None:
                    assert same(want, float(out.values[i, j])), (name, i, t, want, out.values[i, j])


@pytest.mark.parametrize("order", ["ascending", "descending"])
def test_many_resets_match_the_reference(order: str) -> None:
    # A sawtooth: a reset every third sample, windows with 0 to ~20 resets; the same grid
    # also backwards (the compiled loop walks forward and must restart when time goes back).
    samples = [(i * 5_000, float(i % 3) * 1.1 + (i % 7) * 0.01) for i in range(120)]
    times = list(range(0, 600_000, 17_000))
    if order == "descending":
        times.reverse()
    out = run("increase", [samples, samples[::2]], times, 90_000)
    for i, s in enumerate([samples, samples[::2]]):
        for j, t in enumerate(times):
            want = ref_extrapolated(window_of(s, t, 90_000), t, 90_000, True, False)
            assert (want is None) == (not out.present[i, j])
            if want is not None:
                assert same(want, float(out.values[i, j]))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([15_000, 60_000, 300_000]))
def test_long_grids_over_jittered_scrapes_match_the_reference(seed: int, range_ms: int) -> None:
    # The kernel guesses each window's ends from the step before (regular scrapes move
    # them by the same count): hits, misses at jitter, gaps and resets, over many steps.
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.choice([15, 15, 15, 14, 16, 30, 45], 300)) * 1000 + rng.integers(-400, 400, 300)
    times = np.unique(times)
    level = np.cumsum(rng.integers(0, 5, len(times))).astype(float)
    level[rng.random(len(times)) < 0.02] = 0.0  # resets
    samples = [(int(t), float(v)) for t, v in zip(times, level)]
    grid = list(range(int(times[0]) - 60_000, int(times[-1]) + 60_000, 60_000))
    out = run("rate", [samples], grid, range_ms)
    for j, t in enumerate(grid):
        want = ref_extrapolated(window_of(samples, t, range_ms), t, range_ms, True, True)
        assert (want is None) == (not out.present[0, j]), t
        if want is not None:
            assert same(want, float(out.values[0, j])), (t, want, out.values[0, j])

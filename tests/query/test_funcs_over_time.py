"""The *_over_time functions, changes, resets, deriv, predict_linear, holt_winters and
quantile_over_time: hand-computed cases and a property test against per-window references
written from Prometheus 2.42's `promql/functions.go` (checked against the 2.42 binary)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigilops.query.funcs import IMPLEMENTATIONS
from vigilops.query.values import (
    ExecutionError,
    FunctionContext,
    Scalar,
    Value,
    Vector,
)
from vigilops.tsdb.model import STALE_NAN, Labels

from tests.query.windowcases import Sample, make_windows, same, window_of



# ---- reference: one window at a time, plain Python floats -------------------------------------
def kahan_inc(inc: float, total: float, comp: float) -> tuple[float, float]:
    t = total + inc
    if abs(total) >= abs(inc):
        comp += (total - t) + inc
    else:
        comp += (inc - t) + total
    return t, comp


def div(a: float, b: float) -> float:
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def ref_sum(vs: list[float]) -> float:
    total = comp = 0.0
    for v in vs:
        total, comp = kahan_inc(v, total, comp)
    return total if math.isinf(total) else total + comp


def ref_avg(vs: list[float]) -> float:
    mean = comp = count = 0.0
    for v in vs:
        count += 1
        if math.isinf(mean):
            if math.isinf(v) and (mean > 0) == (v > 0):
                continue
            if not math.isinf(v) and not math.isnan(v):
                continue
        mean, comp = kahan_inc(v / count - mean / count, mean, comp)
    return mean if math.isinf(mean) else mean + comp


def ref_var(vs: list[float]) -> float:
    count = mean = c_mean = aux = c_aux = 0.0
    for v in vs:
        count += 1
        d = v - (mean + c_mean)
        mean, c_mean = kahan_inc(d / count, mean, c_mean)
        aux, c_aux = kahan_inc(d * (v - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


def ref_max(vs: list[float]) -> float:
    out = vs[0]
    for v in vs:
        if v > out or math.isnan(out):
            out = v
    return out


def ref_min(vs: list[float]) -> float:
    out = vs[0]
    for v in vs:
        if v < out or math.isnan(out):
            out = v
    return out


def ref_changes(vs: list[float]) -> float:
    return float(sum(1 for a, b in zip(vs, vs[1:]) if b != a and not (math.isnan(a) and math.isnan(b))))


def ref_resets(vs: list[float]) -> float:
    return float(sum(1 for a, b in zip(vs, vs[1:]) if b < a))


def ref_quantile(q: float, vs: list[float]) -> float:
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = [v for v in vs if math.isnan(v)] + sorted(v for v in vs if not math.isnan(v))
    n = float(len(ordered))
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return ordered[int(lower)] * (1 - weight) + ordered[int(upper)] * weight


def ref_regression(window: Sequence[Sample], intercept_time: int) -> tuple[float, float]:
    init = window[0][1]
    if all(v == init for _, v in window[1:]):
        return (math.nan, math.nan) if math.isinf(init) else (0.0, init)
    n = 0.0
    sums = [0.0] * 8
    for t, v in window:
        n += 1.0
        x = (t - intercept_time) / 1e3
        for j, term in enumerate((x, v, x * v, x * x)):
            sums[2 * j], sums[2 * j + 1] = kahan_inc(term, sums[2 * j], sums[2 * j + 1])
    sx, sy, sxy, sx2 = (sums[2 * j] + sums[2 * j + 1] for j in range(4))
    cov = sxy - sx * sy / n
    var = sx2 - sx * sx / n
    slope = div(cov, var)
    return slope, sy / n - slope * sx / n


def ref_holt_winters(vs: list[float], sf: float, tf: float) -> float:
    s0, s1, b = 0.0, vs[0], vs[1] - vs[0]
    for i in range(1, len(vs)):
        x = sf * vs[i]
        if i > 1:
            b = tf * (s1 - s0) + (1 - tf) * b
        y = (1 - sf) * (s1 + b)
        s0, s1 = s1, x + y
    return s1


# Each reference: (window, step time, scalar args) → value or None (no output).
Ref = Callable[[list[Sample], int, tuple[float, ...]], float | None]


def values_only(fn: Callable[[list[float]], float], min_len: int = 1) -> Ref:
    def ref(window: list[Sample], t: int, extra: tuple[float, ...]) -> float | None:
        vs = [v for _, v in window]
        return fn(vs) if len(vs) >= min_len else None
    return ref


REFERENCES: dict[str, tuple[Ref, tuple[float, ...]]] = {
    "sum_over_time": (values_only(ref_sum), ()),
    "avg_over_time": (values_only(ref_avg), ()),
    "count_over_time": (values_only(lambda vs: float(len(vs))), ()),
    "last_over_time": (values_only(lambda vs: vs[-1]), ()),
    "present_over_time": (values_only(lambda vs: 1.0), ()),
    "max_over_time": (values_only(ref_max), ()),
    "min_over_time": (values_only(ref_min), ()),
    "stdvar_over_time": (values_only(ref_var), ()),
    "stddev_over_time": (values_only(lambda vs: math.sqrt(v) if (v := ref_var(vs)) >= 0 else math.nan), ()),
    "changes": (values_only(ref_changes), ()),
    "resets": (values_only(ref_resets), ()),
    "deriv": (lambda w, t, e: ref_regression(w, w[0][0])[0] if len(w) >= 2 else None, ()),
}


# ---- helpers ------------------------------------------------------------------------------------
def call(name: str, args: list[Value], times: Sequence[int]) -> Vector:
    out = IMPLEMENTATIONS[name](args, FunctionContext(np.array(times, dtype=np.int64)))
    assert isinstance(out, Vector)
    return out


def scalar(value: float, steps: int) -> Scalar:
    return Scalar(np.full(steps, value))


def one(name: str, samples: Sequence[Sample], t: int = 60_000, range_ms: int = 60_000,
        before: Sequence[float] = (), after: Sequence[float] = ()) -> float | None:
    args: list[Value] = [scalar(x, 1) for x in before]
    args.append(make_windows([samples], [t], range_ms))
    args.extend(scalar(x, 1) for x in after)
    out = call(name, args, [t])
    return float(out.values[0, 0]) if out.present[0, 0] else None


# ---- hand-computed cases ------------------------------------------------------------------------
SIMPLE = [(10_000, 3.0), (20_000, 1.0), (30_000, 4.0), (40_000, 1.0), (50_000, 5.0)]


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("sum_over_time", 14.0),
        ("avg_over_time", 2.8),
        ("count_over_time", 5.0),
        ("min_over_time", 1.0),
        ("max_over_time", 5.0),
        ("last_over_time", 5.0),
        ("present_over_time", 1.0),
        ("changes", 4.0),
        ("resets", 2.0),
        ("stdvar_over_time", 2.56),
        ("stddev_over_time", 1.6),
    ],
)
def test_simple_window(name: str, want: float) -> None:
    assert one(name, SIMPLE) == pytest.approx(want)


def test_empty_windows_are_absent() -> None:
    for name in REFERENCES:
        assert one(name, [(0, 1.0)], t=200_000) is None


def test_last_over_time_keeps_the_metric_name_others_drop_it() -> None:
    win = make_windows([SIMPLE], [60_000], 60_000)
    ctx = FunctionContext(np.array([60_000], dtype=np.int64))
    last = IMPLEMENTATIONS["last_over_time"]([win], ctx)
    summed = IMPLEMENTATIONS["sum_over_time"]([win], ctx)
    assert isinstance(last, Vector) and isinstance(summed, Vector)
    assert last.labels == [Labels({"__name__": "m", "i": "0"})]
    assert summed.labels == [Labels({"i": "0"})]


def test_sum_over_time_is_compensated() -> None:
    # Prometheus 2.42 answers 1 (a plain sum would be 0).
    assert one("sum_over_time", [(10_000, 1e100), (20_000, 1.0), (30_000, -1e100)]) == 1.0


def test_nan_rules() -> None:
    window = [(10_000, math.nan), (20_000, math.nan), (30_000, 1.0), (40_000, math.nan)]
    assert one("max_over_time", window) == 1.0
    assert one("min_over_time", window) == 1.0
    assert one("changes", window) == 2.0
    assert one("quantile_over_time", window, before=[1.0]) == 1.0
    assert math.isnan(one("quantile_over_time", window, before=[0.5]) or 0.0)
    assert math.isnan(one("max_over_time", [(10_000, math.nan)]) or 0.0)


def test_infinite_mean_survives_finite_samples() -> None:
    assert one("avg_over_time", [(10_000, math.inf), (20_000, 1.0)]) == math.inf
    assert math.isnan(one("avg_over_time", [(10_000, math.inf), (20_000, -math.inf)]) or 0.0)


def test_quantile_over_time_interpolates_and_bounds() -> None:
    window = [(10_000, 1.0), (20_000, 2.0), (30_000, 4.0), (40_000, 8.0)]
    assert one("quantile_over_time", window, before=[0.5]) == 3.0
    assert one("quantile_over_time", window, before=[0.0]) == 1.0
    assert one("quantile_over_time", window, before=[1.0]) == 8.0
    assert one("quantile_over_time", window, before=[-0.5]) == -math.inf
    assert one("quantile_over_time", window, before=[1.5]) == math.inf
    assert math.isnan(one("quantile_over_time", window, before=[math.nan]) or 0.0)


def test_deriv_and_predict_linear_on_a_line() -> None:
    line = [(t * 1000, 2.0 * t + 5) for t in range(0, 61, 10)]
    assert one("deriv", line) == pytest.approx(2.0)
    # Fitted at the step time 60 s (value 125), 30 s later: 185.
    assert one("predict_linear", line, after=[30.0]) == pytest.approx(185.0)


def test_constant_series_have_exactly_zero_slope() -> None:
    flat = [(10_000 + 3000 * i, 0.3) for i in range(17)]
    assert one("deriv", flat, range_ms=120_000) == 0.0
    assert one("predict_linear", flat, range_ms=120_000, after=[0.0]) == 0.3
    assert math.isnan(one("deriv", [(0, math.inf), (10_000, math.inf)]) or 0.0)


def test_holt_winters_smooths() -> None:
    window = [(10_000, 1.0), (20_000, 2.0), (30_000, 4.0)]
    want = ref_holt_winters([1.0, 2.0, 4.0], 0.5, 0.5)
    assert one("holt_winters", window, after=[0.5, 0.5]) == want
    assert one("holt_winters", [(10_000, 1.0)], after=[0.5, 0.5]) is None


def test_holt_winters_rejects_bad_factors_where_a_window_has_samples() -> None:
    with pytest.raises(ExecutionError, match=r"^invalid smoothing factor. Expected: 0 < sf < 1, got: 2.000000$"):
        one("holt_winters", [(10_000, 1.0)], after=[2.0, 0.5])
    with pytest.raises(ExecutionError, match=r"^invalid trend factor. Expected: 0 < tf < 1, got: 0.000000$"):
        one("holt_winters", [(10_000, 1.0), (20_000, 1.0)], after=[0.5, 0.0])
    # No samples anywhere: nothing is evaluated, so no error (as in 2.42).
    assert one("holt_winters", [(0, 1.0)], t=500_000, after=[2.0, 0.5]) is None


def test_long_windows_are_gathered_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    from vigilops.query.funcs import _lanes

    monkeypatch.setattr(_lanes, "GATHER_BUDGET", 16)
    samples = [(i * 1000, float((i * 7) % 11)) for i in range(50)]
    times = list(range(10_000, 60_000, 5_000))
    out = call("quantile_over_time", [scalar(0.3, len(times)), make_windows([samples, samples[::3]], times, 20_000)], times)
    for j, t in enumerate(times):
        for i, s in enumerate([samples, samples[::3]]):
            want = ref_quantile(0.3, [v for _, v in window_of(s, t, 20_000)])
            assert same(want, float(out.values[i, j]))


# ---- property: vectorized == reference ----------------------------------------------------------
values = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(-3, 3).map(float),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e300, -1e300, 1e15 + 0.5, STALE_NAN]),
)


@st.composite
def series_sets(draw: st.DrawFn) -> tuple[list[list[Sample]], list[int], int]:
    series: list[list[Sample]] = []
    for _ in range(draw(st.integers(1, 4))):
        times = sorted(draw(st.sets(st.integers(0, 300), max_size=30)))
        series.append([(t * 1000, draw(values)) for t in times])
    steps = sorted(draw(st.sets(st.integers(-20, 350), min_size=1, max_size=6)))
    range_ms = draw(st.sampled_from([1_000, 15_000, 60_000, 300_000]) | st.integers(1, 200_000))
    return series, [s * 1000 for s in steps], range_ms


def check(name: str, ref: Ref, case: tuple[list[list[Sample]], list[int], int],
          before: Sequence[float] = (), after: Sequence[float] = ()) -> None:
    series, times, range_ms = case
    args: list[Value] = [scalar(x, len(times)) for x in before]
    args.append(make_windows(series, times, range_ms))
    args.extend(scalar(x, len(times)) for x in after)
    out = call(name, args, times)
    for i, samples in enumerate(series):
        for j, t in enumerate(times):
            want = ref(window_of(samples, t, range_ms), t, tuple(before) + tuple(after))
            assert (want is None) == (not out.present[i, j]), (name, i, t)
            if want is not None:
                assert same(want, float(out.values[i, j])), (name, i, t, want, out.values[i, j])


@given(series_sets())
def test_vectorized_over_time_matches_the_reference(case: tuple[list[list[Sample]], list[int], int]) -> None:
    for name, (ref, _) in REFERENCES.items():
        check(name, ref, case)


@given(series_sets(), st.sampled_from([0.0, 0.25, 0.5, 0.9, 1.0, -1.0, 2.0, math.nan]) | st.floats(0, 1))
def test_vectorized_quantile_over_time_matches_the_reference(
    case: tuple[list[list[Sample]], list[int], int], q: float
) -> None:
    def ref(w: list[Sample], t: int, extra: tuple[float, ...]) -> float | None:
        return ref_quantile(q, [v for _, v in w]) if w else None
    check("quantile_over_time", ref, case, before=[q])


@given(series_sets(), st.floats(-1000, 1000))
def test_vectorized_predict_linear_matches_the_reference(
    case: tuple[list[list[Sample]], list[int], int], horizon: float
) -> None:
    def ref(w: list[Sample], t: int, extra: tuple[float, ...]) -> float | None:
        if len(w) < 2:
            return None
        slope, intercept = ref_regression(w, t)
        return slope * horizon + intercept
    check("predict_linear", ref, case, after=[horizon])


@given(series_sets(), st.floats(0.01, 0.99), st.floats(0.01, 0.99))
def test_vectorized_holt_winters_matches_the_reference(
    case: tuple[list[list[Sample]], list[int], int], sf: float, tf: float
) -> None:
    def ref(w: list[Sample], t: int, extra: tuple[float, ...]) -> float | None:
        return ref_holt_winters([v for _, v in w], sf, tf) if len(w) >= 2 else None
    check("holt_winters", ref, case, after=[sf, tf])

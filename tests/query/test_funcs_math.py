"""Element-wise math, clamps, round, scalar/vector conversions and calendar functions.
Expected values that depend on Go's arithmetic were read from Prometheus 2.42."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vigilops.query.funcs import IMPLEMENTATIONS
from vigilops.query.values import FunctionContext, Scalar, Value, Vector
from vigilops.tsdb.model import Labels

T = 1_000_000_020_000  # ms


def vec(*values: float, present: list[bool] | None = None, steps: int = 1) -> Vector:
    labels = [Labels({"__name__": "m", "i": str(i)}) for i in range(len(values))]
    arr = np.repeat(np.array(values, dtype=np.float64)[:, None], steps, axis=1)
    mask = np.ones(arr.shape, dtype=bool) if present is None else np.array(present)[:, None].repeat(steps, 1)
    return Vector(labels, arr, mask)


def call(name: str, *args: Value, times: list[int] | None = None) -> Value:
    ctx = FunctionContext(np.array(times or [T], dtype=np.int64))
    return IMPLEMENTATIONS[name](list(args), ctx)


def values_of(name: str, *args: Value) -> list[float]:
    out = call(name, *args)
    assert isinstance(out, Vector)
    return [float(v) for v in out.values[:, 0]]


def s(x: float, steps: int = 1) -> Scalar:
    return Scalar(np.full(steps, x))


def same(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all((math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b))


@pytest.mark.parametrize(
    ("name", "inputs", "want"),
    [
        ("abs", [-2.0, 3.0, math.nan], [2.0, 3.0, math.nan]),
        ("ceil", [1.2, -1.2], [2.0, -1.0]),
        ("floor", [1.8, -1.2], [1.0, -2.0]),
        ("sqrt", [4.0, -1.0], [2.0, math.nan]),
        ("exp", [0.0, 1000.0], [1.0, math.inf]),
        ("ln", [1.0, 0.0, -1.0, math.inf], [0.0, -math.inf, math.nan, math.inf]),
        # Go's Log, Log2 and Log10 on amd64: Prometheus 2.42 answers exactly these, including
        # the last bit of ln(3) and the odd result for a subnormal.
        ("ln", [3.0, 1e-310], [1.0986122886681096, -709.0850815488945]),
        ("log2", [8.0, 3.0, 0.0], [3.0, 1.5849625007211563, -math.inf]),
        ("log10", [1000.0, 3.0], [3.0, 0.4771212547196624]),
        ("sgn", [-5.0, 0.0, 7.0, math.nan], [-1.0, 0.0, 1.0, math.nan]),
        ("deg", [math.pi], [180.0]),
        ("rad", [180.0], [math.pi]),
        ("asin", [2.0], [math.nan]),
        ("acosh", [0.5], [math.nan]),
        ("atanh", [1.0, 2.0], [math.inf, math.nan]),
    ],
)
def test_elementwise(name: str, inputs: list[float], want: list[float]) -> None:
    assert same(values_of(name, vec(*inputs)), want)


@pytest.mark.parametrize("name", ["sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh"])
def test_trigonometry_agrees_with_numpy(name: str) -> None:
    x = [0.1, 0.5, 0.9, 1.5, 3.0]
    fn = {"asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "asinh": np.arcsinh,
          "acosh": np.arccosh, "atanh": np.arctanh}.get(name, getattr(np, name))
    with np.errstate(all="ignore"):
        want = [float(v) for v in fn(np.array(x))]
    assert values_of(name, vec(*x)) == pytest.approx(want, rel=1e-14, nan_ok=True)


def test_inverse_trigonometry_is_gos() -> None:
    # Go computes acos as pi/2 - asin, losing bits near 1; Prometheus 2.42 answers this.
    assert values_of("acos", vec(0.9999)) == [0.014142253477510414]
    assert values_of("asin", vec(1.0, -1.0, -0.0)) == [math.pi / 2, -math.pi / 2, -0.0]
    assert values_of("atan", vec(math.inf, -math.inf)) == [math.pi / 2, -math.pi / 2]


def test_math_drops_the_metric_name_and_keeps_presence() -> None:
    out = call("abs", vec(-1.0, 2.0, present=[True, False]))
    assert isinstance(out, Vector)
    assert out.labels == [Labels({"i": "0"}), Labels({"i": "1"})]
    assert out.present[:, 0].tolist() == [True, False]


def test_round() -> None:
    assert values_of("round", vec(2.5, -2.5, 1.49, math.nan)) == pytest.approx([3.0, -2.0, 1.0, math.nan], nan_ok=True)
    assert values_of("round", vec(12.0, 17.5), s(5)) == [10.0, 20.0]
    assert values_of("round", vec(0.123456), s(0.01)) == [0.12]


def test_clamps_use_go_min_max() -> None:
    assert values_of("clamp", vec(-5.0, 0.5, 5.0, math.nan), s(-1), s(1)) == pytest.approx([-1.0, 0.5, 1.0, math.nan], nan_ok=True)
    assert values_of("clamp_min", vec(-5.0, 5.0), s(0)) == [0.0, 5.0]
    assert values_of("clamp_max", vec(-5.0, 5.0), s(0)) == [-5.0, 0.0]
    # Go: Min(-Inf, NaN) = -Inf and Max(+Inf, NaN) = +Inf.
    assert values_of("clamp_max", vec(math.nan), s(-math.inf)) == [-math.inf]
    assert values_of("clamp_min", vec(math.nan), s(math.inf)) == [math.inf]


def test_clamp_with_max_below_min_is_empty_at_that_step() -> None:
    lo = Scalar(np.array([0.0, 3.0]))
    hi = Scalar(np.array([1.0, 2.0]))
    out = call("clamp", vec(5.0, steps=2), lo, hi, times=[T, T + 1000])
    assert isinstance(out, Vector)
    assert out.present.tolist() == [[True, False]]
    assert out.values[0, 0] == 1.0


def test_time_pi_vector_scalar() -> None:
    times = [T, T + 15_000]
    t = call("time", times=times)
    assert isinstance(t, Scalar) and t.values.tolist() == [T / 1000, (T + 15_000) / 1000]
    p = call("pi", times=times)
    assert isinstance(p, Scalar) and p.values.tolist() == [math.pi, math.pi]
    v = call("vector", Scalar(np.array([1.0, 2.0])), times=times)
    assert isinstance(v, Vector) and v.labels == [Labels()] and v.values.tolist() == [[1.0, 2.0]]
    two = Vector([Labels({"a": "1"}), Labels({"a": "2"})], np.array([[1.0, 1.0], [2.0, 2.0]]),
                 np.array([[True, True], [False, True]]))
    sc = call("scalar", two, times=times)
    assert isinstance(sc, Scalar)
    assert sc.values[0] == 1.0 and math.isnan(sc.values[1])
    empty = call("scalar", Vector.empty(2), times=times)
    assert isinstance(empty, Scalar) and np.isnan(empty.values).all()


def test_timestamp_uses_sample_times_when_known() -> None:
    v = vec(1.0, 2.0)
    out = call("timestamp", v)
    assert isinstance(out, Vector) and out.values[:, 0].tolist() == [T / 1000, T / 1000]
    v.sample_ts = np.array([[T - 7_500], [T - 1]], dtype=np.int64)
    out = call("timestamp", v)
    assert isinstance(out, Vector) and out.values[:, 0].tolist() == [(T - 7_500) / 1000, (T - 1) / 1000]
    assert out.labels == [Labels({"i": "0"}), Labels({"i": "1"})]


# ---- calendar ---------------------------------------------------------------------------------
DATE_CASES = {
    # 2020-02-29 23:59:59 UTC, a Saturday.
    1583020799.0: dict(year=2020, month=2, day_of_month=29, day_of_year=60, day_of_week=6, hour=23, minute=59, days_in_month=29),
    # 1970-01-01 00:00:00, a Thursday.
    0.0: dict(year=1970, month=1, day_of_month=1, day_of_year=1, day_of_week=4, hour=0, minute=0, days_in_month=31),
    # -1 s: 1969-12-31 23:59:59.
    -1.0: dict(year=1969, month=12, day_of_month=31, day_of_year=365, day_of_week=3, hour=23, minute=59, days_in_month=31),
    # Fractions truncate toward zero.
    59.9: dict(minute=0),
    # 2100 is not a leap year.
    4107542400.0: dict(year=2100, month=3, day_of_month=1, days_in_month=31),
    # NaN (and anything beyond int64) is Go's math.MinInt64 seconds: Prometheus 2.42's answers.
    math.nan: dict(year=292277026596, month=12, day_of_month=4, day_of_week=0, day_of_year=339, hour=15, minute=30, days_in_month=31),
    1e19: dict(year=292277026596),
    1e18: dict(year=31688740476),
    -1e18: dict(year=-31688736537),
    -1e17: dict(day_of_week=4),
}


@pytest.mark.parametrize("seconds", list(DATE_CASES), ids=str)
def test_calendar_fields(seconds: float) -> None:
    for name, want in DATE_CASES[seconds].items():
        assert values_of(name, vec(seconds)) == [float(want)], name


def test_calendar_without_argument_uses_the_step_time() -> None:
    times = [1583020799_000, 1583020800_500]  # the second is 2020-03-01 00:00:00.5
    out = call("day_of_month", times=times)
    assert isinstance(out, Vector)
    assert out.labels == [Labels()]
    assert out.values.tolist() == [[29.0, 1.0]]
    negative = call("hour", times=[-1500])  # Go truncates -1500 ms to -1 s
    assert isinstance(negative, Vector) and negative.values.tolist() == [[23.0]]


def test_calendar_agrees_with_python_for_ordinary_dates() -> None:
    import datetime as dt

    rng = np.random.default_rng(7)
    secs = rng.integers(-2_000_000_000, 5_000_000_000, size=300).astype(np.float64)
    v = vec(*secs.tolist())
    got = {name: values_of(name, v) for name in ("year", "month", "day_of_month", "day_of_year", "day_of_week", "hour", "minute", "days_in_month")}
    for i, sec in enumerate(secs):
        d = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=int(sec))
        nxt = (d.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        assert got["year"][i] == d.year
        assert got["month"][i] == d.month
        assert got["day_of_month"][i] == d.day
        assert got["day_of_year"][i] == d.timetuple().tm_yday
        assert got["day_of_week"][i] == d.isoweekday() % 7
        assert got["hour"][i] == d.hour
        assert got["minute"][i] == d.minute
        assert got["days_in_month"][i] == (nxt - d.replace(day=1)).days

"""histogram_quantile over classic buckets (hand-computed from Prometheus 2.42's
`bucketQuantile`; the same cases agree with the 2.42 binary) and the native-histogram
functions on classic data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vigilops.query.funcs import IMPLEMENTATIONS
from vigilops.query.funcs._go import parse_float
from vigilops.query.values import FunctionContext, Scalar, Value, Vector
from vigilops.tsdb.model import Labels

T = 1_000_000_020_000

HISTOGRAMS: dict[str, list[tuple[str, float]]] = {
    "a": [("0.1", 1), ("0.5", 3), ("1", 7), ("+Inf", 10)],
    "zero": [("1", 0), ("2", 0), ("+Inf", 0)],
    "c": [("1", 5), ("+Inf", 5)],
    "negative": [("-1", 2), ("0", 4), ("+Inf", 8)],
    "nonmonotonic": [("1", 3), ("2", 1), ("4", 6), ("+Inf", 6)],
    "duplicate": [("1", 3), ("1.0", 2), ("2", 6), ("+Inf", 9)],
    "noinf": [("1", 3), ("2", 6)],
    "onlyinf": [("+Inf", 9)],
    "garbage": [("0.5", 1), ("garbage", 2), ("+Inf", 4)],
    "hex": [("0x1p1", 2), ("1e0", 1), ("+inf", 5)],
}


def buckets(groups: dict[str, list[tuple[str, float]]]) -> Vector:
    labels, values = [], []
    for g, bs in groups.items():
        for le, count in bs:
            labels.append(Labels({"__name__": "h_bucket", "g": g, "le": le}))
            values.append(float(count))
    return Vector(labels, np.array(values)[:, None], np.ones((len(values), 1), dtype=bool))


def quantiles(q: float, vec: Vector, steps: int = 1) -> Vector:
    args: list[Value] = [Scalar(np.full(steps, q)), vec]
    out = IMPLEMENTATIONS["histogram_quantile"](args, FunctionContext(np.arange(steps, dtype=np.int64) + T))
    assert isinstance(out, Vector)
    return out


def by_group(q: float) -> dict[str, float]:
    out = quantiles(q, buckets(HISTOGRAMS))
    return {ls.get("g"): float(v) for ls, v, p in zip(out.labels, out.values[:, 0], out.present[:, 0]) if p}


@pytest.mark.parametrize(
    ("q", "group", "want"),
    [
        (0.5, "a", 0.75),  # rank 5 in (3, 7] of (0.5, 1]
        (0.05, "a", 0.05),  # first bucket interpolates from 0
        (0.95, "a", 1.0),  # rank in the +Inf bucket: the highest finite bound
        (0.5, "zero", math.nan),  # no observations
        (0.5, "c", 0.5),
        (0.1, "negative", -1.0),  # first bucket with a bound <= 0: the bound itself
        (0.4, "negative", -0.4),
        (0.5, "nonmonotonic", 1.0),  # counts made monotonic: 3 3 6 6
        (0.75, "nonmonotonic", 3.0),
        (0.5, "duplicate", 0.9),  # "1" and "1.0" merged: 5
        (0.5, "noinf", math.nan),
        (0.5, "onlyinf", math.nan),
        (0.5, "garbage", 0.5),  # the unparsable bucket is ignored
        (0.3, "hex", 1.5),  # Go's ParseFloat reads 0x1p1 and +inf
        (-0.5, "a", -math.inf),
        (1.5, "a", math.inf),
        (math.nan, "a", math.nan),
    ],
)
def test_bucket_quantile(q: float, group: str, want: float) -> None:
    got = by_group(q)[group]
    assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want)


def test_output_labels_drop_name_and_le() -> None:
    out = quantiles(0.5, buckets({"a": HISTOGRAMS["a"]}))
    assert out.labels == [Labels({"g": "a"})]


def test_metrics_with_different_names_are_separate_histograms() -> None:
    vec = buckets({"a": HISTOGRAMS["a"]})
    other = Vector([Labels({**ls.to_dict(), "__name__": "other_bucket"}) for ls in vec.labels], vec.values, vec.present)
    both = Vector(vec.labels + other.labels, np.vstack([vec.values, other.values]), np.vstack([vec.present, other.present]))
    out = quantiles(0.5, both)
    # Two groups with the same output labels: the evaluator reports the duplicate, as 2.42 does.
    assert out.labels == [Labels({"g": "a"}), Labels({"g": "a"})]


def test_each_step_uses_the_buckets_present_at_that_step() -> None:
    labels = [Labels({"le": le}) for le in ("1", "2", "+Inf")]
    values = np.array([[1.0, 1.0, 1.0, 0.0], [3.0, 3.0, 3.0, 0.0], [4.0, 4.0, 4.0, 0.0]])
    present = np.array([[True, False, True, False], [True, True, True, False], [True, True, False, False]])
    out = quantiles(0.5, Vector(labels, values, present), steps=4)
    assert out.labels == [Labels()]
    assert out.present.tolist() == [[True, True, True, False]]
    # Step 0: rank 2 in (1, 3] of (1, 2] → 1.5. Step 1: buckets 2 and +Inf → rank 2 in
    # (0, 3] of (0, 2] → 4/3. Step 2: no +Inf bucket → NaN.
    assert out.values[0, 0] == pytest.approx(1.5)
    assert out.values[0, 1] == pytest.approx(4 / 3)
    assert math.isnan(out.values[0, 2])


def test_many_buckets_binary_search() -> None:
    bounds = [str(b) for b in range(1, 41)] + ["+Inf"]
    vec = Vector([Labels({"le": b}) for b in bounds], np.arange(1.0, 42.0)[:, None], np.ones((41, 1), dtype=bool))
    # One observation per unit bucket: every quantile lands on its rank.
    for q in (0.01, 0.3, 0.5, 0.77, 0.97):
        assert float(quantiles(q, vec).values[0, 0]) == pytest.approx(q * 41)


def test_native_histogram_functions_are_empty_on_classic_data() -> None:
    vec = buckets({"a": HISTOGRAMS["a"]})
    ctx = FunctionContext(np.array([T, T + 1], dtype=np.int64))
    for name, args in (("histogram_count", [vec]), ("histogram_sum", [vec]),
                       ("histogram_fraction", [Scalar(np.zeros(2)), Scalar(np.ones(2)), vec])):
        out = IMPLEMENTATIONS[name](list(args), ctx)
        assert isinstance(out, Vector) and len(out) == 0 and out.steps == 2


@pytest.mark.parametrize(
    ("text", "want"),
    [("1", 1.0), ("+Inf", math.inf), ("-inf", -math.inf), ("Infinity", math.inf), ("NaN", math.nan),
     ("1e3", 1000.0), (".5", 0.5), ("5.", 5.0), ("0x1p-2", 0.25), ("1e400", None), ("", None),
     (" 1", None), ("1_0", None), ("+nan", None), ("0x10", None), ("inff", None)],
)
def test_parse_float_like_go(text: str, want: float | None) -> None:
    got = parse_float(text)
    if want is None or got is None:
        assert got is want
    else:
        assert (math.isnan(want) and math.isnan(got)) or got == want

"""The compiled value formatter (`points_json.value_texts`) against the one-value formatter
`promjson.format_value`, whose digits are Python's shortest round-trip repr (the same
digits Go's strconv picks: the shortest that read back, and of those the closest)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigilops.query.api.points_json import MAX_VALUE_TEXT, value_texts
from vigilops.query.api.promjson import format_value


def _mismatches(values: np.ndarray) -> list[tuple[float, str, str]]:  # type: ignore[type-arg]
    got = value_texts(values)
    assert len(got) == len(values)
    return [(v, g, format_value(v)) for v, g in zip(values.tolist(), got) if g != format_value(v)][:10]


def _decimals(rng: np.random.Generator, n: int) -> np.ndarray:  # type: ignore[type-arg]
    """Floats read from decimals of 1 to 17 digits at exponents around the 'e' switches."""
    mantissas = rng.integers(1, 10**17, n).tolist()
    digits = rng.integers(1, 18, n).tolist()
    exps = rng.integers(-30, 30, n).tolist()
    return np.array([float(f"{str(m)[:d]}e{e}") for m, d, e in zip(mantissas, digits, exps)])


@pytest.mark.parametrize("seed", [0, 1])
def test_compiled_values_are_go_texts(seed: int) -> None:
    rng = np.random.default_rng(seed)
    bit_patterns = rng.integers(0, 2**64, 50_000, dtype=np.uint64).view(np.float64)
    scaled = rng.random(50_000) * 10.0 ** rng.integers(-9, 24, 50_000)
    powers_of_two = np.ldexp(1.0, rng.integers(-1074, 1024, 20_000))
    cases = {
        "bit patterns (NaNs, infinities, subnormals included)": bit_patterns,
        "magnitudes around 1e-6 and 1e21": scaled,
        "short decimals": _decimals(rng, 30_000),
        "powers of two and their neighbours (asymmetric intervals)": np.concatenate(
            [powers_of_two, np.nextafter(powers_of_two, 0), np.nextafter(powers_of_two, np.inf)]),
        "whole numbers around 2**53": np.arange(2**53 - 2000, 2**53 + 2000, 2, dtype=np.int64).astype(np.float64),
        "negated": -scaled[:5000],
    }
    for name, values in cases.items():
        assert _mismatches(values) == [], name


def test_special_values_and_notation_switches() -> None:
    values = np.array([
        0.0, -0.0, np.nan, np.inf, -np.inf, 1.0, 0.1, -2.5e-7, 1e-6, 9.999999999999997e-07,
        1e21, 999999999999999900000.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
        1e20, 123456789012345678901.0, 100.0, 2.0**63, 0.000001234,
    ])
    assert value_texts(values) == [
        "0", "-0", "NaN", "+Inf", "-Inf", "1", "0.1", "-2.5e-07", "0.000001", "9.999999999999997e-07",
        "1e+21", "999999999999999900000", "5e-324", "2.2250738585072014e-308", "1.7976931348623157e+308",
        "100000000000000000000", "123456789012345680000", "100", "9223372036854776000", "0.000001234",
    ]
    assert max(len(t) for t in value_texts(np.array([-1.2345678901234567e-6, -1.2345678901234567e-300]))) <= MAX_VALUE_TEXT
    assert value_texts(np.array([], dtype=np.float64)) == []


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(width=64), max_size=50))
def test_any_floats(values: list[float]) -> None:
    assert _mismatches(np.array(values, dtype=np.float64)) == []

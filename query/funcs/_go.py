"""Go's floating-point behaviour where PromQL results depend on it, as numpy operations.

Prometheus computes in Go; a few of Go's choices differ from numpy's defaults and show up in
query results: `math.Max`/`math.Min` (an infinity beats a NaN), float to int64 conversion
on amd64 (NaN and out-of-range values become the smallest int64), `strconv.ParseFloat`
(what a bucket's ``le`` may look like), ``fmt``'s ``%f`` (in error messages), and the
Kahan–Neumaier summation step `kahanSumInc` of `promql/functions.go`.
"""

from __future__ import annotations

import math
import re

import numpy as np

from vigilops.query.values import Float64Array, Int64Array

#: Go's ``math.MinInt64``: what converting NaN, ±Inf or an out-of-range float yields on amd64.
MIN_INT64 = -(2**63)
_TWO_63 = 2.0**63


def kahan_inc(
    inc: Float64Array, total: Float64Array, comp: Float64Array
) -> tuple[Float64Array, Float64Array]:
    """One step of Neumaier's compensated sum for many sums at once: add `inc` to `total`
    and return the new total and the new compensation (Prometheus 2.42's `kahanSumInc`)."""
    new_total: Float64Array = total + inc
    big = np.abs(total) >= np.abs(inc)
    lost = np.where(big, (total - new_total) + inc, (inc - new_total) + total)
    new_comp: Float64Array = comp + lost
    return new_total, new_comp


def go_max(x: Float64Array | float, y: Float64Array | float) -> Float64Array:
    """Go's ``math.Max``: +Inf if either is +Inf, else NaN if either is NaN; +0 beats -0."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    out = np.maximum(x, y)
    zeros = (x == 0) & (y == 0)
    out = np.where(zeros, np.where(np.signbit(x), y, x), out)
    out = np.where(np.isnan(x) | np.isnan(y), np.nan, out)
    result: Float64Array = np.where(np.isposinf(x) | np.isposinf(y), np.inf, out)
    return result


def go_min(x: Float64Array | float, y: Float64Array | float) -> Float64Array:
    """Go's ``math.Min``: -Inf if either is -Inf, else NaN if either is NaN; -0 beats +0."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    out = np.minimum(x, y)
    zeros = (x == 0) & (y == 0)
    out = np.where(zeros, np.where(np.signbit(x), x, y), out)
    out = np.where(np.isnan(x) | np.isnan(y), np.nan, out)
    result: Float64Array = np.where(np.isneginf(x) | np.isneginf(y), -np.inf, out)
    return result


def float_to_int64(values: Float64Array) -> Int64Array:
    """Go's ``int64(v)`` on amd64: truncation toward zero; NaN, ±Inf and values outside
    ``[-2**63, 2**63)`` become ``math.MinInt64``."""
    ok = (values >= -_TWO_63) & (values < _TWO_63)
    out: Int64Array = np.full(values.shape, MIN_INT64, dtype=np.int64)
    out[ok] = np.trunc(values[ok]).astype(np.int64)
    return out


_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_HEX = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+")
_INF = re.compile(r"[+-]?(?:inf|infinity)", re.IGNORECASE)
_NAN = re.compile(r"nan", re.IGNORECASE)


def parse_float(text: str) -> float | None:
    """Go's ``strconv.ParseFloat(text, 64)``: the value, or None where Go returns an error
    (malformed text, or a finite literal too large for float64).

    Underscore digit separators (which Go allows only after a base prefix) are rejected.
    """
    if _NAN.fullmatch(text):
        return math.nan
    if _INF.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    if _DECIMAL.fullmatch(text):
        value = float(text)
    elif _HEX.fullmatch(text):
        try:
            value = float.fromhex(text)
        except OverflowError:
            return None
    else:
        return None
    return None if math.isinf(value) else value


# Go's natural logarithm on amd64 (`archLog`, the FreeBSD msun algorithm): not always
# correctly rounded, and it reads the exponent straight from the bits, so subnormal inputs
# come out near -709. Prometheus's `ln`, `log2` and `log10` inherit both.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_L1 = 6.666666666666735130e-01
_L2 = 3.999999999940941908e-01
_L3 = 2.857142874366239149e-01
_L4 = 2.222219843214978396e-01
_L5 = 1.818357216161805012e-01
_L6 = 1.531383769920937332e-01
_L7 = 1.479819860511658591e-01
_HALF_SQRT2 = 0.7071067811865476
_MANTISSA = np.uint64(0x000FFFFFFFFFFFFF)
_HALF_EXPONENT = np.uint64(0x3FE0000000000000)


def go_log(x: Float64Array) -> Float64Array:
    """Go's ``math.Log`` as compiled for amd64, bit for bit."""
    x = np.asarray(x, dtype=np.float64)
    bits = x.view(np.uint64)
    f1 = ((bits & _MANTISSA) | _HALF_EXPONENT).view(np.float64)
    exponent = ((bits >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64) - 0x3FE
    with np.errstate(all="ignore"):
        low = f1 < _HALF_SQRT2
        f1 = np.where(low, f1 * 2, f1)
        k = (exponent - low).astype(np.float64)
        f = f1 - 1
        s = f / (2 + f)
        s2 = s * s
        s4 = s2 * s2
        t1 = s2 * (_L1 + s4 * (_L3 + s4 * (_L5 + s4 * _L7)))
        t2 = s4 * (_L2 + s4 * (_L4 + s4 * _L6))
        hfsq = 0.5 * f * f
        out = k * _LN2_HI - ((hfsq - (s * (hfsq + (t1 + t2)) + k * _LN2_LO)) - f)
    out = np.where(x == 0, -np.inf, out)
    out = np.where(x < 0, np.nan, out)
    result: Float64Array = np.where(np.isnan(x) | np.isposinf(x), x, out)
    return result

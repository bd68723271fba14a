"""Go's float64 behaviour where NumPy's differs in the last bit or in text form.

Prometheus is a Go program: ``atan2`` is Go's pure-Go ``math.Atan2`` (a Cephes rational
approximation, not the C library's), ``^`` is Go's ``math.Pow`` (its own special cases, and
integer powers by repeated squaring of the mantissa, not the C library's ``pow``), and
numbers in messages and labels are formatted by ``strconv``. These helpers reproduce them
so results compare equal byte for byte.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from vigilops.query.values import Float64Array

_PI = math.pi
_MOREBITS = 6.123233995736765886130e-17  # pi/2 = float64(pi/2) + _MOREBITS
_TAN_3PI_8 = 2.41421356237309504880
_P = (-8.750608600031904122785e-01, -1.615753718733365076637e01, -7.500855792314704667340e01,
      -1.228866684490136173410e02, -6.485021904942025371773e01)
_Q = (2.485846490142306297962e01, 1.650270098316988542046e02, 4.328810604912902668951e02,
      4.853903996359136964868e02, 1.945506571482613964425e02)


def _xatan(x: Float64Array) -> Float64Array:
    """Go's ``xatan``: arctangent on [0, 0.66]."""
    z = x * x
    num = (((_P[0] * z + _P[1]) * z + _P[2]) * z + _P[3]) * z + _P[4]
    den = ((((z + _Q[0]) * z + _Q[1]) * z + _Q[2]) * z + _Q[3]) * z + _Q[4]
    z = z * num / den
    out: Float64Array = x * z + x
    return out


def _satan(x: Float64Array) -> Float64Array:
    """Go's ``satan``: arctangent of x >= 0 by range reduction to [0, 0.66]."""
    with np.errstate(all="ignore"):
        small = _xatan(x)
        big = _PI / 2 - _xatan(1 / x) + _MOREBITS
        mid = _PI / 4 + _xatan((x - 1) / (x + 1)) + 0.5 * _MOREBITS
    out: Float64Array = np.where(x <= 0.66, small, np.where(x > _TAN_3PI_8, big, mid))
    return out


def go_atan(x: Float64Array) -> Float64Array:
    """Go's ``math.Atan`` elementwise (bit-exact on amd64, which has no assembly version)."""
    x = np.asarray(x, dtype=np.float64)
    out: Float64Array = np.where(x == 0, x, np.where(x > 0, _satan(np.abs(x)), -_satan(np.abs(x))))
    return np.where(np.isnan(x), np.nan, out)


def go_atan2(y: Float64Array, x: Float64Array) -> Float64Array:
    """Go's ``math.Atan2`` elementwise, special cases in Go's order."""
    y, x = np.broadcast_arrays(np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64))
    with np.errstate(all="ignore"):
        q = go_atan(y / x)
    general = np.where(x < 0, np.where(q <= 0, q + _PI, q - _PI), q)
    x_pos = (x >= 0) & ~np.signbit(x)
    inf_x = np.where(
        np.isposinf(x),
        np.where(np.isinf(y), np.copysign(_PI / 4, y), np.copysign(0.0, y)),
        np.where(np.isinf(y), np.copysign(2.356194490192345, y), np.copysign(_PI, y)),
    )
    out = np.select(
        [np.isnan(y) | np.isnan(x), y == 0, x == 0, np.isinf(x), np.isinf(y)],
        [np.nan, np.where(x_pos, np.copysign(0.0, y), np.copysign(_PI, y)),
         np.copysign(_PI / 2, y), inf_x, np.copysign(_PI / 2, y)],
        general,
    )
    return np.asarray(out, dtype=np.float64)


# ---- math.Pow -------------------------------------------------------------------------------
_TWO_53 = float(1 << 53)
_TWO_63 = float(1 << 63)


def _is_odd_int(y: Float64Array) -> npt.NDArray[np.bool_]:
    """Go's ``isOddInt``: `y` is an odd integer of magnitude below 2**53."""
    with np.errstate(all="ignore"):
        small = np.abs(y) < _TWO_53
        whole = np.where(small, np.trunc(y), 0.0)
        out: npt.NDArray[np.bool_] = small & (whole == y) & (whole.astype(np.int64) & 1 == 1)
    return out


def _pow_general(x: Float64Array, y: Float64Array) -> Float64Array:
    """The body of Go's ``math.Pow`` once the special cases are out of the way (finite,
    nonzero `x`, finite `y` with integer part below 2**63, no negative `x` with a fractional
    `y`): ``x**frac`` as ``Exp(frac*Log(x))`` (NumPy's exp/log here, so a fractional power
    may differ from Go's in the last bit), times ``x**int`` by repeated squaring of
    ``Frexp(x)``'s mantissa with the exponent kept apart, then ``Ldexp``. One numpy pass
    per bit of the integer part, over the elements that still have bits."""
    yi = np.trunc(np.abs(y))
    yf = np.abs(y) - yi
    up = yf > 0.5
    yf = np.where(up, yf - 1.0, yf)
    yi = np.where(up, yi + 1.0, yi)
    with np.errstate(all="ignore"):
        a1 = np.where(yf != 0, np.exp(yf * np.log(x)), 1.0)
    x1, xe32 = np.frexp(x)
    xe = xe32.astype(np.int64)
    ae = np.zeros(len(x), dtype=np.int64)
    bits = yi.astype(np.int64)
    idx = np.flatnonzero(bits != 0)
    x1, xe, bits = x1[idx], xe[idx], bits[idx]
    while len(idx):
        overflow = (xe < -(1 << 12)) | ((1 << 12) < xe)
        if overflow.any():  # catastrophic overflow: Ldexp makes it 0 or Inf
            ae[idx[overflow]] += xe[overflow]
            keep = ~overflow
            idx, x1, xe, bits = idx[keep], x1[keep], xe[keep], bits[keep]
        odd = (bits & 1) == 1
        a1[idx[odd]] *= x1[odd]
        ae[idx[odd]] += xe[odd]
        x1 = x1 * x1
        xe = xe << 1
        low = x1 < 0.5
        x1 = np.where(low, x1 + x1, x1)
        xe = xe - low
        bits = bits >> 1
        keep = bits != 0
        idx, x1, xe, bits = idx[keep], x1[keep], xe[keep], bits[keep]
    neg = y < 0
    with np.errstate(all="ignore"):
        a1 = np.where(neg, 1.0 / a1, a1)
    ae = np.where(neg, -ae, ae)
    out: Float64Array = np.ldexp(a1, np.clip(ae, -1 << 14, 1 << 14).astype(np.int32))
    return out


def go_pow(x: Float64Array, y: Float64Array) -> Float64Array:
    """Go's ``math.Pow(x, y)`` elementwise, special cases in Go's order: ``Pow(x, ±0)`` and
    ``Pow(1, y)`` are 1 (NaN included), ``Pow(x, 1)`` is `x`, NaN in gives NaN, ``Pow(±0,
    y)`` is ±Inf or ±0 by the sign of `y` (the sign of zero kept for odd integers),
    ``Pow(-1, ±Inf)`` is 1, ``Pow(x, ±Inf)`` is 0 or +Inf by ``|x| < 1``, ``Pow(-Inf, y)`` is
    ``Pow(-0, -y)``, ``Pow(+Inf, y)`` is +Inf or 0, ``y = ±0.5`` is a square root, a
    negative finite `x` with a non-integer `y` gives NaN, and an integer part of `y` of
    2**63 or more gives 1, 0 or +Inf. Integer powers are bit-exact with Go."""
    xb, yb = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    shape = xb.shape
    xs, ys = xb.ravel(), yb.ravel()
    with np.errstate(all="ignore"):
        ax = np.abs(xs)
        yi = np.trunc(np.abs(ys))
        frac = np.abs(ys) != yi
        odd = _is_odd_int(ys)
        neg_zero = np.signbit(xs)
        conditions = [
            (ys == 0) | (xs == 1),
            ys == 1,
            np.isnan(xs) | np.isnan(ys),
            xs == 0,
            np.isinf(ys),
            np.isneginf(xs),
            np.isposinf(xs),
            ys == 0.5,
            ys == -0.5,
            frac & (xs < 0),
            yi >= _TWO_63,
        ]
        choices = [
            np.ones_like(xs),
            xs,
            np.full_like(xs, np.nan),
            np.where(ys < 0, np.where(neg_zero & odd, -np.inf, np.inf), np.where(neg_zero & odd, xs, 0.0)),
            np.where(xs == -1, 1.0, np.where((ax < 1) == np.isposinf(ys), 0.0, np.inf)),
            np.where(ys > 0, np.where(odd, -np.inf, np.inf), np.where(odd, -0.0, 0.0)),
            np.where(ys < 0, 0.0, np.inf),
            np.sqrt(xs),
            1.0 / np.sqrt(xs),
            np.full_like(xs, np.nan),
            np.where(xs == -1, 1.0, np.where((ax < 1) == (ys > 0), 0.0, np.inf)),
        ]
        special = np.logical_or.reduce(conditions)
        out = np.select(conditions, choices, 0.0)
        general = np.flatnonzero(~special)
        if len(general):
            out[general] = _pow_general(xs[general], ys[general])
    return np.asarray(out, dtype=np.float64).reshape(shape)


# ---- strconv ---------------------------------------------------------------------------------
def _digits(v: float) -> tuple[bool, str, int]:
    """Shortest round-trip decimal digits of `v`: (negative, digits, exponent of the first)."""
    sign, digits, exp = Decimal(repr(v)).normalize().as_tuple()
    text = "".join(map(str, digits))
    assert isinstance(exp, int)
    return bool(sign), text, len(text) + exp - 1


def go_format_f(v: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'f', -1, 64)`` (how Prometheus prints sample values)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    neg, digits, exp = _digits(v)
    if exp >= 0:
        whole = digits[: exp + 1].ljust(exp + 1, "0")
        frac = digits[exp + 1 :]
    else:
        whole, frac = "0", "0" * (-exp - 1) + digits
    return ("-" if neg else "") + whole + ("." + frac if frac else "")


def go_format_g(v: float) -> str:
    """Go's ``%v`` of a float64 (``strconv.FormatFloat(v, 'g', -1, 64)``)."""
    if math.isnan(v) or math.isinf(v) or v == 0:
        return go_format_f(v)
    neg, digits, exp = _digits(v)
    if -4 <= exp < 6:  # the shortest form uses an exponent outside [-4, 6)
        return go_format_f(v)
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{'-' if neg else ''}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def go_percent_f(value: float) -> str:
    """Go's ``fmt.Sprintf("%f", value)`` (six decimals; ``NaN``, ``+Inf``, ``-Inf``), as
    Prometheus writes numbers into some error messages."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:f}"

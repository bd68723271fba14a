"""Element-wise math on instant vectors and the scalar/vector conversions (Prometheus 2.42).

``abs ceil floor exp ln log2 log10 sqrt sgn deg rad`` and the trigonometric functions map
every sample and drop the metric name; ``round``, ``clamp``, ``clamp_min``, ``clamp_max``
take per-step scalar parameters; ``pi``, ``time``, ``vector``, ``scalar`` and
``timestamp`` convert between scalars and vectors. Where Go's formula rounds differently
from numpy's function (``log2``, ``log10``) or treats NaN differently (``math.Max``/``Min``
in the clamps), Go's is used; the logarithms and inverse trigonometric functions use Go's own algorithms
(`_go.go_log`, `vigilops.query.gomath.go_atan`). The other transcendental functions are
numpy's, which may differ from Go's in the last bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from vigilops.query.funcs._args import map_values, scalar_arg, vector_arg
from vigilops.query.funcs._go import go_log, go_max, go_min
from vigilops.query.gomath import go_atan
from vigilops.query.values import Float64Array, FunctionContext, Scalar, Value, Vector
from vigilops.tsdb.model import Labels

#: float64(1 / math.Ln2) and float64(1 / math.Ln10), as Go's constant arithmetic rounds them.
_INV_LN2 = 1.4426950408889634
_INV_LN10 = 0.4342944819032518


def _log2(v: Float64Array) -> Float64Array:
    """Go's ``math.Log2``: exact for powers of two, else ``Log(frac)/Ln2 + exp``."""
    frac, exp = np.frexp(v)
    out: Float64Array = np.where(frac == 0.5, exp - 1.0, go_log(frac) * _INV_LN2 + exp)
    return out


def _log10(v: Float64Array) -> Float64Array:
    """Go's ``math.Log10``: ``Log(x) * (1/Ln10)``."""
    out: Float64Array = go_log(v) * _INV_LN10
    return out


def _asin(v: Float64Array) -> Float64Array:
    """Go's ``math.Asin``, built on Go's arctangent."""
    x = np.abs(v)
    root = np.sqrt(1 - x * x)
    out = np.where(x > 0.7, math.pi / 2 - go_atan(root / x), go_atan(x / root))
    out = np.where(v < 0, -out, out)
    result: Float64Array = np.where(x > 1, np.nan, np.where(v == 0, v, out))
    return result


def _acos(v: Float64Array) -> Float64Array:
    """Go's ``math.Acos``: ``Pi/2 - Asin(x)``."""
    out: Float64Array = math.pi / 2 - _asin(v)
    return out


def _sgn(v: Float64Array) -> Float64Array:
    out: Float64Array = np.where(v < 0, -1.0, np.where(v > 0, 1.0, v))
    return out


def _deg(v: Float64Array) -> Float64Array:
    out: Float64Array = v * 180 / math.pi
    return out


def _rad(v: Float64Array) -> Float64Array:
    out: Float64Array = v * math.pi / 180
    return out


_ELEMENTWISE: dict[str, Callable[[Float64Array], Float64Array]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "ln": go_log,
    "log2": _log2,
    "log10": _log10,
    "sgn": _sgn,
    "deg": _deg,
    "rad": _rad,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": _asin,
    "acos": _acos,
    "atan": go_atan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
}


def elementwise(name: str) -> Callable[[list[Value], FunctionContext], Value]:
    """The implementation of the one-argument math function `name`."""
    fn = _ELEMENTWISE[name]

    def impl(args: list[Value], ctx: FunctionContext) -> Value:
        vec = vector_arg(args, 0)
        with np.errstate(all="ignore"):
            return map_values(vec, fn(vec.values))

    impl.__name__ = name
    impl.__doc__ = f"``{name}(v instant-vector)``, sample by sample."
    return impl


ELEMENTWISE_NAMES = tuple(_ELEMENTWISE)


def round_(args: list[Value], ctx: FunctionContext) -> Value:
    """``round(v, to_nearest=1)``: to the nearest multiple of `to_nearest`, ties up."""
    vec = vector_arg(args, 0)
    nearest = scalar_arg(args, 1) if len(args) > 1 else np.ones(vec.steps)
    with np.errstate(all="ignore"):
        inverse = 1.0 / nearest
        values = np.floor(vec.values * inverse[None, :] + 0.5) / inverse[None, :]
    return map_values(vec, values)


def clamp(args: list[Value], ctx: FunctionContext) -> Value:
    """``clamp(v, min, max)``; nothing at a step where ``max < min``."""
    vec = vector_arg(args, 0)
    lo, hi = scalar_arg(args, 1)[None, :], scalar_arg(args, 2)[None, :]
    values = go_max(lo, go_min(hi, vec.values))
    return map_values(vec, values, vec.present & ~(hi < lo))


def clamp_min(args: list[Value], ctx: FunctionContext) -> Value:
    """``clamp_min(v, min)``."""
    vec = vector_arg(args, 0)
    return map_values(vec, go_max(scalar_arg(args, 1)[None, :], vec.values))


def clamp_max(args: list[Value], ctx: FunctionContext) -> Value:
    """``clamp_max(v, max)``."""
    vec = vector_arg(args, 0)
    return map_values(vec, go_min(scalar_arg(args, 1)[None, :], vec.values))


def pi(args: list[Value], ctx: FunctionContext) -> Value:
    """``pi()``."""
    return Scalar(np.full(len(ctx.times), math.pi))


def time(args: list[Value], ctx: FunctionContext) -> Value:
    """``time()``: the evaluation time in seconds."""
    return Scalar(ctx.times.astype(np.float64) / 1000)


def vector(args: list[Value], ctx: FunctionContext) -> Value:
    """``vector(s scalar)``: one series without labels."""
    values = scalar_arg(args, 0)
    return Vector([Labels()], values[None, :].astype(np.float64), np.ones((1, len(values)), dtype=bool))


def scalar(args: list[Value], ctx: FunctionContext) -> Value:
    """``scalar(v instant-vector)``: the value of the only series, NaN unless exactly one
    series has a sample at that step."""
    vec = vector_arg(args, 0)
    if len(vec) == 0:
        return Scalar(np.full(len(ctx.times), np.nan))
    single = vec.present.sum(axis=0) == 1
    pick = np.argmax(vec.present, axis=0)
    values = vec.values[pick, np.arange(vec.steps)]
    return Scalar(np.where(single, values, np.nan))


def timestamp(args: list[Value], ctx: FunctionContext) -> Value:
    """``timestamp(v instant-vector)``: each sample's timestamp in seconds (for a plain
    selector the sample's own time, otherwise the evaluation time)."""
    vec = vector_arg(args, 0)
    if vec.sample_ts is not None:
        ts = vec.sample_ts
    else:
        ts = np.broadcast_to(ctx.times[None, :], vec.values.shape)
    return map_values(vec, ts.astype(np.float64) / 1000)

"""Typed access to a function's evaluated arguments and the shape of its result.

The type checker guarantees each argument's PromQL type before evaluation; these helpers
turn that guarantee into narrowed Python types (a mismatch is a bug, hence `TypeError`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vigilops.query.values import (
    Float64Array,
    Scalar,
    String,
    Value,
    Vector,
    Windows,
    drop_metric_name,
)


def vector_arg(args: Sequence[Value], i: int) -> Vector:
    """Argument `i`, an instant vector."""
    value = args[i]
    if not isinstance(value, Vector):
        raise TypeError(f"argument {i}: expected an instant vector, got {type(value).__name__}")
    return value


def windows_arg(args: Sequence[Value], i: int) -> Windows:
    """Argument `i`, a range vector."""
    value = args[i]
    if not isinstance(value, Windows):
        raise TypeError(f"argument {i}: expected a range vector, got {type(value).__name__}")
    return value


def scalar_arg(args: Sequence[Value], i: int) -> Float64Array:
    """Argument `i`, a scalar: its value at every step."""
    value = args[i]
    if not isinstance(value, Scalar):
        raise TypeError(f"argument {i}: expected a scalar, got {type(value).__name__}")
    return value.values


def string_arg(args: Sequence[Value], i: int) -> str:
    """Argument `i`, a string."""
    value = args[i]
    if not isinstance(value, String):
        raise TypeError(f"argument {i}: expected a string, got {type(value).__name__}")
    return value.value


def map_values(vec: Vector, values: Float64Array, present: np.ndarray | None = None) -> Vector:
    """The output of an element-wise function of `vec`: same series without ``__name__``,
    new `values`, and `present` (default: the input's)."""
    return Vector(
        drop_metric_name(vec.labels),
        values,
        vec.present.copy() if present is None else present,
    )

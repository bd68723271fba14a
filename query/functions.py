"""The PromQL function table: one registry, two consumers.

The type checker (`vigilops.query.parser`) reads argument and return types from here; the
evaluator maps the same names to implementations. The table is Prometheus 2.42's
`promql/parser/functions.go`, with the same meaning for `variadic`:

* ``0``  — exactly ``len(arg_types)`` arguments;
* ``n > 0`` — the last argument type may be given between 0 and ``n`` times, i.e. between
  ``len(arg_types) - 1`` and ``len(arg_types) - 1 + n`` arguments;
* ``-1`` — the last argument type may repeat without limit (at least
  ``len(arg_types) - 1`` arguments).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ValueType(Enum):
    """The type of a PromQL expression, as Prometheus names it in its API."""

    NONE = "none"
    SCALAR = "scalar"
    VECTOR = "vector"
    MATRIX = "matrix"
    STRING = "string"

    @property
    def documented(self) -> str:
        """The name used in error messages (``DocumentedType`` in Prometheus)."""
        return _DOCUMENTED[self]


_DOCUMENTED = {
    ValueType.NONE: "none",
    ValueType.SCALAR: "scalar",
    ValueType.VECTOR: "instant vector",
    ValueType.MATRIX: "range vector",
    ValueType.STRING: "string",
}


@dataclass(frozen=True, slots=True)
class Function:
    """Signature of one PromQL function."""

    name: str
    arg_types: tuple[ValueType, ...]
    return_type: ValueType
    variadic: int = 0

    @property
    def min_args(self) -> int:
        return len(self.arg_types) if self.variadic == 0 else len(self.arg_types) - 1

    @property
    def max_args(self) -> int | None:
        """Largest accepted argument count; None means unbounded."""
        if self.variadic == 0:
            return len(self.arg_types)
        if self.variadic < 0:
            return None
        return len(self.arg_types) - 1 + self.variadic

    def arg_type(self, i: int) -> ValueType:
        """Type expected for argument `i` (repeating the last type for variadic tails)."""
        return self.arg_types[min(i, len(self.arg_types) - 1)]


_S, _V, _M, _STR = ValueType.SCALAR, ValueType.VECTOR, ValueType.MATRIX, ValueType.STRING


def _table(*entries: Function) -> dict[str, Function]:
    return {f.name: f for f in entries}


def _f(name: str, args: tuple[ValueType, ...], ret: ValueType = _V, variadic: int = 0) -> Function:
    return Function(name, args, ret, variadic)


#: Every function of PromQL 2.42, by name.
FUNCTIONS: dict[str, Function] = _table(
    _f("abs", (_V,)),
    _f("absent", (_V,)),
    _f("absent_over_time", (_M,)),
    _f("acos", (_V,)),
    _f("acosh", (_V,)),
    _f("asin", (_V,)),
    _f("asinh", (_V,)),
    _f("atan", (_V,)),
    _f("atanh", (_V,)),
    _f("avg_over_time", (_M,)),
    _f("ceil", (_V,)),
    _f("changes", (_M,)),
    _f("clamp", (_V, _S, _S)),
    _f("clamp_max", (_V, _S)),
    _f("clamp_min", (_V, _S)),
    _f("cos", (_V,)),
    _f("cosh", (_V,)),
    _f("count_over_time", (_M,)),
    _f("days_in_month", (_V,), variadic=1),
    _f("day_of_month", (_V,), variadic=1),
    _f("day_of_week", (_V,), variadic=1),
    _f("day_of_year", (_V,), variadic=1),
    _f("deg", (_V,)),
    _f("delta", (_M,)),
    _f("deriv", (_M,)),
    _f("exp", (_V,)),
    _f("floor", (_V,)),
    # Native-histogram functions: parsed as in 2.42; on classic data they return nothing.
    _f("histogram_count", (_V,)),
    _f("histogram_sum", (_V,)),
    _f("histogram_fraction", (_S, _S, _V)),
    _f("histogram_quantile", (_S, _V)),
    _f("holt_winters", (_M, _S, _S)),
    _f("hour", (_V,), variadic=1),
    _f("idelta", (_M,)),
    _f("increase", (_M,)),
    _f("irate", (_M,)),
    _f("label_replace", (_V, _STR, _STR, _STR, _STR)),
    _f("label_join", (_V, _STR, _STR, _STR), variadic=-1),
    _f("last_over_time", (_M,)),
    _f("ln", (_V,)),
    _f("log10", (_V,)),
    _f("log2", (_V,)),
    _f("max_over_time", (_M,)),
    _f("min_over_time", (_M,)),
    _f("minute", (_V,), variadic=1),
    _f("month", (_V,), variadic=1),
    _f("pi", (), _S),
    _f("predict_linear", (_M, _S)),
    _f("present_over_time", (_M,)),
    _f("quantile_over_time", (_S, _M)),
    _f("rad", (_V,)),
    _f("rate", (_M,)),
    _f("resets", (_M,)),
    _f("round", (_V, _S), variadic=1),
    _f("scalar", (_V,), _S),
    _f("sgn", (_V,)),
    _f("sin", (_V,)),
    _f("sinh", (_V,)),
    _f("sort", (_V,)),
    _f("sort_desc", (_V,)),
    _f("sqrt", (_V,)),
    _f("stddev_over_time", (_M,)),
    _f("stdvar_over_time", (_M,)),
    _f("sum_over_time", (_M,)),
    _f("tan", (_V,)),
    _f("tanh", (_V,)),
    _f("time", (), _S),
    _f("timestamp", (_V,)),
    _f("vector", (_S,)),
    _f("year", (_V,), variadic=1),
)


def get_function(name: str) -> Function | None:
    """Return the signature of `name`, or None if PromQL has no such function."""
    return FUNCTIONS.get(name)

"""AST → PromQL text, in the shape of Prometheus's ``Expr.String()``.

`to_promql(parse(q))` parses back to a tree equal to `parse(q)` (positions aside). The
printer adds no parentheses of its own: the parser keeps every ``( … )`` as a `ParenExpr`,
so precedence survives the round trip.

Two deliberate differences from Prometheus 2.42's ``String()``, both needed for the
round trip: label matchers are printed in source order (Prometheus sorts them), and
``ignoring() group_left`` keeps its ``group_left`` (Prometheus drops it).
"""

from __future__ import annotations

import math
from decimal import Decimal

from vigilops.query.ast import (
    AggregateExpr,
    At,
    BinaryExpr,
    BinOp,
    Call,
    Cardinality,
    Expr,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    VectorMatching,
    VectorSelector,
)
from vigilops.query.parser import format_duration
from vigilops.tsdb.model import go_quote

__all__ = ["to_promql", "format_number"]


def format_number(value: float) -> str:
    """Format a float as Go's ``fmt.Sprint`` does (``%g``, shortest): 1e+06, 0.0001, +Inf."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    # value = 0.<digits> × 10^point, counting the zeros we stripped.
    point = len(digit_tuple) + exponent
    neg = "-" if sign else ""
    exp10 = point - 1
    if exp10 < -4 or exp10 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{neg}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if point <= 0:
        return f"{neg}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{neg}{digits}{'0' * (point - len(digits))}"
    return f"{neg}{digits[:point]}.{digits[point:]}"


def _at(at: At) -> str:
    if at is None:
        return ""
    if at == "start" or at == "end":
        return f" @ {at}()"
    ms = int(at)
    sign = "-" if ms < 0 else ""
    return f" @ {sign}{abs(ms) // 1000}.{abs(ms) % 1000:03d}"


def _offset(ms: int) -> str:
    if ms > 0:
        return f" offset {format_duration(ms)}"
    if ms < 0:
        return f" offset -{format_duration(-ms)}"
    return ""


def _selector_body(vs: VectorSelector) -> str:
    matchers = vs.matchers[:-1] if vs.name else vs.matchers
    if not matchers:
        return vs.name if vs.name else "{}"
    inner = ",".join(f"{m.name}{m.type.value}{go_quote(m.value)}" for m in matchers)
    return f"{vs.name}{{{inner}}}"


def _matching(m: VectorMatching | None) -> str:
    if m is None:
        return ""
    grouped = m.card in (Cardinality.MANY_TO_ONE, Cardinality.ONE_TO_MANY)
    if not (m.labels or m.on or grouped):
        return ""
    out = f" {'on' if m.on else 'ignoring'} ({', '.join(m.labels)})"
    if grouped:
        side = "left" if m.card is Cardinality.MANY_TO_ONE else "right"
        out += f" group_{side} ({', '.join(m.include)})"
    return out


def to_promql(expr: Expr) -> str:
    """Print `expr` as PromQL that parses back to an equal tree."""
    if isinstance(expr, NumberLiteral):
        return format_number(expr.value)
    if isinstance(expr, StringLiteral):
        return go_quote(expr.value)
    if isinstance(expr, VectorSelector):
        return f"{_selector_body(expr)}{_at(expr.at)}{_offset(expr.offset_ms)}"
    if isinstance(expr, MatrixSelector):
        vs = expr.vector
        return (f"{_selector_body(vs)}[{format_duration(expr.range_ms)}]"
                f"{_at(vs.at)}{_offset(vs.offset_ms)}")
    if isinstance(expr, SubqueryExpr):
        step = format_duration(expr.step_ms) if expr.step_ms else ""
        return (f"{to_promql(expr.expr)}[{format_duration(expr.range_ms)}:{step}]"
                f"{_at(expr.at)}{_offset(expr.offset_ms)}")
    if isinstance(expr, Call):
        return f"{expr.function.name}({', '.join(to_promql(a) for a in expr.args)})"
    if isinstance(expr, AggregateExpr):
        head = expr.op.value
        if expr.without:
            head += f" without ({', '.join(expr.grouping)}) "
        elif expr.grouping:
            head += f" by ({', '.join(expr.grouping)}) "
        param = f"{to_promql(expr.param)}, " if expr.param is not None else ""
        return f"{head}({param}{to_promql(expr.expr)})"
    if isinstance(expr, BinaryExpr):
        bool_ = " bool" if expr.return_bool else ""
        lhs = to_promql(expr.lhs)
        if lhs == "+Inf" and expr.op is BinOp.POW:
            lhs = "Inf"  # "+Inf ^ x" would parse as +(Inf ^ x)
        return (f"{lhs} {expr.op.value}{bool_}{_matching(expr.matching)} "
                f"{to_promql(expr.rhs)}")
    if isinstance(expr, UnaryExpr):
        return f"{expr.op}{to_promql(expr.expr)}"
    if isinstance(expr, ParenExpr):
        return f"({to_promql(expr.expr)})"
    raise TypeError(f"not a PromQL expression node: {type(expr).__name__}")

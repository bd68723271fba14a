"""AST → PromQL text: Prometheus 2.42's ``Expr.String()`` and ``parser.Prettify``, and a
round-trip form of the former.

`prom_string` is ``String()`` exactly: label matchers sorted as strings (the ``__name__``
matcher equal to the written name left out), ``ignoring() group_left`` printed as nothing.
`prettify` is what ``/api/v1/format_query`` answers: `prom_string`, with every node whose
one-line form is longer than 100 bytes split over indented lines (``prettier.go``).

`to_promql` differs from `prom_string` where the round trip needs it, so that
``parse(to_promql(parse(q)))`` equals ``parse(q)`` (positions aside): matchers stay in
source order, ``ignoring() group_left`` keeps its ``group_left``, and ``+Inf ^ x`` is
written ``Inf ^ x`` (``+Inf ^ x`` parses as ``+(Inf ^ x)``). Neither adds parentheses of its
own: the parser keeps every ``( … )`` as a `ParenExpr`, so precedence survives.
"""

from __future__ import annotations

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
    VectorSelector,
)
from vigilops.query.gomath import go_format_g
from vigilops.query.parser import format_duration
from vigilops.tsdb.model import METRIC_NAME, MatchType, go_quote

__all__ = ["MAX_CHARACTERS_PER_LINE", "format_number", "prettify", "prom_string", "to_promql"]

#: `prettify` splits a node whose one-line form is longer than this (bytes).
MAX_CHARACTERS_PER_LINE = 100
_INDENT = "  "


def format_number(value: float) -> str:
    """A number literal as Go's ``fmt.Sprint`` writes it (``%g``, shortest): 1e+06, 0.0001,
    +Inf, NaN."""
    return go_format_g(value)


class _Printer:
    """One of the two one-line forms: Prometheus's (`prom_string`) or the round trip's."""

    def __init__(self, round_trip: bool) -> None:
        self.round_trip = round_trip

    def expr(self, e: Expr) -> str:
        if isinstance(e, NumberLiteral):
            return format_number(e.value)
        if isinstance(e, StringLiteral):
            return go_quote(e.value)
        if isinstance(e, VectorSelector):
            return self.selector(e) + _modifiers(e.at, e.offset_ms)
        if isinstance(e, MatrixSelector):
            vs = e.vector
            return f"{self.selector(vs)}[{format_duration(e.range_ms)}]" + _modifiers(
                vs.at, vs.offset_ms
            )
        if isinstance(e, SubqueryExpr):
            return self.expr(e.expr) + _subquery_suffix(e)
        if isinstance(e, Call):
            return f"{e.function.name}({', '.join(self.expr(a) for a in e.args)})"
        if isinstance(e, AggregateExpr):
            param = f"{self.expr(e.param)}, " if e.param is not None else ""
            return f"{_aggregation_head(e)}({param}{self.expr(e.expr)})"
        if isinstance(e, BinaryExpr):
            lhs = self.expr(e.lhs)
            if self.round_trip and lhs == "+Inf" and e.op is BinOp.POW:
                lhs = "Inf"
            return f"{lhs} {self.operator(e)} {self.expr(e.rhs)}"
        if isinstance(e, UnaryExpr):
            return f"{e.op}{self.expr(e.expr)}"
        if isinstance(e, ParenExpr):
            return f"({self.expr(e.expr)})"
        raise TypeError(f"not a PromQL expression node: {type(e).__name__}")

    def selector(self, vs: VectorSelector) -> str:
        """``name{matchers}`` without ``@`` and offset."""
        if self.round_trip:
            # The parser appends the name's matcher last; the others keep source order.
            shown = vs.matchers[:-1] if vs.name else vs.matchers
            parts = [f"{m.name}{m.type.value}{go_quote(m.value)}" for m in shown]
            if not parts:
                return vs.name or "{}"
        else:
            parts = sorted(
                f"{m.name}{m.type.value}{go_quote(m.value)}"
                for m in vs.matchers
                if not (m.name == METRIC_NAME and m.type is MatchType.EQUAL and m.value == vs.name)
            )
            if not parts:
                return vs.name
        return f"{vs.name}{{{','.join(parts)}}}"

    def operator(self, e: BinaryExpr) -> str:
        """The operator with ``bool`` and its vector matching."""
        out = e.op.value + (" bool" if e.return_bool else "")
        m = e.matching
        if m is None:
            return out
        grouped = m.card in (Cardinality.MANY_TO_ONE, Cardinality.ONE_TO_MANY)
        if not (m.labels or m.on or (grouped and self.round_trip)):
            return out  # `ignoring()` prints as nothing (`group_left` with it, in String())
        out += f" {'on' if m.on else 'ignoring'} ({', '.join(m.labels)})"
        if grouped:
            side = "left" if m.card is Cardinality.MANY_TO_ONE else "right"
            out += f" group_{side} ({', '.join(m.include)})"
        return out


_PROMETHEUS = _Printer(round_trip=False)
_ROUND_TRIP = _Printer(round_trip=True)


def prom_string(e: Expr) -> str:
    """Prometheus 2.42's ``Expr.String()``."""
    return _PROMETHEUS.expr(e)


def to_promql(expr: Expr) -> str:
    """Print `expr` as PromQL that parses back to an equal tree."""
    return _ROUND_TRIP.expr(expr)


def _modifiers(at: At, offset_ms: int) -> str:
    """`` @ <t>`` then `` offset <d>``, each only when set."""
    out = ""
    if at == "start" or at == "end":
        out += f" @ {at}()"
    elif at is not None:
        ms = int(at)
        out += f" @ {'-' if ms < 0 else ''}{abs(ms) // 1000}.{abs(ms) % 1000:03d}"
    if offset_ms > 0:
        out += f" offset {format_duration(offset_ms)}"
    elif offset_ms < 0:
        out += f" offset -{format_duration(-offset_ms)}"
    return out


def _subquery_suffix(e: SubqueryExpr) -> str:
    step = format_duration(e.step_ms) if e.step_ms else ""
    return f"[{format_duration(e.range_ms)}:{step}]" + _modifiers(e.at, e.offset_ms)


def _aggregation_head(e: AggregateExpr) -> str:
    head = e.op.value
    if e.without:
        head += f" without ({', '.join(e.grouping)}) "
    elif e.grouping:
        head += f" by ({', '.join(e.grouping)}) "
    return head


# ---- Prettify ---------------------------------------------------------------------------------
def prettify(e: Expr) -> str:
    """``parser.Prettify``: `prom_string`, with every node longer than 100 characters split
    over lines indented by two spaces a level."""
    return _pretty(e, 0)


def _needs_split(e: Expr) -> bool:
    return len(prom_string(e).encode()) > MAX_CHARACTERS_PER_LINE


def _pretty(e: Expr, level: int) -> str:
    ind = _INDENT * level
    if isinstance(e, SubqueryExpr):  # no indent of its own: its expression carries it
        if not _needs_split(e):
            return prom_string(e)
        return _pretty(e.expr, level) + _subquery_suffix(e)
    if isinstance(e, UnaryExpr):
        return f"{ind}{e.op}{_pretty(e.expr, level).strip()}"
    if not _needs_split(e) or isinstance(
        e, (VectorSelector, MatrixSelector, NumberLiteral, StringLiteral)
    ):
        return ind + prom_string(e)
    if isinstance(e, AggregateExpr):
        param = f"{_pretty(e.param, level + 1)},\n" if e.param is not None else ""
        return f"{ind}{_aggregation_head(e)}(\n{param}{_pretty(e.expr, level + 1)}\n{ind})"
    if isinstance(e, BinaryExpr):
        return (f"{_pretty(e.lhs, level + 1)}\n{ind}{_PROMETHEUS.operator(e)}\n"
                f"{_pretty(e.rhs, level + 1)}")
    if isinstance(e, Call):
        args = ",\n".join(_pretty(a, level + 1) for a in e.args)
        return f"{ind}{e.function.name}(\n{args}\n{ind})"
    if isinstance(e, ParenExpr):
        return f"{ind}(\n{_pretty(e.expr, level + 1)}\n{ind})"
    raise TypeError(f"not a PromQL expression node: {type(e).__name__}")

"""The typed PromQL syntax tree.

Every node is a frozen dataclass. Each carries `pos`, the ``(start, end)`` character offsets
of its source text, used for ``line:col`` error messages; `pos` takes no part in equality, so
a tree printed with `vigilops.query.printer.to_promql` and parsed again compares equal to the
original. Each node has a `type` (`ValueType`): what evaluating it yields.

As in Prometheus, a metric name written outside the braces (``foo{a="b"}``) is kept in
`VectorSelector.name` *and* appended to `VectorSelector.matchers` as ``__name__="foo"``, so the
evaluator only ever looks at `matchers`. Offsets and ``@`` are stored as written, in
milliseconds; a range selector keeps them on its inner `VectorSelector`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, TypeAlias

from vigilops.query.functions import Function, ValueType
from vigilops.tsdb.model import Matcher

Pos: TypeAlias = tuple[int, int]

#: The ``@`` modifier: a timestamp in ms, ``"start"``/``"end"`` (``@ start()``), or absent.
At: TypeAlias = int | Literal["start", "end"] | None


class BinOp(StrEnum):
    """Binary operators, spelled as in PromQL."""

    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"
    MOD = "%"
    POW = "^"
    ATAN2 = "atan2"
    EQLC = "=="
    NEQ = "!="
    GTR = ">"
    LSS = "<"
    GTE = ">="
    LTE = "<="
    AND = "and"
    OR = "or"
    UNLESS = "unless"

    @property
    def is_comparison(self) -> bool:
        return self in _COMPARISONS

    @property
    def is_set_operator(self) -> bool:
        return self in (BinOp.AND, BinOp.OR, BinOp.UNLESS)

    @property
    def precedence(self) -> int:
        """Binding strength, higher binds tighter (``generated_parser.y``'s table)."""
        return _PRECEDENCE[self]

    @property
    def right_associative(self) -> bool:
        return self is BinOp.POW


_COMPARISONS = frozenset(
    {BinOp.EQLC, BinOp.NEQ, BinOp.GTR, BinOp.LSS, BinOp.GTE, BinOp.LTE}
)
_PRECEDENCE = {
    BinOp.OR: 1,
    BinOp.AND: 2,
    BinOp.UNLESS: 2,
    **{op: 3 for op in _COMPARISONS},
    BinOp.ADD: 4,
    BinOp.SUB: 4,
    BinOp.MUL: 5,
    BinOp.DIV: 5,
    BinOp.MOD: 5,
    BinOp.ATAN2: 5,
    BinOp.POW: 6,
}


class AggOp(StrEnum):
    """Aggregation operators."""

    SUM = "sum"
    AVG = "avg"
    COUNT = "count"
    MIN = "min"
    MAX = "max"
    GROUP = "group"
    STDDEV = "stddev"
    STDVAR = "stdvar"
    TOPK = "topk"
    BOTTOMK = "bottomk"
    COUNT_VALUES = "count_values"
    QUANTILE = "quantile"

    @property
    def has_param(self) -> bool:
        return self in (AggOp.TOPK, AggOp.BOTTOMK, AggOp.COUNT_VALUES, AggOp.QUANTILE)


class Cardinality(StrEnum):
    ONE_TO_ONE = "one-to-one"
    MANY_TO_ONE = "many-to-one"
    ONE_TO_MANY = "one-to-many"
    MANY_TO_MANY = "many-to-many"


@dataclass(frozen=True, slots=True)
class VectorMatching:
    """How the two sides of a vector/vector binary expression are matched.

    `labels` are the ``on``/``ignoring`` labels (`on` tells which); `include` are the
    ``group_left``/``group_right`` labels copied from the "one" side.
    """

    card: Cardinality = Cardinality.ONE_TO_ONE
    on: bool = False
    labels: tuple[str, ...] = ()
    include: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Expr:
    """Base of all expression nodes."""

    pos: Pos = field(default=(0, 0), compare=False, kw_only=True, repr=False)

    @property
    def type(self) -> ValueType:
        raise NotImplementedError

    def children(self) -> tuple[Expr, ...]:
        """Direct sub-expressions, in source order."""
        return ()


@dataclass(frozen=True, slots=True, eq=False)
class NumberLiteral(Expr):
    value: float

    @property
    def type(self) -> ValueType:
        return ValueType.SCALAR

    def _key(self) -> str:
        # repr() tells NaN from NaN by identity-free text, and -0.0 from 0.0.
        return "NaN" if math.isnan(self.value) else repr(float(self.value))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NumberLiteral) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(("NumberLiteral", self._key()))


@dataclass(frozen=True, slots=True)
class StringLiteral(Expr):
    value: str

    @property
    def type(self) -> ValueType:
        return ValueType.STRING


@dataclass(frozen=True, slots=True)
class VectorSelector(Expr):
    """An instant vector selector: ``name{matchers} @ at offset offset_ms``.

    `name` is the metric name written before the braces ("" if none); when set, the last
    matcher is its ``__name__`` equality matcher.
    """

    name: str
    matchers: tuple[Matcher, ...]
    offset_ms: int = 0
    at: At = None

    @property
    def type(self) -> ValueType:
        return ValueType.VECTOR


@dataclass(frozen=True, slots=True)
class MatrixSelector(Expr):
    """A range vector selector ``vector[range]``; offset and ``@`` live on `vector`."""

    vector: VectorSelector
    range_ms: int

    @property
    def type(self) -> ValueType:
        return ValueType.MATRIX

    def children(self) -> tuple[Expr, ...]:
        return (self.vector,)


@dataclass(frozen=True, slots=True)
class SubqueryExpr(Expr):
    """``expr[range:step]``; `step_ms` None means the default evaluation interval."""

    expr: Expr
    range_ms: int
    step_ms: int | None = None
    offset_ms: int = 0
    at: At = None

    @property
    def type(self) -> ValueType:
        return ValueType.MATRIX

    def children(self) -> tuple[Expr, ...]:
        return (self.expr,)


@dataclass(frozen=True, slots=True)
class Call(Expr):
    function: Function
    args: tuple[Expr, ...]

    @property
    def type(self) -> ValueType:
        return self.function.return_type

    def children(self) -> tuple[Expr, ...]:
        return self.args


@dataclass(frozen=True, slots=True)
class AggregateExpr(Expr):
    """``op by|without (grouping) ([param,] expr)``."""

    op: AggOp
    expr: Expr
    param: Expr | None = None
    grouping: tuple[str, ...] = ()
    without: bool = False

    @property
    def type(self) -> ValueType:
        return ValueType.VECTOR

    def children(self) -> tuple[Expr, ...]:
        return (self.expr,) if self.param is None else (self.param, self.expr)


@dataclass(frozen=True, slots=True)
class BinaryExpr(Expr):
    """``lhs op [bool] [on|ignoring (…) [group_left|group_right (…)]] rhs``.

    `matching` is None unless both sides are instant vectors; set operators always carry
    many-to-many matching.
    """

    op: BinOp
    lhs: Expr
    rhs: Expr
    return_bool: bool = False
    matching: VectorMatching | None = None

    @property
    def type(self) -> ValueType:
        if self.lhs.type is ValueType.SCALAR and self.rhs.type is ValueType.SCALAR:
            return ValueType.SCALAR
        return ValueType.VECTOR

    def children(self) -> tuple[Expr, ...]:
        return (self.lhs, self.rhs)


@dataclass(frozen=True, slots=True)
class UnaryExpr(Expr):
    op: Literal["+", "-"]
    expr: Expr

    @property
    def type(self) -> ValueType:
        return self.expr.type

    def children(self) -> tuple[Expr, ...]:
        return (self.expr,)


@dataclass(frozen=True, slots=True)
class ParenExpr(Expr):
    expr: Expr

    @property
    def type(self) -> ValueType:
        return self.expr.type

    def children(self) -> tuple[Expr, ...]:
        return (self.expr,)


def walk(expr: Expr) -> Iterator[Expr]:
    """Yield `expr` and every sub-expression, depth first, parents before children."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children()))

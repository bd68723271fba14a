"""to_promql: printed PromQL re-parses to an equal AST, for hand-picked and generated trees."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigilops.query.ast import (
    AggOp,
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
from vigilops.query.functions import FUNCTIONS, ValueType
from vigilops.query.parser import parse
from vigilops.query.printer import format_number, prom_string, to_promql
from vigilops.tsdb.model import Matcher, MatchType

ROUND_TRIP = [
    "1",
    "-1.5",
    "+Inf",
    "NaN",
    "1e+06",
    "0.0001",
    '"a\\n\\"b\\"\\u00e9"',
    "`raw \\ string`",
    'foo{a="b",c=~"d|e",f!="",g!~".*x"}',
    '{__name__="foo",job="x"}',
    "sum{on=\"x\"} offset 5m",
    "foo @ 1609746000.123 offset -1h30m",
    "foo[5m] @ start() offset 1w",
    "rate(foo[5m])[30m:1m] @ end() offset 1m",
    "max_over_time((a + b)[1h:])",
    "sum by (a, on, bool) (rate(x[5m]))",
    "sum without () (x)",
    "topk(5, x)",
    'count_values("v", x)',
    'label_replace(x, "dst", "$1", "src", "(.*)")',
    "a + on (x) group_left (y) b",
    "a + ignoring () group_left () b",
    "a / on () group_right b",
    "a > bool on (x) b",
    "a and on (x) b or c unless d",
    "-a ^ b",
    "(-a) ^ b",
    "2 ^ -1",
    "--a",
    "-(1)",
    "(1 + 2) * 3",
    "1 - (2 - 3)",
    "2 ^ 3 ^ 4",
    "Inf ^ 2",
    "+(Inf ^ 2)",
    "(2 ^ 3) ^ 4",
    "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))",
    "time() - timestamp(up)",
    "absent_over_time(nonexistent{job=\"x\"}[10m])",
    "sort_desc(vector(1) + scalar(x))",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip(text: str) -> None:
    expr = parse(text)
    printed = to_promql(expr)
    assert parse(printed) == expr
    assert to_promql(parse(printed)) == printed


@pytest.mark.parametrize(("text", "printed"), [
    ("sum(x) by (a)", "sum by (a) (x)"),
    ("foo offset 5m @ 10", "foo @ 10.000 offset 5m"),
    ("foo   +on(a)group_left(b)bar", "foo + on (a) group_left (b) bar"),
    ("x[90m]", "x[1h30m]"),
    ("x offset 2w", "x offset 2w"),
    ("0x10", "16"),
    ("1e3", "1000"),
    ("123456789", "1.23456789e+08"),
    ("inf", "+Inf"),
    ("a and b", "a and b"),
    ("count_values('v', x)", 'count_values("v", x)'),
])
def test_prometheus_spelling(text: str, printed: str) -> None:
    assert to_promql(parse(text)) == printed


@pytest.mark.parametrize(("value", "text"), [
    (0.0, "0"), (-0.0, "-0"), (1.0, "1"), (100000.0, "100000"), (1e6, "1e+06"),
    (1.5e-5, "1.5e-05"), (0.0001, "0.0001"), (-2.5, "-2.5"), (1e21, "1e+21"),
    (math.inf, "+Inf"), (-math.inf, "-Inf"), (math.nan, "NaN"), (123456.7, "123456.7"),
])
def test_format_number_like_go(value: float, text: str) -> None:
    assert format_number(value) == text


# ---------------------------------------------------------------- generated trees

_METRIC_NAMES = ["foo", "up", "x:y", ":z", "sum", "by", "offset", "start", "and", "without",
                 "SUM", "Infinity"]
_LABELS = ["a", "job", "le", "on", "bool", "by", "offset", "group_left", "sum", "inf", "_x"]
_GROUP_LABELS = ["a", "job", "le", "on", "bool", "by", "offset", "group_left", "sum", "atan2",
                 "start", "_x"]
_VALUES = st.one_of(st.sampled_from(["x", "", "a b", 'q"uote', "back\\slash", "é", "\n\t"]),
                    st.text(max_size=5))
_REGEXES = st.sampled_from(["a.*", "b|c", ".+", "x", "", "[0-9]+"])
_DURATIONS = st.sampled_from([1, 500, 1000, 60_000, 300_000, 5_400_000, 86_400_000,
                              604_800_000, 31_536_000_000, 90_061_001])
_ATS: st.SearchStrategy[At] = st.one_of(
    st.none(), st.just("start"), st.just("end"),
    st.integers(min_value=-10**12, max_value=10**13),
)
_OFFSETS = st.one_of(st.just(0), _DURATIONS, _DURATIONS.map(lambda d: -d))


@st.composite
def _matcher(draw: st.DrawFn) -> Matcher:
    name = draw(st.sampled_from(_LABELS))
    kind = draw(st.sampled_from(list(MatchType)))
    if kind in (MatchType.REGEX, MatchType.NOT_REGEX):
        return Matcher(kind, name, draw(_REGEXES))
    return Matcher(kind, name, draw(_VALUES))


@st.composite
def vector_selectors(draw: st.DrawFn, *, modifiers: bool = True) -> VectorSelector:
    name = draw(st.sampled_from(["", *_METRIC_NAMES]))
    matchers = draw(st.lists(_matcher(), max_size=3))
    if not name:
        matchers.append(Matcher(MatchType.EQUAL, draw(st.sampled_from(["__name__", "job"])), "v"))
    else:
        matchers.append(Matcher(MatchType.EQUAL, "__name__", name))
    offset = draw(_OFFSETS) if modifiers else 0
    at = draw(_ATS) if modifiers else None
    return VectorSelector(name, tuple(matchers), offset, at)


def _num(draw: st.DrawFn, *, non_negative: bool = False) -> NumberLiteral:
    v = draw(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                       st.sampled_from([0.0, 1.0, 0.5, 1e6, 255.0])))
    if non_negative and (math.copysign(1.0, v) < 0):
        v = -v
    return NumberLiteral(v)


def _paren_if(e: Expr, cond: bool) -> Expr:
    return ParenExpr(e) if cond else e


def _binary(draw: st.DrawFn, op: BinOp, lhs: Expr, rhs: Expr) -> BinaryExpr:
    """Build lhs op rhs, parenthesising operands as the parser would have needed."""
    def weak(e: Expr) -> bool:
        return isinstance(e, BinaryExpr)

    if isinstance(lhs, BinaryExpr):
        p = lhs.op.precedence
        lhs = _paren_if(lhs, p < op.precedence or (p == op.precedence and op.right_associative))
    if op is BinOp.POW and (isinstance(lhs, UnaryExpr) or (
            isinstance(lhs, NumberLiteral) and math.copysign(1.0, lhs.value) < 0)):
        lhs = ParenExpr(lhs)
    if isinstance(rhs, BinaryExpr):
        p = rhs.op.precedence
        rhs = _paren_if(rhs, p < op.precedence or (p == op.precedence
                                                   and not op.right_associative))
    assert not weak(lhs) or lhs.op.precedence >= op.precedence  # type: ignore[attr-defined]
    both_vectors = lhs.type is ValueType.VECTOR and rhs.type is ValueType.VECTOR
    return_bool = op.is_comparison and (
        (lhs.type is ValueType.SCALAR and rhs.type is ValueType.SCALAR) or draw(st.booleans()))
    matching = None
    if both_vectors:
        on = draw(st.booleans())
        labels = tuple(draw(st.lists(st.sampled_from(_GROUP_LABELS), max_size=2, unique=True)))
        if op.is_set_operator:
            matching = VectorMatching(Cardinality.MANY_TO_MANY, on, labels)
        else:
            card = draw(st.sampled_from([Cardinality.ONE_TO_ONE, Cardinality.MANY_TO_ONE,
                                         Cardinality.ONE_TO_MANY]))
            include: tuple[str, ...] = ()
            if card is not Cardinality.ONE_TO_ONE:
                include = tuple(x for x in draw(st.lists(st.sampled_from(_GROUP_LABELS),
                                                         max_size=2, unique=True))
                                if not (on and x in labels))
            matching = VectorMatching(card, on, labels, include)
    return BinaryExpr(op, lhs, rhs, return_bool, matching)


def _wrap_postfix(e: Expr) -> Expr:
    """Operand of `[range:step]`: must print as one postfix-level term."""
    return ParenExpr(e) if isinstance(e, BinaryExpr | UnaryExpr) else e


def exprs(want: ValueType, depth: int) -> st.SearchStrategy[Expr]:
    @st.composite
    def build(draw: st.DrawFn) -> Expr:
        if want is ValueType.STRING:
            return StringLiteral(draw(_VALUES))
        if want is ValueType.MATRIX:
            if depth <= 0 or draw(st.booleans()):
                vs = draw(vector_selectors(modifiers=False))
                vs = VectorSelector(vs.name, vs.matchers, draw(_OFFSETS), draw(_ATS))
                return MatrixSelector(vs, draw(_DURATIONS))
            inner = draw(exprs(ValueType.VECTOR, depth - 1))
            return SubqueryExpr(_wrap_postfix(inner), draw(_DURATIONS),
                                draw(st.one_of(st.none(), _DURATIONS)), draw(_OFFSETS),
                                draw(_ATS))
        if depth <= 0:
            if want is ValueType.SCALAR:
                return _num(draw)
            return draw(vector_selectors())
        kind = draw(st.sampled_from(["leaf", "call", "binary", "unary", "paren", "agg"]))
        if kind == "leaf":
            return draw(exprs(want, 0))
        if kind == "call":
            fns = [f for f in FUNCTIONS.values() if f.return_type is want]
            fn = draw(st.sampled_from(fns))
            n = fn.min_args if fn.max_args == fn.min_args else draw(st.integers(
                fn.min_args, fn.max_args if fn.max_args is not None else fn.min_args + 2))
            args = tuple(draw(exprs(fn.arg_type(i), depth - 1)) for i in range(n))
            return Call(fn, args)
        if kind == "unary":
            inner = draw(exprs(want, depth - 1))
            if isinstance(inner, NumberLiteral) or (
                    isinstance(inner, BinaryExpr) and inner.op is not BinOp.POW):
                inner = ParenExpr(inner)
            return UnaryExpr(draw(st.sampled_from(["-", "+"])), inner)
        if kind == "paren":
            return ParenExpr(draw(exprs(want, depth - 1)))
        if kind == "agg" and want is ValueType.VECTOR:
            op = draw(st.sampled_from(list(AggOp)))
            param: Expr | None = None
            if op is AggOp.COUNT_VALUES:
                param = draw(exprs(ValueType.STRING, 0))
            elif op.has_param:
                param = draw(exprs(ValueType.SCALAR, depth - 1))
            without = draw(st.booleans())
            grouping = tuple(draw(st.lists(st.sampled_from(_GROUP_LABELS), max_size=3)))
            return AggregateExpr(op, draw(exprs(ValueType.VECTOR, depth - 1)), param,
                                 grouping, without)
        # binary
        if want is ValueType.SCALAR:
            ops = [op for op in BinOp if not op.is_set_operator]
            bop = draw(st.sampled_from(ops))
            lhs = draw(exprs(ValueType.SCALAR, depth - 1))
            rhs = draw(exprs(ValueType.SCALAR, depth - 1))
        else:
            bop = draw(st.sampled_from(list(BinOp)))
            sides = [ValueType.VECTOR, ValueType.VECTOR]
            if not bop.is_set_operator and draw(st.booleans()):
                sides[draw(st.integers(0, 1))] = ValueType.SCALAR
            lhs = draw(exprs(sides[0], depth - 1))
            rhs = draw(exprs(sides[1], depth - 1))
        return _binary(draw, bop, lhs, rhs)

    return build()


@given(st.sampled_from([ValueType.SCALAR, ValueType.VECTOR, ValueType.MATRIX,
                        ValueType.STRING]).flatmap(lambda t: exprs(t, 3)))
def test_generated_trees_print_and_reparse_equal(expr: Expr) -> None:
    printed = to_promql(expr)
    assert parse(printed) == expr, printed


def test_printer_rejects_non_nodes() -> None:
    with pytest.raises(TypeError):
        to_promql(object())  # type: ignore[arg-type]


def test_call_printing_uses_table_names() -> None:
    expr = Call(FUNCTIONS["clamp"], (VectorSelector("x", (Matcher(MatchType.EQUAL, "__name__",
                                                                    "x"),)),
                                     NumberLiteral(0), NumberLiteral(1)))
    assert to_promql(expr) == "clamp(x, 0, 1)"
    assert parse("clamp(x, 0, 1)") == expr


def test_prom_string_differs_from_to_promql_only_where_documented() -> None:
    e = parse('foo{z="1",a="2"} / ignoring() group_left bar')
    assert prom_string(e) == 'foo{a="2",z="1"} / bar'  # Prometheus's String()
    assert to_promql(e) == 'foo{z="1",a="2"} / ignoring () group_left () bar'
    assert parse(to_promql(e)) == e
    e = parse('sum by (a) (rate(x{b=~"c"}[5m] @ 1.5 offset -1m)) > bool 1e6')
    text = 'sum by (a) (rate(x{b=~"c"}[5m] @ 1.500 offset -1m)) > bool 1e+06'
    assert prom_string(e) == to_promql(e) == text

"""PromQL parser: table tests of valid expressions (AST shape) and invalid ones (message and
position), after Prometheus's ``promql/parser/parse_test.go``."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigilops.query.ast import (
    AggOp,
    AggregateExpr,
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
    walk,
)
from vigilops.query.functions import FUNCTIONS, ValueType
from vigilops.query.parser import ParseError, format_duration, parse, parse_duration
from vigilops.tsdb.model import Matcher, MatchType

MIN = 60_000


def vs(name: str = "", *matchers: Matcher, offset_ms: int = 0, at: int | str | None = None
       ) -> VectorSelector:
    ms = list(matchers)
    if name:
        ms.append(Matcher(MatchType.EQUAL, "__name__", name))
    return VectorSelector(name, tuple(ms), offset_ms, at)  # type: ignore[arg-type]


def eq(name: str, value: str) -> Matcher:
    return Matcher(MatchType.EQUAL, name, value)


def num(v: float) -> NumberLiteral:
    return NumberLiteral(v)


def call(name: str, *args: Expr) -> Call:
    return Call(FUNCTIONS[name], args)


def vm(card: Cardinality = Cardinality.ONE_TO_ONE, on: bool = False,
       labels: tuple[str, ...] = (), include: tuple[str, ...] = ()) -> VectorMatching:
    return VectorMatching(card, on, labels, include)


def bin_(op: str, lhs: Expr, rhs: Expr, *, return_bool: bool = False,
         matching: VectorMatching | None = None) -> BinaryExpr:
    if matching is None and lhs.type is ValueType.VECTOR and rhs.type is ValueType.VECTOR:
        op_ = BinOp(op)
        matching = vm(Cardinality.MANY_TO_MANY if op_.is_set_operator else Cardinality.ONE_TO_ONE)
    return BinaryExpr(BinOp(op), lhs, rhs, return_bool, matching)


VALID: list[tuple[str, Expr]] = [
    # numbers
    ("1", num(1)),
    ("+Inf", num(math.inf)),
    ("-Inf", num(-math.inf)),
    ("inf", num(math.inf)),
    ("nAn", num(math.nan)),
    (".5", num(0.5)),
    ("5.", num(5)),
    ("1e3", num(1000)),
    ("1E-3", num(0.001)),
    ("0x1F", num(31)),
    ("0X1f", num(31)),
    ("010", num(8)),  # Go's ParseInt with base 0: octal
    ("019", num(19)),
    ("-1", num(-1)),
    ("--1", num(1)),
    ("+5", num(5)),
    ("-0", num(-0.0)),
    # strings
    ('"a\\nb"', StringLiteral("a\nb")),
    ("'it\\'s'", StringLiteral("it's")),
    ("`raw\\n`", StringLiteral("raw\\n")),
    ('"\\u00e9\\x41\\101\\U0001F600"', StringLiteral("éAA\U0001F600")),
    ("'\"'", StringLiteral('"')),
    # selectors
    ("foo", vs("foo")),
    ("foo:bar:baz", vs("foo:bar:baz")),
    (":foo", vs(":foo")),
    ('foo{a="b", c!="d", e=~"f.*", g!~"h",}', vs(
        "foo", eq("a", "b"), Matcher(MatchType.NOT_EQUAL, "c", "d"),
        Matcher(MatchType.REGEX, "e", "f.*"), Matcher(MatchType.NOT_REGEX, "g", "h"))),
    ('{__name__="foo"}', vs("", eq("__name__", "foo"))),
    ('{__name__=~"foo|bar", a="b"}', vs(
        "", Matcher(MatchType.REGEX, "__name__", "foo|bar"), eq("a", "b"))),
    ("foo{}", vs("foo")),
    ('{a=~".+"}', vs("", Matcher(MatchType.REGEX, "a", ".+"))),
    # keywords as metric and label names
    ("sum", vs("sum")),
    ("by", vs("by")),
    ("without", vs("without")),
    ("offset", vs("offset")),
    ("and", vs("and")),
    ("start", vs("start")),
    ("SUM", vs("SUM")),
    ("Infinity", vs("Infinity")),
    ('sum{on="x", bool="y", group_left="z", offset="o", inf="i"}', vs(
        "sum", eq("on", "x"), eq("bool", "y"), eq("group_left", "z"), eq("offset", "o"),
        eq("inf", "i"))),
    ("offset offset 5m", vs("offset", offset_ms=5 * MIN)),
    ("sum by (sum, on, bool, group_left, offset, atan2, start) (x)", AggregateExpr(
        AggOp.SUM, vs("x"), None,
        ("sum", "on", "bool", "group_left", "offset", "atan2", "start"))),
    # offset and @
    ("foo offset 5m", vs("foo", offset_ms=5 * MIN)),
    ("foo OFFSET -1h30m", vs("foo", offset_ms=-90 * MIN)),
    ("foo offset 1y", vs("foo", offset_ms=365 * 86_400_000)),
    ("foo @ 1609746000", vs("foo", at=1_609_746_000_000)),
    ("foo @ 1.5", vs("foo", at=1500)),
    ("foo @ -5", vs("foo", at=-5000)),
    ("foo @ 0x10", vs("foo", at=16_000)),
    ("foo @ start()", vs("foo", at="start")),
    ("foo @ end() offset 1m", vs("foo", offset_ms=MIN, at="end")),
    ("foo offset 1m @ end()", vs("foo", offset_ms=MIN, at="end")),
    # ranges and subqueries
    ("foo[5m]", MatrixSelector(vs("foo"), 5 * MIN)),
    ("foo[1h30m]", MatrixSelector(vs("foo"), 90 * MIN)),
    ("foo[500ms]", MatrixSelector(vs("foo"), 500)),
    ("foo[5m] offset 1m @ 10", MatrixSelector(vs("foo", offset_ms=MIN, at=10_000), 5 * MIN)),
    ("foo[5m:]", SubqueryExpr(vs("foo"), 5 * MIN, None)),
    ("foo[5m:1m]", SubqueryExpr(vs("foo"), 5 * MIN, MIN)),
    ("rate(foo[5m])[30m:1m] offset -1m @ start()", SubqueryExpr(
        call("rate", MatrixSelector(vs("foo"), 5 * MIN)), 30 * MIN, MIN, -MIN, "start")),
    ("max_over_time(max_over_time(rate(foo[5m])[1h:])[2h:5m])", call(
        "max_over_time", SubqueryExpr(call("max_over_time", SubqueryExpr(
            call("rate", MatrixSelector(vs("foo"), 5 * MIN)), 60 * MIN)), 120 * MIN,
            5 * MIN))),
    ("foo offset 5m[10m:]", SubqueryExpr(vs("foo", offset_ms=5 * MIN), 10 * MIN)),
    ("(foo + bar)[5m:]", SubqueryExpr(ParenExpr(bin_("+", vs("foo"), vs("bar"))), 5 * MIN)),
    # calls
    ("time()", call("time")),
    ("round(x)", call("round", vs("x"))),
    ("round(x, 5)", call("round", vs("x"), num(5))),
    ('label_join(x, "d", ",", "a", "b", "c")', call(
        "label_join", vs("x"), StringLiteral("d"), StringLiteral(","), StringLiteral("a"),
        StringLiteral("b"), StringLiteral("c"))),
    ("histogram_quantile(0.9, x)", call("histogram_quantile", num(0.9), vs("x"))),
    ("holt_winters(x[5m], 0.5, 0.5)", call(
        "holt_winters", MatrixSelector(vs("x"), 5 * MIN), num(0.5), num(0.5))),
    ("day_of_week()", call("day_of_week")),
    # aggregations
    ("sum(x)", AggregateExpr(AggOp.SUM, vs("x"))),
    ("sum by (a, b) (x)", AggregateExpr(AggOp.SUM, vs("x"), None, ("a", "b"))),
    ("sum(x) by (a, b,)", AggregateExpr(AggOp.SUM, vs("x"), None, ("a", "b"))),
    ("SUM(x) WITHOUT (a)", AggregateExpr(AggOp.SUM, vs("x"), None, ("a",), True)),
    ("sum without () (x)", AggregateExpr(AggOp.SUM, vs("x"), None, (), True)),
    ("sum by () (x)", AggregateExpr(AggOp.SUM, vs("x"))),
    ("topk(5, x)", AggregateExpr(AggOp.TOPK, vs("x"), num(5))),
    ("bottomk by (a) (5, x)", AggregateExpr(AggOp.BOTTOMK, vs("x"), num(5), ("a",))),
    ("quantile(0.5, x)", AggregateExpr(AggOp.QUANTILE, vs("x"), num(0.5))),
    ('count_values("v", x) by (a)', AggregateExpr(
        AggOp.COUNT_VALUES, vs("x"), StringLiteral("v"), ("a",))),
    ("group(x)", AggregateExpr(AggOp.GROUP, vs("x"))),
    ("stddev(x) + stdvar(x)", bin_(
        "+", AggregateExpr(AggOp.STDDEV, vs("x")), AggregateExpr(AggOp.STDVAR, vs("x")))),
    # binary operators and modifiers
    ("a + b", bin_("+", vs("a"), vs("b"))),
    ("1 + 2", bin_("+", num(1), num(2))),
    ("a * 2", bin_("*", vs("a"), num(2))),
    ("a == bool 1", bin_("==", vs("a"), num(1), return_bool=True)),
    ("1 < bool 2", bin_("<", num(1), num(2), return_bool=True)),
    ("a atan2 b", bin_("atan2", vs("a"), vs("b"))),
    ("a and b", bin_("and", vs("a"), vs("b"))),
    ("a AND on (x) b", bin_("and", vs("a"), vs("b"),
                            matching=vm(Cardinality.MANY_TO_MANY, True, ("x",)))),
    ("a unless ignoring (x) b", bin_("unless", vs("a"), vs("b"),
                                     matching=vm(Cardinality.MANY_TO_MANY, False, ("x",)))),
    ("a + on(x, y) b", bin_("+", vs("a"), vs("b"), matching=vm(on=True, labels=("x", "y")))),
    ("a + on() b", bin_("+", vs("a"), vs("b"), matching=vm(on=True))),
    ("a / ignoring(x) group_left b", bin_(
        "/", vs("a"), vs("b"), matching=vm(Cardinality.MANY_TO_ONE, False, ("x",)))),
    ("a / on(x) group_right(y, z) b", bin_(
        "/", vs("a"), vs("b"),
        matching=vm(Cardinality.ONE_TO_MANY, True, ("x",), ("y", "z")))),
    ("a > bool on(x) group_left() b", bin_(
        ">", vs("a"), vs("b"), return_bool=True,
        matching=vm(Cardinality.MANY_TO_ONE, True, ("x",)))),
    ("a * on(x) group_left (y) (b)", bin_(
        "*", vs("a"), ParenExpr(vs("b")),
        matching=vm(Cardinality.MANY_TO_ONE, True, ("x",), ("y",)))),
    ("1 + on() 2", bin_("+", num(1), num(2))),
    # unary
    ("-a", UnaryExpr("-", vs("a"))),
    ("+a", UnaryExpr("+", vs("a"))),
    ("-(1)", UnaryExpr("-", ParenExpr(num(1)))),
    ("- -a", UnaryExpr("-", UnaryExpr("-", vs("a")))),
    # comments and whitespace
    ("foo # a comment", vs("foo")),
    ("# c\n  sum(\n\tx # inner\n)", AggregateExpr(AggOp.SUM, vs("x"))),
]


@pytest.mark.parametrize(("text", "want"), VALID, ids=[t for t, _ in VALID])
def test_valid_expressions(text: str, want: Expr) -> None:
    assert parse(text) == want


PRECEDENCE: list[tuple[str, Expr]] = [
    ("1 + 2 * 3", bin_("+", num(1), bin_("*", num(2), num(3)))),
    ("1 * 2 + 3", bin_("+", bin_("*", num(1), num(2)), num(3))),
    ("1 - 2 - 3", bin_("-", bin_("-", num(1), num(2)), num(3))),
    ("2 ^ 3 ^ 2", bin_("^", num(2), bin_("^", num(3), num(2)))),
    ("-2 ^ 2", UnaryExpr("-", bin_("^", num(2), num(2)))),
    ("2 ^ -1", bin_("^", num(2), num(-1))),
    ("2 ^ -1 ^ 2", bin_("^", num(2), UnaryExpr("-", bin_("^", num(1), num(2))))),
    ("-a * b", bin_("*", UnaryExpr("-", vs("a")), vs("b"))),
    ("a * -b ^ c", bin_("*", vs("a"), UnaryExpr("-", bin_("^", vs("b"), vs("c"))))),
    ("1 + -2 * 3", bin_("+", num(1), bin_("*", num(-2), num(3)))),
    ("a % b atan2 c / d", bin_("/", bin_("atan2", bin_("%", vs("a"), vs("b")), vs("c")),
                               vs("d"))),
    ("a + b > c - d", bin_(">", bin_("+", vs("a"), vs("b")), bin_("-", vs("c"), vs("d")))),
    ("a > b == c", bin_("==", bin_(">", vs("a"), vs("b")), vs("c"))),
    ("a or b and c", bin_("or", vs("a"), bin_("and", vs("b"), vs("c")))),
    ("a and b or c", bin_("or", bin_("and", vs("a"), vs("b")), vs("c"))),
    ("a and b unless c", bin_("unless", bin_("and", vs("a"), vs("b")), vs("c"))),
    ("a unless b == c", bin_("unless", vs("a"), bin_("==", vs("b"), vs("c")))),
    ("a or b or c", bin_("or", bin_("or", vs("a"), vs("b")), vs("c"))),
    ("-a offset 5m", UnaryExpr("-", vs("a", offset_ms=5 * MIN))),
    ("a + b offset 5m", bin_("+", vs("a"), vs("b", offset_ms=5 * MIN))),
    ("a ^ b[5m:]", BinaryExpr(BinOp.POW, vs("a"), SubqueryExpr(vs("b"), 5 * MIN))),
    ("(1 + 2) * 3", bin_("*", ParenExpr(bin_("+", num(1), num(2))), num(3))),
]


@pytest.mark.parametrize(("text", "want"), PRECEDENCE, ids=[t for t, _ in PRECEDENCE])
def test_precedence_and_associativity(text: str, want: Expr) -> None:
    # "a ^ b[5m:]" is a type error, but its shape is still decided by the grammar.
    if text == "a ^ b[5m:]":
        with pytest.raises(ParseError, match="binary expression must contain only"):
            parse(text)
        return
    assert parse(text) == want


INVALID: list[tuple[str, str]] = [
    # (query, "line:col: parse error: message") — texts from Prometheus 2.42 (promtool).
    ("", "1:1: parse error: no expression found in input"),
    ("# only a comment", "1:1: parse error: no expression found in input"),
    ("1 + 5m", '1:5: parse error: unexpected duration "5m"'),
    ("1.5h", '1:1: parse error: unexpected duration "1.5h"'),
    ("1e", '1:1: parse error: error parsing number: strconv.ParseFloat: parsing "1e": '
           "invalid syntax"),
    ("0x", '1:1: parse error: error parsing number: strconv.ParseFloat: parsing "0x": '
           "invalid syntax"),
    ("foo @ start", "1:12: parse error: unexpected end of input"),
    ("é", "1:1: parse error: unexpected character: 'é'"),
    ("foo $", "1:5: parse error: unexpected character: '$'"),
    ("foo[5M]", '1:5: parse error: bad duration syntax: "5"'),
    ("foo[ ]", "1:6: parse error: missing unit character in duration"),
    ("x[[5m]]", "1:3: parse error: missing unit character in duration"),
    ("{ 1 }", "1:3: parse error: unexpected character inside braces: '1'"),
    ("{a=\"b\" # comment\n, offset offset}", '2:10: parse error: unexpected identifier "offset"'),
    ("foo{a=\"b\" @ 1}", "1:11: parse error: unexpected character inside braces: '@'"),
    ("@ 100", '1:1: parse error: unexpected "<Item 57385>" <op:@>'),
    ("foo :", '1:5: parse error: unexpected metric identifier ":"'),
    ("=~ 'b'", "1:1: parse error: unexpected character after '=': '~'"),
    ("histogram_quantile end()", '1:20: parse error: unexpected "end"'),
    ("group_left time() + x", "1:1: parse error: unexpected <group_left>"),
    ("(on", "1:2: parse error: unexpected <on>"),
    ("(foo", "1:5: parse error: unclosed left parenthesis"),
    ("sum by (a", "1:10: parse error: unclosed left parenthesis"),
    ("foo)", "1:5: parse error: unexpected right parenthesis ')'"),
    ("sum(foo))", "1:10: parse error: unexpected right parenthesis ')'"),
    ("foo{", "1:5: parse error: unexpected end of input inside braces"),
    ('foo{a="b"', "1:10: parse error: unexpected end of input inside braces"),
    ("{{", "1:2: parse error: unexpected left brace '{'"),
    ("foo}", "1:4: parse error: unexpected character: '}'"),
    ("foo[5m", "1:7: parse error: unclosed left bracket"),
    ("x[5m]]", "1:6: parse error: unexpected right bracket ']'"),
    ("rate(x[5m)", '1:10: parse error: unexpected ")"'),
    ("1 +", "1:4: parse error: unexpected end of input"),
    ('foo{a="b" c="d"}', '1:11: parse error: unexpected identifier "c"'),
    ("foo{a=b}", '1:7: parse error: unexpected identifier "b"'),
    ("foo offset +5m", "1:12: parse error: unexpected <op:+>"),
    ("bool", "1:1: parse error: unexpected <bool>"),
    ("on", "1:1: parse error: unexpected <on>"),
    ("group_left(x)", "1:1: parse error: unexpected <group_left>"),
    ("atan2", "1:1: parse error: unexpected <op:atan2>"),
    ("foo bool", "1:5: parse error: unexpected <bool>"),
    ("sum(x) by (a) (y)", '1:15: parse error: unexpected "("'),
    ("foo:bar(x)", '1:8: parse error: unexpected "("'),
    ("foo{a:b=\"c\"}", "1:6: parse error: unexpected character inside braces: ':'"),
    ("sum by (without) (x)", "1:9: parse error: unexpected <without>"),
    ("sum by (inf) (x)",
     '1:9: parse error: unexpected number "inf" in grouping opts, expected label'),
    ("rate(x[5m],)", "1:11: parse error: trailing commas not allowed in function call args"),
    ('foo{a="\\q"}', "1:7: parse error: unknown escape sequence U+0071 'q'"),
    ('"\\ud800"', "1:1: parse error: escape sequence is an invalid Unicode code point"),
    ('"\\xZ1"', "1:1: parse error: illegal character U+005A 'Z' in escape sequence"),
    ('"abc', "1:1: parse error: unterminated quoted string"),
    ("foo offset 0s", "1:12: parse error: duration must be greater than 0"),
    ("foo[0s]", "1:5: parse error: duration must be greater than 0"),
    ("foo[5m:0s]", "1:8: parse error: duration must be greater than 0"),
    ("foo[1m1h]", '1:5: parse error: not a valid duration string: "1m1h"'),
    ("foo[1.5h]", '1:5: parse error: not a valid duration string: "1.5h"'),
    ("x offset 293y", "1:10: parse error: duration out of range"),
    ("foo offset 1m offset 2m", "1:1: parse error: offset may not be set multiple times"),
    ("foo[5m] offset 1m offset 1m", "1:1: parse error: offset may not be set multiple times"),
    ("x @ start() @ end()", "1:1: parse error: @ <timestamp> may not be set multiple times"),
    ("foo @ Inf", "1:1: parse error: timestamp out of bounds for @ modifier: +Inf"),
    ("(foo) offset 5m", "1:1: parse error: offset modifier must be preceded by an instant "
                        "vector selector or range vector selector or a subquery"),
    ("sum(foo) @ 5", "1:1: parse error: @ modifier must be preceded by an instant vector "
                     "selector or range vector selector or a subquery"),
    ("x[5m][10m]", "1:6: parse error: ranges only allowed for vector selectors"),
    ("(foo)[5m]", "1:6: parse error: ranges only allowed for vector selectors"),
    ("foo offset 5m [5m]", "1:15: parse error: no offset modifiers allowed before range"),
    ("foo @ 5 [5m]", "1:9: parse error: no @ modifiers allowed before range"),
    ("x[5m][10m:]", "1:1: parse error: subquery is only allowed on instant vector, got matrix "
                    "instead"),
    ("mad_over_time(x[5m])", '1:1: parse error: unknown function with name "mad_over_time"'),
    ("foo(x)", '1:1: parse error: unknown function with name "foo"'),
    ("rate(foo)", '1:6: parse error: expected type range vector in call to function "rate", '
                  "got instant vector"),
    ("abs(x[5m])", '1:5: parse error: expected type instant vector in call to function "abs", '
                   "got range vector"),
    ('label_join(x, "a", ",", 1)', '1:25: parse error: expected type string in call to '
                                   'function "label_join", got scalar'),
    ("time(1)", '1:1: parse error: expected 0 argument(s) in call to "time", got 1'),
    ("round(x, 1, 2)", '1:1: parse error: expected at most 2 argument(s) in call to "round", '
                       "got 3"),
    ("label_join(x)", '1:1: parse error: expected at least 3 argument(s) in call to '
                      '"label_join", got 1'),
    ("{}", "1:1: parse error: vector selector must contain at least one non-empty matcher"),
    ('{a=""}', "1:1: parse error: vector selector must contain at least one non-empty matcher"),
    ('{a=~".*"}', "1:1: parse error: vector selector must contain at least one non-empty "
                  "matcher"),
    ('x{__name__="y"}', '1:1: parse error: metric name must not be set twice: "x" or "y"'),
    ("sum()", "1:1: parse error: no arguments for aggregate expression provided"),
    ("topk(foo)", "1:1: parse error: wrong number of arguments for aggregate expression "
                  "provided, expected 2, got 1"),
    ("sum(1, x)", "1:1: parse error: wrong number of arguments for aggregate expression "
                  "provided, expected 1, got 2"),
    ("count_values(foo, bar)", "1:14: parse error: expected type string in aggregation "
                               "parameter, got instant vector"),
    ('topk("a", foo)', "1:6: parse error: expected type scalar in aggregation parameter, "
                       "got string"),
    ("sum(x[5m])", "1:5: parse error: expected type instant vector in aggregation expression, "
                   "got range vector"),
    ("1 < 2", "1:3: parse error: comparisons between scalars must use BOOL modifier"),
    ("foo + bool bar", "1:5: parse error: bool modifier can only be used on comparison "
                       "operators"),
    ('"a" + 1', "1:1: parse error: binary expression must contain only scalar and instant "
                "vector types"),
    ("1 + foo[5m]", "1:5: parse error: binary expression must contain only scalar and "
                    "instant vector types"),
    ("foo and 1", '1:1: parse error: set operator "and" not allowed in binary scalar '
                  "expression"),
    ("foo and on(a) group_left(b) bar", '1:1: parse error: no grouping allowed for "and" '
                                        "operation"),
    ("1 + on(a) 2", "1:1: parse error: vector matching only allowed between instant vectors"),
    ("a + on(x) group_left(x) b", '1:3: parse error: label "x" must not occur in ON and '
                                  "GROUP clause at once"),
    ('-"a"', '1:1: parse error: unary expression only allowed on expressions of type scalar '
             'or instant vector, got "string"'),
    ("-x[5m]", '1:1: parse error: unary expression only allowed on expressions of type scalar '
               'or instant vector, got "range vector"'),
    ("foo{a=~\"((\"}", "1:5: parse error: error parsing regexp: missing closing ): `^(?:(()$`"),
    # positions on later lines count from the line start
    ("sum(\n  rate(foo)\n)", '2:8: parse error: expected type range vector in call to '
                             'function "rate", got instant vector'),
    ('"é" + rate(foo)', '1:13: parse error: expected type range vector in call to function '
                      '"rate", got instant vector'),
]


@pytest.mark.parametrize(("text", "message"), INVALID, ids=[t for t, _ in INVALID])
def test_invalid_expressions(text: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text)
    assert str(info.value).startswith(message)


def test_parse_error_carries_position() -> None:
    with pytest.raises(ParseError) as info:
        parse("sum(rate(foo))")
    err = info.value
    assert (err.line, err.col) == (1, 10)
    assert err.pos == (9, 12)
    assert err.message.startswith("expected type range vector")
    assert isinstance(err, ValueError)


def test_node_positions() -> None:
    expr = parse("sum by (a) (rate(foo[5m] offset 1m)) + on(a) 2 * bar")
    assert isinstance(expr, BinaryExpr)
    assert expr.pos == (0, 52)
    agg = expr.lhs
    assert agg.pos == (0, 36)
    call_ = agg.children()[0]
    assert call_.pos == (12, 35)
    matrix = call_.children()[0]
    assert isinstance(matrix, MatrixSelector)
    assert matrix.pos == (17, 34)
    assert matrix.vector.pos == (17, 20)
    mul = expr.rhs
    assert isinstance(mul, BinaryExpr) and mul.pos == (45, 52)


def test_types() -> None:
    cases = {
        "1": ValueType.SCALAR,
        '"s"': ValueType.STRING,
        "foo": ValueType.VECTOR,
        "foo[5m]": ValueType.MATRIX,
        "foo[5m:]": ValueType.MATRIX,
        "scalar(foo)": ValueType.SCALAR,
        "1 + 2": ValueType.SCALAR,
        "foo + 2": ValueType.VECTOR,
        "-(1)": ValueType.SCALAR,
        "time()": ValueType.SCALAR,
        "sum(foo)": ValueType.VECTOR,
    }
    for text, want in cases.items():
        assert parse(text).type is want, text


def test_walk_visits_every_node_in_order() -> None:
    kinds = [type(n).__name__ for n in walk(parse("sum(rate(x[5m])) / 2"))]
    assert kinds == ["BinaryExpr", "AggregateExpr", "Call", "MatrixSelector",
                     "VectorSelector", "NumberLiteral"]


def test_equality_ignores_positions_but_not_nan_or_sign() -> None:
    assert parse("foo  +  1") == parse("foo+1")
    assert parse("NaN") == parse("nan")
    assert parse("0") != parse("-0")


@pytest.mark.parametrize(("text", "ms"), [
    ("1ms", 1), ("5m", 300_000), ("1h30m", 5_400_000), ("2w", 1_209_600_000),
    ("1y2w3d4h5m6s7ms", 31_536_000_000 + 1_209_600_000 + 3 * 86_400_000 + 4 * 3_600_000
     + 5 * 60_000 + 6_000 + 7), ("0", 0),
])
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize(("ms", "text"), [
    (0, "0s"), (1, "1ms"), (90 * MIN, "1h30m"), (90 * 86_400_000, "90d"),
    (14 * 86_400_000, "2w"), (365 * 86_400_000, "1y"), (366 * 86_400_000, "366d"),
    (61_001, "1m1s1ms"),
])
def test_format_duration(ms: int, text: str) -> None:
    assert format_duration(ms) == text
    assert parse_duration(text) == ms


def test_function_table_is_consistent() -> None:
    for name, fn in FUNCTIONS.items():
        assert fn.name == name
        assert fn.return_type in (ValueType.SCALAR, ValueType.VECTOR)
        assert fn.variadic >= -1
    assert FUNCTIONS["label_join"].max_args is None
    assert (FUNCTIONS["round"].min_args, FUNCTIONS["round"].max_args) == (1, 2)
    assert FUNCTIONS["time"].max_args == 0
    for name in ("holt_winters", "label_replace", "histogram_quantile", "absent_over_time",
                 "present_over_time", "quantile_over_time", "sort_desc", "timestamp",
                 "vector", "scalar", "day_of_year", "days_in_month", "sgn", "clamp"):
        assert name in FUNCTIONS


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_parses_with_a_well_typed_call(name: str) -> None:
    fn = FUNCTIONS[name]
    sample = {ValueType.SCALAR: "1", ValueType.VECTOR: "foo", ValueType.MATRIX: "foo[5m]",
              ValueType.STRING: '"s"'}
    args = ", ".join(sample[t] for t in fn.arg_types[: fn.min_args])
    expr = parse(f"{name}({args})")
    assert isinstance(expr, Call) and expr.function is fn


# ---------------------------------------------------------------- fuzzing

_ALPHABET = st.sampled_from(list(
    "abcxyz_:019.eExX +-*/%^=!~<>(){}[],@\"'`\\#\n\té"
) + ["sum", "by", "on", "offset", "bool", "group_left", "inf", "5m", "rate", "[5m:]",
     "topk", "count_values", "start()", "@ ", "or", "and", "unless", "ignoring", "without",
     '"a"', "foo", "{a=\"b\"}", "1h30m", "0x1f", "NaN"])


@given(st.lists(_ALPHABET, max_size=24).map("".join))
def test_fuzz_tokens_yield_ast_or_parse_error(text: str) -> None:
    try:
        expr = parse(text)
    except ParseError as err:
        assert err.line >= 1 and err.col >= 1
        return
    assert isinstance(expr, Expr)


@given(st.text(max_size=40))
def test_fuzz_any_text_yields_ast_or_parse_error(text: str) -> None:
    try:
        parse(text)
    except ParseError:
        pass


def test_deep_nesting_is_a_parse_error_or_ast() -> None:
    depth = 5000
    try:
        parse("(" * depth + "1" + ")" * depth)
    except ParseError as err:
        assert "nested too deeply" in err.message


def test_parsed_expressions_are_kept_and_errors_are_raised_every_time() -> None:
    text = 'sum by (job) (rate(http_requests_total{code=~"5.."}[5m]))'
    first = parse(text)
    assert parse(text) is first  # kept: the AST is immutable
    assert parse(text + " ") == first and parse(text + " ") is not first  # another text
    for _ in range(2):
        with pytest.raises(ParseError):
            parse("sum(")

"""PromQL text → typed AST (`vigilops.query.ast`), with Prometheus 2.42's errors.

`parse` runs three steps, like Prometheus's parser:

1. Lark (LALR, contextual lexer) builds a parse tree from ``grammar/promql.lark``; a syntax
   error becomes ``unexpected <token>``.
2. `_Builder`, a Lark `Transformer`, turns the tree into AST nodes bottom-up and applies the
   checks Prometheus makes in its grammar actions (durations, numbers, string escapes,
   unknown functions, offset/``@`` placement, aggregation argument counts).
3. Only if that succeeded, `_check` walks the AST as Prometheus's ``checkAST`` does and
   rejects type errors (``rate`` of an instant vector, a range vector in arithmetic, …).

The first error wins. Every error is a `ParseError` whose text is Prometheus's:
``<line>:<col>: parse error: <message>``, the column counted in UTF-8 bytes from 1.
Regular expressions in label matchers are checked with Go's rules and words
(`vigilops.query.goregexp`).

`parse_metric_selector` is Prometheus's ``ParseMetricSelector`` (the ``match[]`` of the API):
the same grammar from its ``vector_selector`` rule, steps 1 and 2 only.
"""

from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

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
    Pos,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    VectorMatching,
    VectorSelector,
)
from vigilops.query.functions import FUNCTIONS, ValueType
from vigilops.query.gomath import go_percent_f
from vigilops.query.goregexp import regexp_error
from vigilops.tsdb.model import METRIC_NAME, Matcher, MatchType, go_quote

__all__ = [
    "ParseError",
    "format_duration",
    "parse",
    "parse_duration",
    "parse_metric_selector",
    "parse_number",
    "unquote",
]


class ParseError(ValueError):
    """A syntax or type error, positioned like Prometheus's ``ParseErr``.

    `pos` is the ``(start, end)`` character range the error is about; `line` and `col` are
    1-based, `col` counting UTF-8 bytes from the start of the line as Prometheus does.
    `message` is the bare reason; ``str(error)`` is ``"line:col: parse error: message"``.
    """

    def __init__(self, message: str, pos: Pos, query: str) -> None:
        self.message = message
        self.pos = pos
        self.query = query
        start = max(0, min(pos[0], len(query)))
        head = query[:start]
        self.line = head.count("\n") + 1
        self.col = len(head[head.rfind("\n") + 1 :].encode("utf-8", "surrogatepass")) + 1
        super().__init__(f"{self.line}:{self.col}: parse error: {message}")


class _Err(Exception):
    """Raised inside the builder and checker; `parse` turns it into a `ParseError`."""

    def __init__(self, message: str, pos: Pos) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def _fail(message: str, pos: Pos) -> NoReturn:
    raise _Err(message, pos)


# ---------------------------------------------------------------- the Lark parser, loaded once


def _cache_path() -> str | bool:
    """Where Lark keeps the analysed grammar: a per-user cache dir, never a shared /tmp."""
    override = os.environ.get("VIGILOPS_LARK_CACHE")
    if override is not None:
        return override if override not in ("", "0") else False
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    folder = os.path.join(base, "vigilops")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return False
    if not os.access(folder, os.W_OK):
        return False
    # Lark checks the grammar's hash stored inside the file, so a stale cache is ignored.
    import lark

    return os.path.join(folder, f"promql-lark-{lark.__version__}.cache")


@functools.cache
def _lark() -> Lark:
    return Lark.open_from_package(
        "vigilops.query",
        "promql.lark",
        ("grammar",),
        parser="lalr",
        lexer="contextual",
        start=["start", "vector_selector"],
        propagate_positions=True,
        maybe_placeholders=False,
        cache=_cache_path(),
    )


# ---------------------------------------------------------------- literals


_DURATION_RE = re.compile(
    r"(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?"
    r"(?:([0-9]+)ms)?"
)
_DURATION_UNITS_MS = (
    31_536_000_000,  # y (365 d)
    604_800_000,  # w
    86_400_000,  # d
    3_600_000,  # h
    60_000,  # m
    1_000,  # s
    1,  # ms
)
_MAX_INT64 = 2**63 - 1


def parse_duration(text: str) -> int:
    """Parse a Prometheus duration (``1h30m``, ``5ms``, ``2w``) into milliseconds.

    Mirrors ``model.ParseDuration``: units in descending order, each at most once, "0"
    allowed; raises ValueError with its messages, including "duration out of range" past
    Go's ``time.Duration`` (about 292 years).
    """
    if text == "0":
        return 0
    if text == "":
        raise ValueError("empty duration string")
    m = _DURATION_RE.fullmatch(text)
    if m is None:
        raise ValueError(f"not a valid duration string: {go_quote(text)}")
    total = 0
    for group, mult in zip(m.groups(), _DURATION_UNITS_MS, strict=True):
        if group is None:
            continue
        n = int(group)
        if n > _MAX_INT64 // mult // 1_000_000:
            raise ValueError("duration out of range")
        total += n * mult
    if total * 1_000_000 > _MAX_INT64:
        raise ValueError("duration out of range")
    return total


def format_duration(ms: int) -> str:
    """Format milliseconds as Prometheus's ``model.Duration.String`` does (``1h30m``, ``90d``)."""
    if ms == 0:
        return "0s"
    out = []
    for unit, mult, exact in (
        ("y", 31_536_000_000, True),
        ("w", 604_800_000, True),
        ("d", 86_400_000, False),
        ("h", 3_600_000, False),
        ("m", 60_000, False),
        ("s", 1_000, False),
        ("ms", 1, False),
    ):
        if exact and ms % mult != 0:
            continue
        v = ms // mult
        if v > 0:
            out.append(f"{v}{unit}")
            ms -= v * mult
    return "".join(out)


def _duration(tok: Token) -> int:
    try:
        ms = parse_duration(tok.value)
    except ValueError as exc:
        _fail(str(exc), _tpos(tok))
    if ms == 0:
        _fail("duration must be greater than 0", _tpos(tok))
    return ms


_OCTAL_RE = re.compile(r"0[0-7]+")


def parse_number(text: str) -> float:
    """Parse a PromQL number as Prometheus does: ``ParseInt(s, 0, 64)``, else ``ParseFloat``.

    So ``0x1f`` is hexadecimal and ``010`` is octal (8), while ``1e3``, ``.5`` and ``Inf``
    are floats. Raises ValueError with Go's ``strconv`` message.
    """
    low = text.lower()
    try:
        if low.startswith("0x"):
            n = int(low[2:], 16)
        elif _OCTAL_RE.fullmatch(low):
            n = int(low, 8)
        else:
            n = int(low, 10)
        if n <= _MAX_INT64:
            return float(n)
    except ValueError:
        pass
    if low.startswith("0x") or low.endswith(("e", "e+", "e-")):
        raise ValueError(f"strconv.ParseFloat: parsing {go_quote(text)}: invalid syntax")
    try:
        value = float(low)
    except ValueError:
        raise ValueError(
            f"strconv.ParseFloat: parsing {go_quote(text)}: invalid syntax"
        ) from None
    if math.isinf(value) and "inf" not in low:
        raise ValueError(f"strconv.ParseFloat: parsing {go_quote(text)}: value out of range")
    return value


_SIMPLE_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
}


def _go_rune_desc(ch: str) -> str:
    """Go's ``%#U``: ``U+0071 'q'``."""
    cp = ord(ch)
    return f"U+{cp:04X} '{ch}'" if ch.isprintable() else f"U+{cp:04X}"


def unquote(raw: str) -> str:
    """Decode a PromQL string literal (double, single or back quotes; Go escapes).

    Raises ValueError with the message Prometheus's lexer gives for a bad escape. Bytes
    that are not UTF-8 (from ``\\x`` or octal escapes) become U+FFFD.
    """
    body = raw[1:-1]
    if raw[0] == "`" or "\\" not in body:
        return body
    return _unescape(raw).decode("utf-8", "replace")


def _unescape(raw: str) -> bytes:
    """The bytes a quoted (not back-quoted) PromQL string literal stands for."""
    quote, body = raw[0], raw[1:-1]
    out = bytearray()
    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch != "\\":
            out += ch.encode("utf-8", "surrogatepass")
            i += 1
            continue
        i += 1
        if i >= n:
            raise ValueError("escape sequence not terminated")
        esc = body[i]
        i += 1
        if esc in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[esc].encode()
            continue
        if esc == quote:
            out += esc.encode()
            continue
        if esc in "01234567":
            digits, base, limit, start = 3, 8, 255, i - 1
        elif esc == "x":
            digits, base, limit, start = 2, 16, 255, i
        elif esc == "u":
            digits, base, limit, start = 4, 16, 0x10FFFF, i
        elif esc == "U":
            digits, base, limit, start = 8, 16, 0x10FFFF, i
        else:
            raise ValueError(f"unknown escape sequence {_go_rune_desc(esc)}")
        chunk = body[start : start + digits]
        value = 0
        for j in range(digits):
            if j >= len(chunk):
                raise ValueError("escape sequence not terminated")
            try:
                d = int(chunk[j], 16)
            except ValueError:
                d = 99
            if d >= base:
                raise ValueError(f"illegal character {_go_rune_desc(chunk[j])} in escape sequence")
            value = value * base + d
        i = start + digits
        if value > limit or 0xD800 <= value < 0xE000:
            raise ValueError("escape sequence is an invalid Unicode code point")
        if esc == "x" or esc in "01234567":
            out.append(value)  # a raw byte, as in Go
        else:
            out += chr(value).encode("utf-8")
    return bytes(out)


def _go_round(x: float) -> int:
    """Go's ``math.Round``: halves away from zero."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


# ---------------------------------------------------------------- tokens in error messages

_KEYWORDS = frozenset(
    {"BOOL", "BY", "WITHOUT", "ON", "IGNORING", "GROUP_LEFT", "GROUP_RIGHT", "OFFSET",
     "START", "END"}
)
_OPERATORS = frozenset(
    {"ADD", "SUB", "MUL", "DIV", "MOD", "POW", "EQLC", "NEQ", "GTR", "LSS", "GTE", "LTE",
     "EQL_REGEX", "NEQ_REGEX", "AND", "OR", "UNLESS", "ATAN2", "AT"}
)
_AGGREGATORS = frozenset(op.name for op in AggOp)


def _describe(tok: Token) -> str:
    """How Prometheus's ``Item.desc()`` names a token in "unexpected …" messages."""
    kind, val = tok.type, str(tok.value)
    if kind == "$END":
        return "end of input"
    if kind in ("NAME", "LABEL_NAME"):
        what = "metric identifier" if ":" in val else "identifier"
        return f"{what} {go_quote(val)}"
    if kind in ("START", "END"):
        return go_quote(val)
    if kind in _KEYWORDS:
        return f"<{val}>"
    if kind == "AT":
        # Prometheus 2.42 has no description for "@" and prints its item number.
        return '"<Item 57385>" <op:@>'
    if kind in _OPERATORS:
        return f"<op:{val}>"
    if kind in _AGGREGATORS:
        return f"<aggr:{val}>"
    if kind in ("NUMBER", "STRING", "DURATION"):
        shown = go_quote(val) if len(val) <= 10 else go_quote(val[:10])[:-1] + '"...'
        return f"{kind.lower()} {shown}"
    return go_quote(val)


def _tpos(tok: Token) -> Pos:
    start = tok.start_pos if tok.start_pos is not None else 0
    end = tok.end_pos if tok.end_pos is not None else start
    return (start, end)


def _mpos(meta: Any) -> Pos:
    if getattr(meta, "empty", True):
        return (0, 0)
    return (meta.start_pos, meta.end_pos)


# ---------------------------------------------------------------- tree → AST


@dataclass(slots=True)
class _Modifier:
    """The parsed ``bool on(…) group_left(…)`` part of a binary expression."""

    return_bool: bool = False
    on: bool = False
    labels: tuple[str, ...] = ()
    card: Cardinality = Cardinality.ONE_TO_ONE
    include: tuple[str, ...] = ()


@dataclass(slots=True)
class _BinInfo:
    """Facts `_check` needs about a BinaryExpr that the AST does not keep."""

    op_pos: Pos
    modifier: _Modifier


@dataclass(slots=True)
class _Body:
    args: list[Expr]
    pos: Pos


class _TrailingComma:
    __slots__ = ("pos",)

    def __init__(self, pos: Pos) -> None:
        self.pos = pos


@v_args(meta=True)
class _Builder(Transformer[Token, Expr]):
    """Builds AST nodes; raises `_Err` for errors Prometheus reports from grammar actions."""

    def __init__(self) -> None:
        super().__init__()
        self.bin_info: dict[int, _BinInfo] = {}

    # -- literals and selectors

    def start(self, meta: Any, children: list[Expr]) -> Expr:
        return children[0]

    def number_literal(self, meta: Any, children: list[Token]) -> Expr:
        tok = children[0]
        try:
            value = parse_number(tok.value)
        except ValueError as exc:
            _fail(f"error parsing number: {exc}", _tpos(tok))
        return NumberLiteral(value, pos=_tpos(tok))

    def string_literal(self, meta: Any, children: list[Token]) -> Expr:
        tok = children[0]
        return StringLiteral(_unquote_tok(tok), pos=_tpos(tok))

    def metric_identifier(self, meta: Any, children: list[Token]) -> Token:
        _reject_keyword(children[0])
        return children[0]

    def label_matcher(self, meta: Any, children: list[Token]) -> Matcher:
        name, op, value = children
        colon = name.value.find(":")
        if colon >= 0:
            at = _tpos(name)[0] + colon
            _fail("unexpected character inside braces: ':'", (at, at + 1))
        text = _unquote_tok(value)
        match_type = MatchType(op.value)
        pos = (_tpos(name)[0], _tpos(value)[1])
        if match_type in (MatchType.REGEX, MatchType.NOT_REGEX):
            go_error = regexp_error(_regexp_source(value.value))
            if go_error is not None:
                _fail(go_error, pos)
        try:
            return Matcher(match_type, name.value, text)
        except ValueError as exc:  # valid RE2 that VigilOps's translation cannot express
            _fail(f"error parsing regexp: {exc}", pos)

    def label_match_list(self, meta: Any, children: list[Matcher]) -> list[Matcher]:
        return list(children)

    def label_matchers(self, meta: Any, children: list[Any]) -> list[Matcher]:
        return list(children[1]) if len(children) == 3 else []

    def vector_selector(self, meta: Any, children: list[Any]) -> Expr:
        name = ""
        matchers: list[Matcher] = []
        for child in children:
            if isinstance(child, Token):
                name = child.value
            else:
                matchers = child
        if name:
            matchers = [*matchers, Matcher(MatchType.EQUAL, METRIC_NAME, name)]
        return VectorSelector(name, tuple(matchers), pos=_mpos(meta))

    def matrix_selector(self, meta: Any, children: list[Any]) -> Expr:
        expr, lb, dur, rb = children
        range_ms = _duration(dur)
        err = ""
        if not isinstance(expr, VectorSelector):
            err = "ranges only allowed for vector selectors"
        elif expr.offset_ms != 0:
            err = "no offset modifiers allowed before range"
        elif expr.at is not None:
            err = "no @ modifiers allowed before range"
        if err:
            _fail(err, (_tpos(lb)[0], _tpos(rb)[1]))
        assert isinstance(expr, VectorSelector)
        return MatrixSelector(expr, range_ms, pos=_mpos(meta))

    def subquery(self, meta: Any, children: list[Any]) -> Expr:
        expr, _lb, rng = children[0], children[1], children[2]
        range_ms = _duration(rng)
        step: int | None = None
        if len(children) == 6:
            step = _duration(children[4])
        return SubqueryExpr(expr, range_ms, step, pos=_mpos(meta))

    def offset(self, meta: Any, children: list[Any]) -> Expr:
        expr: Expr = children[0]
        ms = _duration(children[-1])
        if len(children) == 4:
            ms = -ms
        pos = (expr.pos[0], _mpos(meta)[1])
        where = "offset modifier must be preceded by an instant vector selector or range " \
                "vector selector or a subquery"
        if isinstance(expr, VectorSelector):
            if expr.offset_ms != 0:
                _fail("offset may not be set multiple times", expr.pos)
            return VectorSelector(expr.name, expr.matchers, ms, expr.at, pos=pos)
        if isinstance(expr, MatrixSelector):
            vs = expr.vector
            if vs.offset_ms != 0:
                _fail("offset may not be set multiple times", expr.pos)
            inner = VectorSelector(vs.name, vs.matchers, ms, vs.at, pos=vs.pos)
            return MatrixSelector(inner, expr.range_ms, pos=pos)
        if isinstance(expr, SubqueryExpr):
            if expr.offset_ms != 0:
                _fail("offset may not be set multiple times", expr.pos)
            return SubqueryExpr(expr.expr, expr.range_ms, expr.step_ms, ms, expr.at, pos=pos)
        _fail(where, expr.pos)

    def at_value(self, meta: Any, children: list[Token]) -> At | float:
        first = children[0]
        if first.type in ("START", "END"):
            return "start" if first.type == "START" else "end"
        tok = children[-1]
        try:
            value = parse_number(tok.value)
        except ValueError as exc:
            _fail(f"error parsing number: {exc}", _tpos(tok))
        return -value if first.type == "SUB" else value

    def at(self, meta: Any, children: list[Any]) -> Expr:
        expr: Expr = children[0]
        value = children[2]
        pos = (expr.pos[0], _mpos(meta)[1])
        at: At
        if isinstance(value, str):
            at = "start" if value == "start" else "end"
        else:
            ts = float(value)
            if math.isinf(ts) or math.isnan(ts) or ts >= 2.0**63 or ts <= -(2.0**63):
                _fail(f"timestamp out of bounds for @ modifier: {go_percent_f(ts)}", expr.pos)
            at = _go_round(ts * 1000.0)
        where = "@ modifier must be preceded by an instant vector selector or range vector " \
                "selector or a subquery"
        twice = "@ <timestamp> may not be set multiple times"
        if isinstance(expr, VectorSelector):
            if expr.at is not None:
                _fail(twice, expr.pos)
            return VectorSelector(expr.name, expr.matchers, expr.offset_ms, at, pos=pos)
        if isinstance(expr, MatrixSelector):
            vs = expr.vector
            if vs.at is not None:
                _fail(twice, expr.pos)
            inner = VectorSelector(vs.name, vs.matchers, vs.offset_ms, at, pos=vs.pos)
            return MatrixSelector(inner, expr.range_ms, pos=pos)
        if isinstance(expr, SubqueryExpr):
            if expr.at is not None:
                _fail(twice, expr.pos)
            return SubqueryExpr(
                expr.expr, expr.range_ms, expr.step_ms, expr.offset_ms, at, pos=pos
            )
        _fail(where, expr.pos)

    # -- calls and aggregations

    def trailing_comma(self, meta: Any, children: list[Any]) -> _TrailingComma:
        return _TrailingComma(_mpos(meta))

    def function_call_args(self, meta: Any, children: list[Any]) -> list[Expr]:
        if children and isinstance(children[-1], _TrailingComma):
            _fail("trailing commas not allowed in function call args", children[-1].pos)
        return list(children)

    def function_call_body(self, meta: Any, children: list[Any]) -> _Body:
        args = children[1] if len(children) == 3 else []
        return _Body(args, _mpos(meta))

    def function_call(self, meta: Any, children: list[Any]) -> Expr:
        name, body = children
        _reject_keyword(name)
        if ":" in name.value:
            lp = body.pos[0]
            _fail('unexpected "("', (lp, lp + 1))
        fn = FUNCTIONS.get(name.value)
        if fn is None:
            _fail(f"unknown function with name {go_quote(name.value)}", _tpos(name))
        return Call(fn, tuple(body.args), pos=(_tpos(name)[0], body.pos[1]))

    def aggregate_op(self, meta: Any, children: list[Token]) -> Token:
        return children[0]

    def aggregate_modifier(self, meta: Any, children: list[Any]) -> tuple[bool, tuple[str, ...]]:
        return (children[0].type == "WITHOUT", children[1])

    def aggregate_expr(self, meta: Any, children: list[Any]) -> Expr:
        op_tok: Token = children[0]
        body = next(c for c in children if isinstance(c, _Body))
        mod = next((c for c in children[1:] if isinstance(c, tuple)), (False, ()))
        op = AggOp(op_tok.value.lower())
        pos = _mpos(meta)
        args = body.args
        if not args:
            _fail("no arguments for aggregate expression provided", pos)
        want = 2 if op.has_param else 1
        if len(args) != want:
            _fail(
                "wrong number of arguments for aggregate expression provided, "
                f"expected {want}, got {len(args)}",
                pos,
            )
        param = args[0] if op.has_param else None
        without, grouping = mod
        return AggregateExpr(op, args[-1], param, grouping, without, pos=pos)

    # -- label lists

    def maybe_label(self, meta: Any, children: list[Token]) -> str:
        tok = children[0]
        val = tok.value
        if ":" in val:
            _fail(
                f"unexpected metric identifier {go_quote(val)} in grouping opts, expected label",
                _tpos(tok),
            )
        if tok.type == "NAME" and val.lower() == "without":
            _fail(f"unexpected <{val}> in grouping opts, expected label", _tpos(tok))
        if val.lower() in ("inf", "nan"):
            _fail(f"unexpected number {go_quote(val)} in grouping opts, expected label",
                  _tpos(tok))
        return str(val)

    def label_list(self, meta: Any, children: list[str]) -> tuple[str, ...]:
        return tuple(children)

    def grouping_labels(self, meta: Any, children: list[Any]) -> tuple[str, ...]:
        return children[1] if len(children) == 3 else ()

    # -- operators

    def group_side(self, meta: Any, children: list[Any]) -> tuple[Cardinality, tuple[str, ...]]:
        card = (Cardinality.MANY_TO_ONE if children[0].type == "GROUP_LEFT"
                else Cardinality.ONE_TO_MANY)
        return (card, children[1] if len(children) == 2 else ())

    def on_or_ignoring(self, meta: Any, children: list[Any]) -> _Modifier:
        mod = _Modifier(on=children[0].type == "ON", labels=children[1])
        if len(children) == 3:
            mod.card, mod.include = children[2]
        return mod

    def bin_modifier(self, meta: Any, children: list[Any]) -> _Modifier:
        mod = _Modifier()
        for child in children:
            if isinstance(child, _Modifier):
                child.return_bool = mod.return_bool
                mod = child
            else:
                mod.return_bool = True
        return mod

    def binary_expr(self, meta: Any, children: list[Any]) -> Expr:
        lhs, op_tok, mod, rhs = children
        op = BinOp(op_tok.value.lower())
        lt, rt = lhs.type, rhs.type
        matching: VectorMatching | None = None
        if lt is ValueType.VECTOR and rt is ValueType.VECTOR:
            card = mod.card
            if op.is_set_operator and card is Cardinality.ONE_TO_ONE:
                card = Cardinality.MANY_TO_MANY
            matching = VectorMatching(card, mod.on, mod.labels, mod.include)
        node = BinaryExpr(op, lhs, rhs, mod.return_bool, matching, pos=_mpos(meta))
        op_end = rhs.pos[0]
        self.bin_info[id(node)] = _BinInfo((_tpos(op_tok)[0], op_end), mod)
        return node

    def unary(self, meta: Any, children: list[Any]) -> Expr:
        op_tok, expr = children
        pos = _mpos(meta)
        if isinstance(expr, NumberLiteral):
            value = -expr.value if op_tok.type == "SUB" else expr.value
            return NumberLiteral(value, pos=pos)
        return UnaryExpr("-" if op_tok.type == "SUB" else "+", expr, pos=pos)

    def paren(self, meta: Any, children: list[Any]) -> Expr:
        return ParenExpr(children[1], pos=_mpos(meta))


#: Keywords the contextual lexer hands over as names where Prometheus's lexer, which knows no
#: context, sees a keyword that the grammar cannot take there.
_NOT_NAMES = {"bool": "<{}>", "on": "<{}>", "ignoring": "<{}>", "group_left": "<{}>",
              "group_right": "<{}>", "atan2": "<op:{}>"}


def _reject_keyword(tok: Token) -> None:
    shape = _NOT_NAMES.get(tok.value.lower()) if tok.type == "NAME" else None
    if shape is not None:
        _fail(f"unexpected {shape.format(tok.value)}", _tpos(tok))


def _regexp_source(raw: str) -> str:
    """A regex literal's text as Go's regexp parser sees it: bytes that are not UTF-8 kept
    apart as lone surrogates (see `vigilops.query.goregexp`)."""
    body = raw[1:-1]
    if raw[0] == "`" or "\\" not in body:
        return body
    return _unescape(raw).decode("utf-8", "surrogateescape")


def _unquote_tok(tok: Token) -> str:
    try:
        return unquote(tok.value)
    except ValueError as exc:
        _fail(str(exc), _tpos(tok))


# ---------------------------------------------------------------- type checking (checkAST)


def _check(node: Expr, info: dict[int, _BinInfo]) -> ValueType:
    """Port of Prometheus's ``checkAST``: children first, the first error wins."""
    if isinstance(node, AggregateExpr):
        _expect(node.expr, ValueType.VECTOR, "aggregation expression", info)
        if node.op in (AggOp.TOPK, AggOp.BOTTOMK, AggOp.QUANTILE):
            assert node.param is not None
            _expect(node.param, ValueType.SCALAR, "aggregation parameter", info)
        elif node.op is AggOp.COUNT_VALUES:
            assert node.param is not None
            _expect(node.param, ValueType.STRING, "aggregation parameter", info)
    elif isinstance(node, BinaryExpr):
        _check_binary(node, info)
    elif isinstance(node, Call):
        fn = node.function
        n = len(node.args)
        if fn.variadic == 0:
            if n != len(fn.arg_types):
                _fail(f"expected {len(fn.arg_types)} argument(s) in call to "
                      f"{go_quote(fn.name)}, got {n}", node.pos)
        else:
            if fn.min_args > n:
                _fail(f"expected at least {fn.min_args} argument(s) in call to "
                      f"{go_quote(fn.name)}, got {n}", node.pos)
            limit = fn.max_args
            if limit is not None and limit < n:
                _fail(f"expected at most {limit} argument(s) in call to "
                      f"{go_quote(fn.name)}, got {n}", node.pos)
        for i, arg in enumerate(node.args):
            _expect(arg, fn.arg_type(i), f"call to function {go_quote(fn.name)}", info)
    elif isinstance(node, ParenExpr):
        _check(node.expr, info)
    elif isinstance(node, UnaryExpr):
        t = _check(node.expr, info)
        if t not in (ValueType.SCALAR, ValueType.VECTOR):
            _fail("unary expression only allowed on expressions of type scalar or instant "
                  f"vector, got {go_quote(t.documented)}", node.pos)
    elif isinstance(node, SubqueryExpr):
        t = _check(node.expr, info)
        if t is not ValueType.VECTOR:
            _fail(f"subquery is only allowed on instant vector, got {t.value} instead", node.pos)
    elif isinstance(node, MatrixSelector):
        _check(node.vector, info)
    elif isinstance(node, VectorSelector):
        if node.name:
            for m in node.matchers[:-1]:
                if m.name == METRIC_NAME:
                    _fail("metric name must not be set twice: "
                          f"{go_quote(node.name)} or {go_quote(m.value)}", node.pos)
        elif not any(not m.matches_empty() for m in node.matchers):
            _fail("vector selector must contain at least one non-empty matcher", node.pos)
    return node.type


def _expect(node: Expr, want: ValueType, context: str, info: dict[int, _BinInfo]) -> None:
    got = _check(node, info)
    if got is not want:
        _fail(f"expected type {want.documented} in {context}, got {got.documented}", node.pos)


def _check_binary(node: BinaryExpr, info: dict[int, _BinInfo]) -> None:
    lt = _check(node.lhs, info)
    rt = _check(node.rhs, info)
    bi = info.get(id(node))
    mod = bi.modifier if bi is not None else _Modifier()
    op_pos = bi.op_pos if bi is not None else node.pos
    op = node.op
    if node.return_bool and not op.is_comparison:
        _fail("bool modifier can only be used on comparison operators", op_pos)
    if op.is_comparison and not node.return_bool and lt is ValueType.SCALAR \
            and rt is ValueType.SCALAR:
        _fail("comparisons between scalars must use BOOL modifier", op_pos)
    if mod.on:
        for label in mod.labels:
            if label in mod.include:
                _fail(f"label {go_quote(label)} must not occur in ON and GROUP clause at once",
                      op_pos)
    for side, t in ((node.lhs, lt), (node.rhs, rt)):
        if t not in (ValueType.SCALAR, ValueType.VECTOR):
            _fail("binary expression must contain only scalar and instant vector types",
                  side.pos)
    both_vectors = lt is ValueType.VECTOR and rt is ValueType.VECTOR
    if not both_vectors:
        if mod.labels:
            _fail("vector matching only allowed between instant vectors", node.pos)
    elif op.is_set_operator:
        if mod.card in (Cardinality.ONE_TO_MANY, Cardinality.MANY_TO_ONE):
            _fail(f"no grouping allowed for {go_quote(op.value)} operation", node.pos)
    if (lt is ValueType.SCALAR or rt is ValueType.SCALAR) and op.is_set_operator:
        _fail(f"set operator {go_quote(op.value)} not allowed in binary scalar expression",
              node.pos)


# ---------------------------------------------------------------- entry point


def _lexer_error(text: str) -> tuple[int, int, str] | None:
    """The first error Prometheus's lexer would raise for unbalanced ``( ) { } [ ]``.

    Returns ``(index, reported_position, message)``; `index` is where the lexer meets the
    problem, to be compared with where the parser failed (whichever comes first wins).
    """
    depth, brace, bracket = 0, False, False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "#":
            nl = text.find("\n", i)
            i = n if nl < 0 else nl
            continue
        if c in "\"'`":
            j = i + 1
            while j < n and text[j] != c:
                if text[j] == "\\" and c != "`":
                    j += 1
                elif text[j] == "\n" and c != "`":
                    return None
                j += 1
            if j >= n:
                return None  # an unterminated string is reported on its own
            i = j + 1
            continue
        if brace:
            if c == "}":
                brace = False
            elif c == "{":
                return (i, i, "unexpected left brace '{'")
            elif c.isascii() and (c.isalpha() or c == "_"):
                while i + 1 < n and text[i + 1].isascii() and (
                        text[i + 1].isalnum() or text[i + 1] == "_"):
                    i += 1
            elif c == "=" and text.startswith("~", i + 1):
                i += 1
            elif c == "!":
                nxt = text[i + 1 : i + 2]
                if nxt not in ("=", "~"):
                    shown = _go_char(nxt or "\ufffd")  # Go's %q of the end-of-input rune
                    return (i, i, f"unexpected character after '!' inside braces: {shown}")
                i += 1
            elif not (c.isascii() and c in "=, \t\r\n"):
                return (i, i, f"unexpected character inside braces: {_go_char(c)}")
        elif c == "{":
            brace = True
        elif c == "}":
            return (i, i, "unexpected character: '}'")
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth < 0:
                return (i, i + 1, "unexpected right parenthesis ')'")
        elif c == "[":
            bracket = True
            j = i + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            problem = _bad_duration_start(text, j)
            if problem is not None:
                return (j, j, problem)
        elif c == "]":
            if not bracket:
                return (i, i, "unexpected right bracket ']'")
            bracket = False
        i += 1
    if brace:
        return (n, n, "unexpected end of input inside braces")
    if depth > 0:
        return (n, n, "unclosed left parenthesis")
    if bracket:
        return (n, n, "unclosed left bracket")
    return None


_LEX_DURATION_RE = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)[smhdwy]s?(?:[0-9]+[smhdw]s?)*")
_LEX_NUMBER_RE = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]*)?")


def _bad_duration_start(text: str, j: int) -> str | None:
    """What Prometheus's lexer says when the text after ``[`` is not a duration."""
    m = _LEX_DURATION_RE.match(text, j)
    if m is not None and not _word_char(text[m.end() : m.end() + 1]):
        return None
    num = _LEX_NUMBER_RE.match(text, j)
    consumed = num.group(0) if num is not None else ""
    if _word_char(text[j + len(consumed) : j + len(consumed) + 1]):
        return f"bad duration syntax: {go_quote(consumed)}"
    return "missing unit character in duration"


def _word_char(c: str) -> bool:
    return c != "" and c.isascii() and (c.isalnum() or c == "_")


def _in_braces(text: str, pos: int) -> bool:
    """Whether `pos` follows an unclosed ``{`` (strings aside; used for messages only)."""
    return text.rfind("{", 0, pos) > text.rfind("}", 0, pos)


def _syntax_error(exc: UnexpectedInput, text: str) -> ParseError:
    err = _lark_syntax_error(exc, text)
    lexed = _lexer_error(text)
    if lexed is not None and lexed[0] <= err.pos[0]:
        return ParseError(lexed[2], (lexed[1], len(text)), text)
    return err


_MATCH_OPS = frozenset({"EQL", "NEQ", "EQL_REGEX", "NEQ_REGEX"})
_AT_INCOMPLETE = frozenset({"ADD", "SUB", "START", "END", "LPAREN"})
#: What follows an unclosed ``[`` → the suffix of that subquery/range error production.
_BRACKET_CONTEXTS = {
    (): " in subquery selector, expected duration",
    ("DURATION",): ' in subquery or range, expected ":" or "]"',
    ("DURATION", "COLON"): ' in subquery selector, expected duration or "]"',
    ("DURATION", "COLON", "DURATION"): ' in subquery selector, expected "]"',
}
#: The parse-tree nodes an ``offset`` can follow.
_EXPRESSIONS = frozenset({
    "number_literal", "string_literal", "vector_selector", "function_call", "aggregate_expr",
    "paren", "matrix_selector", "subquery", "offset", "at"})
#: What stands before ``by``/``without`` when they group an aggregation (else they name a
#: metric).
_AGGREGATION_PARTS = frozenset({"aggregate_op", "function_call_body", "RPAREN"})


def _error_context(exc: UnexpectedToken) -> str:
    """The `` in <context>, expected <what>`` suffix Prometheus adds when one of its
    grammar's error productions catches a syntax error (generated_parser.y).

    yacc pops its stack to the innermost construct with an error production: label
    matchers, grouping labels, subquery and range brackets, ``offset``, ``@`` and
    aggregations. Inside braces and grouping parentheses the terminals the parser could
    have taken tell which one; otherwise Lark's value stack is searched from the top for an
    unfinished ``[…]``, ``offset``, ``@`` or aggregation (yacc, which reduces before it
    reports, has already folded the finished ones away)."""
    expected = set(exc.expected)
    if "LABEL_NAME" in expected:
        return ' in label matching, expected identifier or "}"'
    if _MATCH_OPS <= expected:
        return " in label matching, expected label matching operator"
    if expected == {"STRING"}:
        return " in label matching, expected string"
    if expected == {"COMMA", "RBRACE"}:
        return ' in label matching, expected "," or "}"'
    if expected == {"COMMA", "RPAREN"}:
        return ' in grouping opts, expected "," or ")"'
    if {"RPAREN", "GROUP_LEFT"} <= expected:
        return " in grouping opts, expected label"
    stack = exc.interactive_parser.parser_state.value_stack if exc.interactive_parser else []
    kinds = [v.type if isinstance(v, Token) else getattr(v, "data", "") for v in stack]
    top = kinds[-1] if kinds else ""
    below = kinds[-2] if len(kinds) >= 2 else ""
    if top in ("ON", "IGNORING") or (top in ("BY", "WITHOUT") and below in _AGGREGATION_PARTS):
        return ' in grouping opts, expected "("'
    for i in range(len(kinds) - 1, -1, -1):
        after = kinds[i + 1 :]
        kind = kinds[i]
        if kind == "LBRACE":
            return ""
        if kind == "LBRACKET":
            return _BRACKET_CONTEXTS.get(tuple(after), "")
        # After anything but an expression, `offset` names a metric.
        keyword = i > 0 and kinds[i - 1] in _EXPRESSIONS
        if kind == "OFFSET" and keyword and set(after) <= {"SUB"}:
            return " in offset, expected duration"
        if kind == "AT" and set(after) <= _AT_INCOMPLETE:
            return " in @, expected timestamp"
        if kind == "aggregate_op" and not _finished_aggregation(after):
            return " in aggregation"
    return ""


def _finished_aggregation(after: list[str]) -> bool:
    """Whether the stack entries after an aggregation operator complete it: a call body,
    with or without a ``by``/``without`` before it (one after it is a grouping of its own)."""
    if after[:1] == ["aggregate_modifier"]:
        after = after[1:]
    return (after[:1] == ["function_call_body"] or after[:2] == ["LPAREN", "RPAREN"]
            or after[:3] == ["LPAREN", "function_call_args", "RPAREN"])


def _lark_syntax_error(exc: UnexpectedInput, text: str) -> ParseError:
    if isinstance(exc, UnexpectedToken):
        err = _unexpected_token(exc.token, text)
        if _lexer_rejects(exc.token, text):
            return err  # Prometheus's lexer failed: no grammar context
        context = _error_context(exc)
        return ParseError(err.message + context, err.pos, text) if context else err
    if isinstance(exc, UnexpectedCharacters):
        return _unexpected_character(exc.pos_in_stream or 0, text)
    if isinstance(exc, UnexpectedEOF):
        return ParseError("unexpected end of input", (len(text), len(text)), text)
    return ParseError(str(exc), (0, 0), text)


def _unexpected_token(tok: Token, text: str) -> ParseError:
    """``unexpected <token>`` for a token the parser could not take, named the way
    Prometheus's lexer would have lexed it."""
    if tok.type == "$END":
        return ParseError("unexpected end of input", (len(text), len(text)), text)
    if _lexer_rejects(tok, text):
        # Outside braces Prometheus's lexer knows only "=", "==" and "!=".
        return ParseError(f"unexpected character after '{tok.value[0]}': '~'",
                          _tpos(tok), text)
    if tok.type == "COLON" and text.rfind("[", 0, tok.start_pos or 0) <= text.rfind(
            "]", 0, tok.start_pos or 0):
        # Outside brackets a ':' starts a metric name for Prometheus's lexer.
        return ParseError('unexpected metric identifier ":"', _tpos(tok), text)
    if _in_braces(text, _tpos(tok)[0]):
        if re.fullmatch(r"[a-zA-Z_]\w*", str(tok.value)):
            # Inside braces Prometheus's lexer sees every word as an identifier...
            return ParseError(f"unexpected identifier {go_quote(tok.value)}", _tpos(tok), text)
        if tok.type == "EQLC":  # ... and "==" as two "="
            start = _tpos(tok)[0]
            return ParseError('unexpected "="', (start, start + 1), text)
    return ParseError(f"unexpected {_describe(tok)}", _tpos(tok), text)


def _lexer_rejects(tok: Token, text: str) -> bool:
    """Whether Prometheus's lexer, not its parser, fails at `tok`: ``=~``/``!~`` outside
    braces."""
    return tok.type in ("EQL_REGEX", "NEQ_REGEX") and not _in_braces(text, _tpos(tok)[0])


def _unexpected_character(i: int, text: str) -> ParseError:
    """The lexer's error for a character no token starts with, at index `i`."""
    ch = text[i] if i < len(text) else ""
    if ch and ch in "\"'":
        return ParseError("unterminated quoted string", (i, len(text)), text)
    if ch == "`":
        return ParseError("unterminated raw string", (i, len(text)), text)
    if ch.isdigit() or (ch == "." and text[i + 1 : i + 2].isdigit()):
        m = re.match(r"[0-9a-zA-Z_.]*", text[i:])
        word = m.group(0) if m else ch
        return ParseError(f"bad number or duration syntax: {go_quote(word)}",
                          (i, len(text)), text)
    return ParseError(f"unexpected character: {_go_char(ch)}", (i, len(text)), text)


def _go_char(ch: str) -> str:
    """Go's ``%q`` of a rune."""
    quoted = go_quote(ch)[1:-1]
    return "'\\''" if ch == "'" else f"'{quoted.replace(chr(92) + chr(34), chr(34))}'"


_BLANK_RE = re.compile(r"(?:[ \t\r\n]+|#[^\n]*)*")
_LEADING_NUMBER_WORD = re.compile(r"(?:[ \t\r\n]+|#[^\n]*)*((?i:inf|nan))(?![a-zA-Z0-9_:])")


@functools.lru_cache(maxsize=1024)
def parse(text: str) -> Expr:
    """Parse a PromQL expression; raise `ParseError` on any syntax or type error.

    The ASTs of the last 1,024 distinct texts are kept (they are immutable): dashboards
    send the same few expressions at every refresh, and parsing one takes longer than
    evaluating many instant queries. Errors are not kept."""
    if _BLANK_RE.fullmatch(text):
        raise ParseError("no expression found in input", (0, 0), text)
    return _parse(text, "start", check=True)


def parse_metric_selector(text: str) -> list[Matcher]:
    """Prometheus 2.42's ``parser.ParseMetricSelector``: the label matchers of a lone
    vector selector such as ``foo{a="b"}`` (the name last, as a ``__name__`` matcher).

    Anything else (an operator, ``offset``, ``@``, a range, a second selector) is a
    `ParseError` worded as Prometheus's (``1:5: parse error: unexpected <op:+>``). As in
    Prometheus, the type checks do not run: ``{}`` and ``foo{__name__="bar"}`` are
    selectors here; whether a matcher set selects anything is the caller's question.
    """
    number = _LEADING_NUMBER_WORD.match(text)
    if number is not None:
        # Prometheus's lexer reads a leading Inf or NaN as a number, which no selector
        # starts with; Lark's contextual lexer would take it for a metric name.
        raise ParseError(f"unexpected number {go_quote(number.group(1))}", number.span(1), text)
    selector = _parse(text, "vector_selector", check=False)
    assert isinstance(selector, VectorSelector)
    return list(selector.matchers)


def _parse(text: str, start: str, check: bool) -> Expr:
    """Parse `text` from the grammar rule `start`, build the AST and, if `check`, run the
    type checks; every failure is a `ParseError`."""
    try:
        tree: Tree[Token] = _lark().parse(text, start=start)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from None
    except LarkError as exc:  # pragma: no cover - any other Lark failure is still a parse error
        raise ParseError(str(exc), (0, 0), text) from None
    builder = _Builder()
    try:
        expr = builder.transform(tree)
        if check:
            _check(expr, builder.bin_info)
    except VisitError as exc:
        orig = exc.orig_exc
        if isinstance(orig, _Err):
            raise ParseError(orig.message, orig.pos, text) from None
        if isinstance(orig, RecursionError):
            raise ParseError("expression nested too deeply", (0, len(text)), text) from None
        raise
    except _Err as exc:
        raise ParseError(exc.message, exc.pos, text) from None
    except RecursionError:
        raise ParseError("expression nested too deeply", (0, len(text)), text) from None
    return expr

"""Handlers of the API v1 endpoints that evaluate PromQL: `/query`, `/query_range` and
`/format_query`, with Prometheus 2.42's parameter order, messages and JSON (`web/api/v1/api.go`).

Three parts, each small:

* the handlers: read and validate the form, parse the expression, run the engine in the
  default executor and map its errors (`QueryError.kind`) to the API's ``errorType``;
* the result encoding: `encode_result` turns a `Result` into the ``data`` object, formatting
  all sample values and timestamps of a result with numpy at once (Go's number formats,
  see `promjson`), never one Python call per sample;
* the pretty printer of `/format_query`: Prometheus's ``Expr.String()`` (matchers sorted,
  ``ignoring() group_left`` dropped) and ``parser.Prettify`` (split nodes longer than 100
  characters).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import numpy.typing as npt
import orjson
from aiohttp import web

from vigilops.query.ast import (
    AggregateExpr,
    At,
    BinaryExpr,
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
from vigilops.query.functions import ValueType
from vigilops.query.parser import ParseError, format_duration, parse
from vigilops.query.printer import format_number
from vigilops.query.values import (
    InstantVector,
    Matrix,
    QueryError,
    QueryResult,
    Result,
    ScalarResult,
    StringResult,
)
from vigilops.tsdb.model import METRIC_NAME, Labels, MatchType, go_quote

from .handlers_meta import Result as HandlerResult
from .handlers_meta import api_handler
from .keys import ENGINE_KEY
from .params import Form, duration_param, invalid_param, range_params, time_param
from .promjson import ApiError, ErrorType, format_float, format_timestamp, format_value

if TYPE_CHECKING:
    from vigilops.query.engine import Engine

log = logging.getLogger(__name__)

StrArray: TypeAlias = npt.NDArray[Any]  # numpy StringDType

#: `/query_range` refuses more points per series than this (``api.go``'s safety limit).
MAX_POINTS_PER_SERIES = 11_000
_NS_PER_MS = 1_000_000
_I64_MAX = 2**63 - 1
_STR = np.dtypes.StringDType()


# ---- handlers ------------------------------------------------------------------------------
def _now_ms() -> int:
    return time.time_ns() // _NS_PER_MS


def _timeout_s(form: Form) -> float | None:
    """The optional `timeout` parameter in seconds (None when absent)."""
    if form.get("timeout") == "":
        return None
    return duration_param(form, "timeout") / 1e9


def _parse_query(text: str, wrap: bool) -> Expr:
    """The `query` parameter as an expression. `/query` and `/format_query` prefix parse
    errors with ``invalid parameter "query": ``; `/query_range` does not (Prometheus 2.42)."""
    try:
        return parse(text)
    except ParseError as exc:
        if wrap:
            raise invalid_param("query", str(exc)) from None
        raise ApiError(ErrorType.BAD_DATA, str(exc)) from None


def _error_type(err: QueryError) -> ErrorType:
    try:
        return ErrorType(err.kind)
    except ValueError:
        return ErrorType.EXECUTION


async def _evaluate(func: Callable[..., QueryResult], *args: Any) -> QueryResult:
    """Run an engine call in the default executor; its errors become API errors."""
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(None, func, *args)
    except QueryError as err:
        raise ApiError(_error_type(err), str(err)) from None
    except ApiError:
        raise
    except Exception as exc:  # a bug in evaluation: answered like Prometheus's recovered panics
        log.exception("query evaluation failed")
        raise ApiError(ErrorType.EXECUTION, f"unexpected error: {exc}") from exc


def _engine(request: web.Request) -> Engine:
    engine = request.app.get(ENGINE_KEY)
    if engine is None:
        raise ApiError(ErrorType.UNAVAILABLE, "no query engine configured")
    return engine


def _expired(timeout_s: float | None) -> None:
    """A `timeout` that has run out before the query starts (Prometheus's context deadline
    fires in the queue when negative, at the first check of execution when zero)."""
    if timeout_s is None or timeout_s > 0:
        return
    where = "query queue" if timeout_s < 0 else "query execution"
    raise ApiError(ErrorType.TIMEOUT, f"query timed out in {where}")


@api_handler
async def query(request: web.Request, form: Form) -> HandlerResult:
    """`/api/v1/query`: `query`, `time` (default now), `timeout`."""
    t = time_param(form, "time", _now_ms())
    timeout = _timeout_s(form)
    expr = _parse_query(form.get("query"), wrap=True)
    _expired(timeout)
    engine = _with_timeout(_engine(request), timeout)
    result = await _evaluate(engine.instant_query, expr, t)
    return encode_result(result.value), result.warnings


@api_handler
async def query_range(request: web.Request, form: Form) -> HandlerResult:
    """`/api/v1/query_range`: `query`, `start`, `end`, `step`, `timeout`."""
    start, end = range_params(form)
    step_ns = duration_param(form, "step")
    if step_ns <= 0:
        raise invalid_param(
            "step",
            "zero or negative query resolution step widths are not accepted. "
            "Try a positive integer",
        )
    span_ns = min((end - start) * _NS_PER_MS, _I64_MAX)  # Go's Time.Sub saturates
    if span_ns // step_ns > MAX_POINTS_PER_SERIES:
        raise ApiError(
            ErrorType.BAD_DATA,
            "exceeded maximum resolution of 11,000 points per timeseries. "
            "Try decreasing the query resolution (?step=XX)",
        )
    timeout = _timeout_s(form)
    expr = _parse_query(form.get("query"), wrap=False)
    if expr.type not in (ValueType.SCALAR, ValueType.VECTOR):
        raise ApiError(
            ErrorType.BAD_DATA,
            f"invalid expression type {go_quote(expr.type.documented)} for range query, "
            "must be Scalar or instant Vector",
        )
    step_ms = step_ns // _NS_PER_MS
    if step_ms == 0:
        # Prometheus 2.42 accepts a sub-millisecond step, then divides by it in milliseconds.
        raise ApiError(
            ErrorType.EXECUTION, "unexpected error: runtime error: integer divide by zero"
        )
    _expired(timeout)
    engine = _with_timeout(_engine(request), timeout)
    result = await _evaluate(engine.range_query, expr, start, end, step_ms)
    return encode_result(result.value), result.warnings


def _with_timeout(engine: Engine, timeout_s: float | None) -> Engine:
    """The engine to run one query with: with the request's `timeout` when it is shorter
    than ``--query.timeout``. The engine holds no per-query state, so a shallow copy with
    other options shares its queryable and its concurrency slots."""
    if timeout_s is None or timeout_s >= engine.options.timeout_s:
        return engine
    limited = copy.copy(engine)
    limited.options = dataclasses.replace(engine.options, timeout_s=timeout_s)
    return limited


@api_handler
async def format_query(request: web.Request, form: Form) -> HandlerResult:
    """`/api/v1/format_query`: the expression pretty-printed as Prometheus does."""
    expr = _parse_query(form.get("query"), wrap=True)
    return prettify(expr), []


# ---- result encoding -----------------------------------------------------------------------
def _format_values(values: npt.NDArray[np.float64]) -> StrArray:
    """`format_value` over an array: Go's ``'f'`` format (``'e'`` below 1e-6 and from 1e21),
    shortest digits; ``NaN``, ``+Inf``, ``-Inf``."""
    v = np.asarray(values, dtype=np.float64)
    out = np.empty(v.shape, dtype=_STR)
    a = np.abs(v)
    finite = np.isfinite(v)
    # Whole numbers (most counters and gauges) print as integers: the cheap path.
    whole = finite & (a < 1e15) & (v == np.floor(v)) & ~((v == 0) & np.signbit(v))
    out[whole] = v[whole].astype(np.int64).astype(_STR)
    # Python's and numpy's shortest repr is positional in [1e-4, 1e16) and exponent notation
    # like Go's 'e' (two-digit exponent) below 1e-6 and from 1e21.
    rest = finite & ~whole
    digits = v[rest].astype(_STR)
    ends0 = np.strings.endswith(digits, ".0")
    digits[ends0] = np.strings.slice(digits[ends0], 0, -2)
    out[rest] = digits
    # Between the two notations Go and Python disagree: those (and -0) go one by one.
    odd = rest & (((a >= 1e-6) & (a < 1e-4)) | ((a >= 1e16) & (a < 1e21)) | (v == 0))
    for i in np.flatnonzero(odd):
        out[i] = format_value(float(v[i]))
    out[np.isnan(v)] = "NaN"
    out[v == math.inf] = "+Inf"
    out[v == -math.inf] = "-Inf"
    return out


def _format_timestamps(ts: npt.NDArray[np.int64]) -> StrArray:
    """`format_timestamp` over an array: seconds, with ``.ddd`` when not whole."""
    t = np.asarray(ts, dtype=np.int64)
    a = np.abs(t)
    whole = (a // 1000).astype(_STR)
    frac = a % 1000
    fracs = np.strings.add(".", np.strings.zfill(frac.astype(_STR), 3))
    out = np.where(frac != 0, np.strings.add(whole, fracs), whole)
    neg = t < 0
    out[neg] = np.strings.add("-", out[neg])
    return out


def _points(ts: npt.NDArray[np.int64], vs: npt.NDArray[np.float64]) -> StrArray:
    """``[<t>,"<v>"]`` for every sample."""
    body = np.strings.add(np.strings.add(_format_timestamps(ts), ',"'), _format_values(vs))
    return np.strings.add(np.strings.add("[", body), '"]')


def _go_json_seconds(t_ms: int) -> str:
    """``float64(t)/1000`` as Go's `encoding/json` writes it (scalar and string results)."""
    s = float(t_ms) / 1000.0
    a = abs(s)
    return format_float(s, "e" if a != 0 and (a < 1e-6 or a >= 1e21) else "f")


def _metric(ls: Labels) -> dict[str, str]:
    return dict(ls.pairs())


def encode_result(value: Result) -> dict[str, Any]:
    """The ``data`` object of a query answer: ``resultType`` and ``result``."""
    if isinstance(value, InstantVector):
        t = format_timestamp(value.t)
        vals = _format_values(value.values).tolist()
        return {
            "resultType": "vector",
            "result": [
                {"metric": _metric(ls), "value": orjson.Fragment(f'[{t},"{v}"]'.encode())}
                for ls, v in zip(value.labels, vals, strict=True)
            ],
        }
    if isinstance(value, Matrix):
        lengths = [len(t) for t in value.timestamps]
        if lengths:
            points = _points(np.concatenate(value.timestamps), np.concatenate(value.values))
        else:
            points = np.empty(0, dtype=_STR)
        result: list[dict[str, Any]] = []
        pos = 0
        for ls, n in zip(value.labels, lengths, strict=True):
            joined = ",".join(points[pos : pos + n].tolist())
            pos += n
            values = orjson.Fragment(f"[{joined}]".encode())
            result.append({"metric": _metric(ls), "values": values})
        return {"resultType": "matrix", "result": result}
    if isinstance(value, ScalarResult):
        frag = f'[{_go_json_seconds(value.t)},"{format_float(value.value, "f")}"]'
        return {"resultType": "scalar", "result": orjson.Fragment(frag.encode())}
    if isinstance(value, StringResult):
        t_json = orjson.Fragment(_go_json_seconds(value.t).encode())
        return {"resultType": "string", "result": [t_json, value.value]}
    raise TypeError(f"not a query result: {type(value).__name__}")


# ---- format_query: Prometheus's String() and Prettify() -----------------------------------
#: Prettify splits a node whose one-line form is longer than this (bytes).
MAX_CHARACTERS_PER_LINE = 100
_INDENT = "  "


def _at(at: At) -> str:
    if at is None:
        return ""
    if at == "start" or at == "end":
        return f" @ {at}()"
    ms = int(at)
    return f" @ {'-' if ms < 0 else ''}{abs(ms) // 1000}.{abs(ms) % 1000:03d}"


def _offset(ms: int) -> str:
    if ms > 0:
        return f" offset {format_duration(ms)}"
    if ms < 0:
        return f" offset -{format_duration(-ms)}"
    return ""


def _selector(vs: VectorSelector) -> str:
    """``VectorSelector.String()`` without ``@``/offset: matchers sorted as strings, the
    ``__name__`` matcher equal to the written name left out."""
    parts = sorted(
        f"{m.name}{m.type.value}{go_quote(m.value)}"
        for m in vs.matchers
        if not (m.name == METRIC_NAME and m.type is MatchType.EQUAL and m.value == vs.name)
    )
    if not parts:
        return vs.name
    return f"{vs.name}{{{','.join(parts)}}}"


def _agg_head(e: AggregateExpr) -> str:
    head = e.op.value
    if e.without:
        head += f" without ({', '.join(e.grouping)}) "
    elif e.grouping:
        head += f" by ({', '.join(e.grouping)}) "
    return head


def _matching(e: BinaryExpr) -> str:
    m = e.matching
    if m is None or not (m.labels or m.on):
        return ""  # `ignoring() group_left` prints as nothing at all
    out = f" {'on' if m.on else 'ignoring'} ({', '.join(m.labels)})"
    if m.card in (Cardinality.MANY_TO_ONE, Cardinality.ONE_TO_MANY):
        side = "left" if m.card is Cardinality.MANY_TO_ONE else "right"
        out += f" group_{side} ({', '.join(m.include)})"
    return out


def _subquery_suffix(e: SubqueryExpr) -> str:
    step = format_duration(e.step_ms) if e.step_ms else ""
    return f"[{format_duration(e.range_ms)}:{step}]{_at(e.at)}{_offset(e.offset_ms)}"


def prom_string(e: Expr) -> str:
    """Prometheus 2.42's ``Expr.String()``."""
    if isinstance(e, NumberLiteral):
        return format_number(e.value)
    if isinstance(e, StringLiteral):
        return go_quote(e.value)
    if isinstance(e, VectorSelector):
        return f"{_selector(e)}{_at(e.at)}{_offset(e.offset_ms)}"
    if isinstance(e, MatrixSelector):
        vs = e.vector
        return f"{_selector(vs)}[{format_duration(e.range_ms)}]{_at(vs.at)}{_offset(vs.offset_ms)}"
    if isinstance(e, SubqueryExpr):
        return prom_string(e.expr) + _subquery_suffix(e)
    if isinstance(e, Call):
        return f"{e.function.name}({', '.join(prom_string(a) for a in e.args)})"
    if isinstance(e, AggregateExpr):
        param = f"{prom_string(e.param)}, " if e.param is not None else ""
        return f"{_agg_head(e)}({param}{prom_string(e.expr)})"
    if isinstance(e, BinaryExpr):
        bool_ = " bool" if e.return_bool else ""
        return f"{prom_string(e.lhs)} {e.op.value}{bool_}{_matching(e)} {prom_string(e.rhs)}"
    if isinstance(e, UnaryExpr):
        return f"{e.op}{prom_string(e.expr)}"
    if isinstance(e, ParenExpr):
        return f"({prom_string(e.expr)})"
    raise TypeError(f"not a PromQL expression node: {type(e).__name__}")


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
        return f"{ind}{_agg_head(e)}(\n{param}{_pretty(e.expr, level + 1)}\n{ind})"
    if isinstance(e, BinaryExpr):
        bool_ = " bool" if e.return_bool else ""
        return (f"{_pretty(e.lhs, level + 1)}\n{ind}{e.op.value}{bool_}{_matching(e)}\n"
                f"{_pretty(e.rhs, level + 1)}")
    if isinstance(e, Call):
        args = ",\n".join(_pretty(a, level + 1) for a in e.args)
        return f"{ind}{e.function.name}(\n{args}\n{ind})"
    if isinstance(e, ParenExpr):
        return f"{ind}(\n{_pretty(e.expr, level + 1)}\n{ind})"
    raise TypeError(f"not a PromQL expression node: {type(e).__name__}")


def prettify(e: Expr) -> str:
    """``parser.Prettify``: `prom_string`, with every node longer than 100 characters split
    over indented lines."""
    return _pretty(e, 0)


__all__ = ["encode_result", "format_query", "prettify", "prom_string", "query", "query_range"]

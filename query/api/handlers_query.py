"""Handlers of the API v1 endpoints that evaluate PromQL: `/query`, `/query_range` and
`/format_query`, with Prometheus 2.42's parameter order, messages and JSON (`web/api/v1/api.go`).

The handlers read and validate the form, parse the expression, run the engine in the default
executor (with the request's `timeout`) and map its errors (`QueryError.kind`) to the API's
``errorType``. `encode_result` turns a `Result` into the ``data`` object, formatting all
sample values and timestamps of a result at once (`promjson.format_values`, `matrix_result`).
`/format_query` answers `vigilops.query.printer.prettify`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from aiohttp import web

from vigilops.query.ast import Expr
from vigilops.query.functions import ValueType
from vigilops.query.parser import ParseError, parse
from vigilops.query.printer import prettify
from vigilops.query.values import (
    EngineBusy,
    InstantVector,
    Matrix,
    QueryError,
    QueryResult,
    Result,
    ScalarResult,
    StringResult,
)
from vigilops.tsdb.model import Labels, go_quote

from .handlers_meta import Result as HandlerResult
from .handlers_meta import api_handler
from .keys import ENGINE_KEY, PLACEMENT_KEY
from .params import Form, duration_param, invalid_param, range_params, time_param
from .promjson import (
    ApiError,
    EncodedJSON,
    ErrorType,
    dumps,
    format_float,
    format_json_seconds,
    format_timestamp,
    format_values,
    matrix_result,
    matrix_result_pieces,
)
from .points_json import vector_pieces

if TYPE_CHECKING:
    from vigilops.query.engine import Engine

log = logging.getLogger(__name__)

#: `/query_range` refuses more points per series than this (``api.go``'s safety limit).
MAX_POINTS_PER_SERIES = 11_000
_NS_PER_MS = 1_000_000
_I64_MAX = 2**63 - 1


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


def _run_and_encode(run: Callable[[], QueryResult]) -> tuple[EncodedJSON, list[str]]:
    result = run()
    return encode_data(result.value), result.warnings


async def _evaluate(
    request: web.Request, key: Hashable, run: Callable[..., QueryResult]
) -> tuple[EncodedJSON, list[str]]:
    """Run an engine call (`run`, taking the engine's ``wait``) and encode its answer (the
    ``data`` object, as JSON). In the default executor, as formatting a large matrix is
    CPU work that must not stall the event loop; on the loop itself when the last run of
    the same query (`key`) was short enough (`placement`) and a query slot is free at once.
    The engine's errors become API errors."""
    placement = request.app.get(PLACEMENT_KEY)
    job: Callable[[], tuple[EncodedJSON, list[str]]] = partial(_run_and_encode, run)
    try:
        if placement is not None:
            if placement.on_loop(key):
                try:
                    return placement.timed(key, partial(_run_and_encode, partial(run, wait=False)))
                except EngineBusy:
                    pass
            job = partial(placement.timed, key, job)
        return await asyncio.get_running_loop().run_in_executor(None, job)
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
    engine = _engine(request)
    key = (form.get("query"), 0)
    return await _evaluate(request, key, partial(engine.instant_query, expr, t, timeout_s=timeout))


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
    engine = _engine(request)
    key = (form.get("query"), (end - start) // step_ms + 1)  # the text and the steps
    return await _evaluate(
        request, key, partial(engine.range_query, expr, start, end, step_ms, timeout_s=timeout)
    )


@api_handler
async def format_query(request: web.Request, form: Form) -> HandlerResult:
    """`/api/v1/format_query`: the expression pretty-printed as Prometheus does."""
    expr = _parse_query(form.get("query"), wrap=True)
    return prettify(expr), []


# ---- result encoding -----------------------------------------------------------------------
def _metric(ls: Labels) -> dict[str, str]:
    return dict(zip(ls[0::2], ls[1::2]))


#: The JSON of a series' ``metric`` object by label set (dashboards ask for the same series
#: at every refresh); emptied when it reaches `_METRIC_JSON_MAX` entries.
_METRIC_JSON: dict[Labels, bytes] = {}
_METRIC_JSON_MAX = 8192


def metric_objects(label_sets: Sequence[Labels]) -> list[bytes]:
    """``{"name":"value",…}`` of every label set, escaped like the envelope (`dumps`)."""
    cache = _METRIC_JSON
    out: list[bytes] = []
    for ls in label_sets:
        text = cache.get(ls)
        if text is None:
            text = dumps(_metric(ls))
            if len(cache) >= _METRIC_JSON_MAX:
                cache.clear()
            cache[ls] = text
        out.append(text)
    return out


def encode_data(value: Result) -> EncodedJSON:
    """The ``data`` object of a query answer as JSON (`encode_result` gives the same text
    through orjson); a vector's or matrix's points are laid out by compiled loops and not
    copied again on the way (`vigilops.query.api.points_json`)."""
    if isinstance(value, Matrix):
        pieces = matrix_result_pieces(
            metric_objects(value.labels), value.timestamps, value.values, value.flat
        )
        return EncodedJSON([b'{"resultType":"matrix","result":', *pieces, b"}"])
    if isinstance(value, InstantVector):
        pieces = vector_pieces(metric_objects(value.labels), value.t, value.values)
        return EncodedJSON([b'{"resultType":"vector","result":', *pieces, b"}"])
    return EncodedJSON([dumps(encode_result(value))])


def encode_result(value: Result) -> dict[str, Any]:
    """The ``data`` object of a query answer: ``resultType`` and ``result``."""
    if isinstance(value, InstantVector):
        t = format_timestamp(value.t)
        vals = format_values(value.values)
        return {
            "resultType": "vector",
            "result": [
                {"metric": _metric(ls), "value": orjson.Fragment(f'[{t},"{v}"]'.encode())}
                for ls, v in zip(value.labels, vals, strict=True)
            ],
        }
    if isinstance(value, Matrix):
        metrics = [dumps(_metric(ls)) for ls in value.labels]
        result = matrix_result(metrics, value.timestamps, value.values)
        return {"resultType": "matrix", "result": orjson.Fragment(result)}
    if isinstance(value, ScalarResult):
        # promql.Scalar's MarshalJSON: the value always in 'f' format.
        frag = f'[{format_json_seconds(value.t)},"{format_float(value.value, "f")}"]'
        return {"resultType": "scalar", "result": orjson.Fragment(frag.encode())}
    if isinstance(value, StringResult):
        t_json = orjson.Fragment(format_json_seconds(value.t).encode())
        return {"resultType": "string", "result": [t_json, value.value]}
    raise TypeError(f"not a query result: {type(value).__name__}")


__all__ = ["encode_result", "format_query", "query", "query_range"]

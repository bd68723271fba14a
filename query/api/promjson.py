"""The JSON of Prometheus's HTTP API v1: the envelope, error types and Go number formatting.

Envelope (`web/api/v1/api.go` `response`): ``status``, then ``data``, ``errorType``,
``error``, ``warnings``, each left out when empty. Sample values are strings formatted like
`util/jsonutil.MarshalValue` (Go's ``strconv.AppendFloat(v, 'f' or 'e', -1, 64)``);
timestamps are numbers: seconds with up to three decimals (`MarshalTimestamp`). Like Go's
encoder, ``<``, ``>``, ``&``, U+2028 and U+2029 are written as ``\\u`` escapes.

The digits come from `vigilops.query.gomath` (Go's ``strconv``, one value at a time);
`format_values`, `format_timestamps` and `points` format whole arrays with numpy, for the
samples of a query result.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import orjson
from aiohttp import web

from vigilops.query.gomath import go_format_f, go_format_g


class ErrorType(str, Enum):
    TIMEOUT = "timeout"
    CANCELED = "canceled"
    EXECUTION = "execution"
    BAD_DATA = "bad_data"
    INTERNAL = "internal"
    UNAVAILABLE = "unavailable"
    NOT_FOUND = "not_found"


#: HTTP status of each error type (`respondError`).
HTTP_STATUS: dict[ErrorType, int] = {
    ErrorType.BAD_DATA: 400,
    ErrorType.EXECUTION: 422,
    ErrorType.CANCELED: 503,
    ErrorType.TIMEOUT: 503,
    ErrorType.INTERNAL: 500,
    ErrorType.NOT_FOUND: 404,
    ErrorType.UNAVAILABLE: 503,
}


class ApiError(Exception):
    """An API failure: answered as ``{"status":"error","errorType":…,"error":…}``."""

    def __init__(self, type: ErrorType, message: str) -> None:
        super().__init__(message)
        self.type = type
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.type, 500)


# ---- numbers -----------------------------------------------------------------------------
StrArray: TypeAlias = npt.NDArray[Any]  # numpy StringDType
_STR = np.dtypes.StringDType()


def format_float(v: float, fmt: str = "f") -> str:
    """Go's ``strconv.FormatFloat(v, fmt, -1, 64)`` for fmt ``'f'`` or ``'g'``, with
    Prometheus's ``NaN``, ``+Inf``, ``-Inf`` (`vigilops.query.gomath` does the digits)."""
    if fmt == "f":
        return go_format_f(v)
    if fmt == "g":
        return go_format_g(v)
    raise ValueError(f"unsupported float format {fmt!r}")


def format_value(v: float) -> str:
    """A sample value as Prometheus writes it (`jsonutil.MarshalValue`): Go's ``'f'``
    format unless ``|v| < 1e-6`` or ``|v| >= 1e21``, where it is ``'e'``; ``NaN``,
    ``+Inf``, ``-Inf``. (Go's ``'g'`` is ``'e'`` at those exponents.)"""
    a = abs(v)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        return go_format_g(v)
    return go_format_f(v)


def format_timestamp(ms: int) -> str:
    """Milliseconds as JSON seconds with up to three decimals (`MarshalTimestamp`)."""
    sign = ""
    if ms < 0:
        sign, ms = "-", -ms
    whole, frac = divmod(ms, 1000)
    if frac:
        return f"{sign}{whole}.{frac:03d}"
    return f"{sign}{whole}"


def format_json_seconds(ms: int) -> str:
    """``float64(ms)/1000`` as Go's `encoding/json` writes it (the time of scalar and string
    results): ``'f'`` format, since milliseconds never reach its ``'e'`` range."""
    return go_format_f(ms / 1000.0)


def point(ms: int, v: float) -> orjson.Fragment:
    """``[<seconds>, "<value>"]`` as a pre-encoded JSON fragment."""
    return orjson.Fragment(f'[{format_timestamp(ms)},"{format_value(v)}"]'.encode())


def format_values(values: npt.NDArray[np.float64]) -> StrArray:
    """`format_value` over an array at once: numpy's shortest digits where they agree with
    Go's, one by one only where the notations differ (exponents 1e-6..1e-4, 1e16..1e21)."""
    v = np.asarray(values, dtype=np.float64)
    out = np.empty(v.shape, dtype=_STR)
    a = np.abs(v)
    finite = np.isfinite(v)
    # Whole numbers (most counters and gauges) print as integers: the cheap path. (Stale
    # markers are signalling NaNs, which make floor raise "invalid".)
    with np.errstate(invalid="ignore"):
        integral = v == np.floor(v)
    whole = finite & (a < 1e15) & integral & ~((v == 0) & np.signbit(v))
    out[whole] = v[whole].astype(np.int64).astype(_STR)
    # numpy's shortest repr is positional in [1e-4, 1e16) and exponent notation like Go's
    # 'e' (two-digit exponent) below 1e-6 and from 1e21.
    rest = finite & ~whole
    digits = v[rest].astype(_STR)
    ends0 = np.strings.endswith(digits, ".0")
    digits[ends0] = np.strings.slice(digits[ends0], 0, -2)
    out[rest] = digits
    odd = rest & (((a >= 1e-6) & (a < 1e-4)) | ((a >= 1e16) & (a < 1e21)) | (v == 0))
    for i in np.flatnonzero(odd):
        out[i] = format_value(float(v[i]))
    out[np.isnan(v)] = "NaN"
    out[v == math.inf] = "+Inf"
    out[v == -math.inf] = "-Inf"
    return out


def format_timestamps(ts: npt.NDArray[np.int64]) -> StrArray:
    """`format_timestamp` over an array at once."""
    t = np.asarray(ts, dtype=np.int64)
    a = np.abs(t)
    whole = (a // 1000).astype(_STR)
    frac = a % 1000
    fracs = np.strings.add(".", np.strings.zfill(frac.astype(_STR), 3))
    out = np.where(frac != 0, np.strings.add(whole, fracs), whole)
    neg = t < 0
    out[neg] = np.strings.add("-", out[neg])
    return out


def points(ts: npt.NDArray[np.int64], vs: npt.NDArray[np.float64]) -> StrArray:
    """``[<t>,"<v>"]`` for every sample, as JSON text."""
    body = np.strings.add(np.strings.add(format_timestamps(ts), ',"'), format_values(vs))
    return np.strings.add(np.strings.add("[", body), '"]')


# ---- envelope ----------------------------------------------------------------------------
_GO_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def dumps(obj: Any) -> bytes:
    """orjson with Go's HTML-safe escaping (the characters only occur inside strings)."""
    body = orjson.dumps(obj)
    for raw, esc in _GO_ESCAPES:
        if raw in body:
            body = body.replace(raw, esc)
    return body


def success_body(data: Any, warnings: list[str] | None = None) -> bytes:
    out: dict[str, Any] = {"status": "success"}
    if data is not None:
        out["data"] = data
    if warnings:
        out["warnings"] = warnings
    return dumps(out)


def error_body(err: ApiError, data: Any = None) -> bytes:
    out: dict[str, Any] = {"status": "error"}
    if data is not None:
        out["data"] = data
    out["errorType"] = err.type.value
    out["error"] = err.message
    return dumps(out)


def respond(data: Any, warnings: list[str] | None = None) -> web.Response:
    return web.Response(body=success_body(data, warnings), content_type="application/json")


def respond_error(err: ApiError, data: Any = None) -> web.Response:
    return web.Response(
        status=err.http_status, body=error_body(err, data), content_type="application/json"
    )

"""The JSON of Prometheus's HTTP API v1: the envelope, error types and Go number formatting.

Envelope (`web/api/v1/api.go` `response`): ``status``, then ``data``, ``errorType``,
``error``, ``warnings``, each left out when empty. Sample values are strings formatted like
`util/jsonutil.MarshalValue` (Go's ``strconv.AppendFloat(v, 'f' or 'e', -1, 64)``);
timestamps are numbers: seconds with up to three decimals (`MarshalTimestamp`). Like Go's
encoder, ``<``, ``>``, ``&``, U+2028 and U+2029 are written as ``\\u`` escapes.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Any

import orjson
from aiohttp import web


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
def _shortest(v: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of finite |v| > 0 and the decimal exponent `e`
    such that ``|v| = 0.d1d2… × 10**e`` (Python's repr and Go both pick the shortest)."""
    r = repr(abs(v))
    mant, _, exp = r.partition("e")
    point = int(exp) if exp else 0
    whole, _, frac = mant.partition(".")
    if frac == "0":
        frac = ""
    digits = (whole + frac).lstrip("0")
    lead_zeros = len(whole + frac) - len((whole + frac).lstrip("0"))
    e = len(whole) + point - lead_zeros
    return digits.rstrip("0") or "0", e


def format_float(v: float, fmt: str) -> str:
    """Go's ``strconv.FormatFloat(v, fmt, -1, 64)`` for fmt ``'f'`` or ``'e'``."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, v) < 0 else ""
    if v == 0:
        return sign + ("0e+00" if fmt == "e" else "0")
    digits, e = _shortest(v)
    if fmt == "e":
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        x = e - 1
        return f"{sign}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if e <= 0:
        return f"{sign}0.{'0' * -e}{digits}"
    if e >= len(digits):
        return sign + digits + "0" * (e - len(digits))
    return f"{sign}{digits[:e]}.{digits[e:]}"


def format_value(v: float) -> str:
    """A sample value as Prometheus writes it (`jsonutil.MarshalValue`): fixed notation
    unless ``|v| < 1e-6`` or ``|v| >= 1e21``; ``NaN``, ``+Inf``, ``-Inf``."""
    a = abs(v)
    fmt = "e" if a != 0 and (a < 1e-6 or a >= 1e21) else "f"
    return format_float(v, fmt)


def format_timestamp(ms: int) -> str:
    """Milliseconds as JSON seconds with up to three decimals (`MarshalTimestamp`)."""
    sign = ""
    if ms < 0:
        sign, ms = "-", -ms
    whole, frac = divmod(ms, 1000)
    if frac:
        return f"{sign}{whole}.{frac:03d}"
    return f"{sign}{whole}"


def point(ms: int, v: float) -> orjson.Fragment:
    """``[<seconds>, "<value>"]`` as a pre-encoded JSON fragment."""
    return orjson.Fragment(f'[{format_timestamp(ms)},"{format_value(v)}"]'.encode())


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

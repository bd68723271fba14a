"""The JSON of Prometheus's HTTP API v1: the envelope, error types and Go number formatting.

Envelope (`web/api/v1/api.go` `response`): ``status``, then ``data``, ``errorType``,
``error``, ``warnings``, each left out when empty. Sample values are strings formatted like
`util/jsonutil.MarshalValue` (Go's ``strconv.AppendFloat(v, 'f' or 'e', -1, 64)``);
timestamps are numbers: seconds with up to three decimals (`MarshalTimestamp`). Like Go's
encoder, ``<``, ``>``, ``&``, U+2028 and U+2029 are written as ``\\u`` escapes.

One value at a time, the digits come from `vigilops.query.gomath` (Go's ``strconv``);
`format_values`, `matrix_result` and `points` format whole arrays in compiled loops
(`vigilops.query.api.points_json`), for the samples of a query result.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from aiohttp import web

from vigilops.query.gomath import go_format_f, go_format_g
from vigilops.query.api.points_json import matrix_pieces, value_texts


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


def format_values(values: npt.NDArray[np.float64]) -> list[str]:
    """`format_value` over an array at once."""
    return value_texts(values)


def format_timestamps(ts: npt.NDArray[np.int64]) -> list[str]:
    """`format_timestamp` over an array at once (a query's steps repeat: each distinct one
    is formatted once)."""
    t = np.asarray(ts, dtype=np.int64).ravel()
    if not (t % 1000).any():  # whole seconds
        return list(map(str, (t // 1000).tolist()))
    distinct, index = np.unique(t, return_inverse=True)
    texts = [format_timestamp(x) for x in distinct.tolist()]
    return [texts[i] for i in index.ravel().tolist()]


def points(ts: npt.NDArray[np.int64], vs: npt.NDArray[np.float64]) -> list[str]:
    """``[<t>,"<v>"]`` for every sample, as JSON text."""
    return [f'[{t},"{v}"]' for t, v in zip(format_timestamps(ts), value_texts(vs), strict=True)]


def matrix_result(
    metrics: list[bytes],
    timestamps: Sequence[npt.NDArray[np.int64]],
    values: Sequence[npt.NDArray[np.float64]],
) -> bytes:
    """A matrix's ``result`` array as JSON: series ``j`` is ``{"metric":<metrics[j]>,
    "values":[[<t>,"<v>"],…]}``, laid out by compiled loops (`vigilops.query.api.points_json`)."""
    if not metrics:
        return b"[]"
    return b"".join(matrix_result_pieces(metrics, timestamps, values))


def matrix_result_pieces(
    metrics: list[bytes],
    timestamps: Sequence[npt.NDArray[np.int64]],
    values: Sequence[npt.NDArray[np.float64]],
    flat: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None = None,
) -> list[bytes | memoryview]:
    """`matrix_result` in pieces to join (`EncodedJSON`); `flat`: the series' points
    already back to back (`Matrix.flat`)."""
    if not metrics:
        return [b"[]"]
    lengths = np.fromiter((len(t) for t in timestamps), dtype=np.int64, count=len(timestamps))
    if flat is None:
        flat = (np.concatenate(timestamps), np.concatenate(values))
    return matrix_pieces(metrics, flat[0], flat[1], lengths)


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
        # Single bytes are found at memchr speed; a multi-byte search only runs when its
        # first byte occurs at all (a 3-byte search over a large matrix took ~20 ms).
        if raw[:1] in body and raw in body:
            body = body.replace(raw, esc)
    return body


class EncodedJSON:
    """A ``data`` value already written as JSON, in pieces to join (escaped as `dumps`
    escapes): `success_body` copies it once, not through orjson and the escaping scans,
    which for a matrix of a million points cost tens of milliseconds."""

    __slots__ = ("pieces",)

    def __init__(self, pieces: list[bytes | memoryview]) -> None:
        self.pieces = pieces


def success_pieces(data: EncodedJSON, warnings: list[str] | None = None) -> list[bytes | memoryview]:
    """`success_body` of an encoded ``data`` as pieces to send one after the other."""
    tail = b',"warnings":' + dumps(warnings) + b"}" if warnings else b"}"
    return [b'{"status":"success","data":', *data.pieces, tail]


def success_body(data: Any, warnings: list[str] | None = None) -> bytes:
    if isinstance(data, EncodedJSON):
        return b"".join(success_pieces(data, warnings))
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


#: Answers from this size on are sent piece by piece: joined first, a large matrix was
#: copied once more (tens of megabytes, each page of them faulted in).
STREAM_BYTES = 1 << 20


async def respond(
    request: web.Request, data: Any, warnings: list[str] | None = None
) -> web.StreamResponse:
    if not isinstance(data, EncodedJSON):
        return web.Response(body=success_body(data, warnings), content_type="application/json")
    pieces = success_pieces(data, warnings)
    size = sum(len(p) for p in pieces)
    if size < STREAM_BYTES:
        return web.Response(body=b"".join(pieces), content_type="application/json")
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.content_length = size
    await resp.prepare(request)
    for piece in pieces:
        await resp.write(piece)
    await resp.write_eof()
    return resp


def respond_error(err: ApiError, data: Any = None) -> web.Response:
    return web.Response(
        status=err.http_status, body=error_body(err, data), content_type="application/json"
    )

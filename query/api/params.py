"""Request parameters of the Prometheus HTTP API v1, parsed exactly as Prometheus 2.42 does.

`web/api/v1/api.go`: `parseTime` (decimal seconds rounded to milliseconds, RFC 3339, or the
two sentinel strings of `MinTime`/`MaxTime`), `parseTimeParam` (a default when absent),
`parseDuration` (decimal seconds or a Prometheus duration such as ``5m``), `limit` and
repeated `match[]`. GET query strings and form-encoded POST bodies are read alike (a body
value wins over a query-string value, as with Go's `Request.FormValue`); unknown parameters
are ignored. Failures raise `ApiError` (`bad_data`) with Prometheus's wording.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web
from multidict import MultiDict

from vigilops.query.parser import ParseError, parse_metric_selector
from vigilops.scrape.gofloat import GoNumError, parse_go_float
from vigilops.tsdb.model import Matcher

from .promjson import ApiError, ErrorType

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1
_NS_PER_S = 1_000_000_000
_NS_PER_MS = 1_000_000

#: `v1.MinTime` / `v1.MaxTime` as Unix seconds (+ nanoseconds) and as milliseconds.
_MIN_TIME_S = -9223372036854775 + 62135596801  # math.MinInt64/1000 + 62135596801
_MAX_TIME_S = 9223372036854775 - 62135596801
MIN_TIME_MS = _MIN_TIME_S * 1000
MAX_TIME_MS = _MAX_TIME_S * 1000 + 999
#: `MinTime.Format(time.RFC3339Nano)` and `MaxTime.Format(time.RFC3339Nano)`: Go's time
#: parser takes only four-digit years, so Prometheus matches these strings literally.
MIN_TIME_FORMATTED = "-292273086-05-16T16:47:06Z"
MAX_TIME_FORMATTED = "292277025-08-18T07:12:54.999999999Z"

_HEX_FLOAT = re.compile(
    r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+"
)
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:[.,]([0-9]+))?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_DURATION = re.compile(
    r"(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?"
    r"(?:([0-9]+)s)?(?:([0-9]+)ms)?"
)
_DURATION_UNITS_MS = (
    365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1
)
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


# ---- Go numeric helpers ------------------------------------------------------------------
def _wrap64(n: int) -> int:
    """Two's-complement int64 wrap-around, as Go's integer arithmetic does."""
    return (n + 2**63) % 2**64 - 2**63


def _go_int64(f: float) -> int:
    """Go's ``int64(f)`` on amd64: truncation; NaN and out-of-range give MinInt64."""
    if f != f or not (-(2.0**63) <= f < 2.0**63):
        return _I64_MIN
    return int(f)


def go_parse_float(text: str) -> float | None:
    """`strconv.ParseFloat(text, 64)`, or None where Go reports an error."""
    try:
        return parse_go_float(text)
    except GoNumError:
        if _HEX_FLOAT.fullmatch(text):
            try:
                return float.fromhex(text)
            except (ValueError, OverflowError):
                return None
        return None


# ---- times -------------------------------------------------------------------------------
def _unix_to_ms(sec: int, nsec: int) -> int:
    """`timestamp.FromTime(time.Unix(sec, nsec))` with Go's normalisation and wrap-around."""
    if nsec < 0 or nsec >= _NS_PER_S:
        n = nsec // _NS_PER_S if nsec >= 0 else -(-nsec // _NS_PER_S)  # Go truncates
        sec = _wrap64(sec + n)
        nsec = _wrap64(nsec - n * _NS_PER_S)
        if nsec < 0:
            nsec += _NS_PER_S
            sec = _wrap64(sec - 1)
    return _wrap64(sec * 1000 + nsec // _NS_PER_MS)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (year 0 allowed, as in Go)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _parse_rfc3339(text: str) -> int | None:
    """`time.Parse(time.RFC3339Nano, text)` as milliseconds, or None."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    if not 1 <= month <= 12 or hour > 23 or minute > 59 or second > 59:
        return None
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= day <= _DAYS_IN_MONTH[month - 1] + (leap and month == 2):
        return None
    frac = m.group(7) or ""
    nsec = int((frac[:9]).ljust(9, "0")) if frac else 0
    offset_s = 0
    zone = m.group(8)
    if zone != "Z":
        oh, om = int(zone[1:3]), int(zone[4:6])
        if oh > 23 or om > 59:
            return None
        offset_s = (oh * 3600 + om * 60) * (1 if zone[0] == "+" else -1)
    days = _days_from_civil(year, month, day)
    sec = days * 86400 + hour * 3600 + minute * 60 + second - offset_s
    return sec * 1000 + nsec // _NS_PER_MS


def parse_time(text: str) -> int:
    """Prometheus's `parseTime` → milliseconds; ValueError with Prometheus's message."""
    f = go_parse_float(text)
    if f is not None:
        if f != f or f in (float("inf"), float("-inf")):
            whole, frac = f, float("nan")
        else:
            whole = float(int(f))  # math.Modf: integer part toward zero
            frac = f - whole
        frac = _go_round(frac * 1000) / 1000
        return _unix_to_ms(_go_int64(whole), _go_int64(frac * _NS_PER_S))
    ms = _parse_rfc3339(text)
    if ms is not None:
        return ms
    if text == MIN_TIME_FORMATTED:
        return MIN_TIME_MS
    if text == MAX_TIME_FORMATTED:
        return MAX_TIME_MS
    raise ValueError(f"cannot parse {_go_quote(text)} to a valid timestamp")


def _go_round(x: float) -> float:
    """Go's `math.Round`: half away from zero."""
    if x != x or x in (float("inf"), float("-inf")):
        return x
    r = float(int(x))
    if abs(x - r) >= 0.5:
        r += 1.0 if x > 0 else -1.0
    return r


# ---- durations ---------------------------------------------------------------------------
def _parse_model_duration(text: str) -> int | None:
    """`model.ParseDuration` (prometheus/common) in nanoseconds, or None."""
    if text == "0":
        return 0
    if not text:
        return None
    m = _DURATION.fullmatch(text)
    if m is None:
        return None
    total_ms = 0
    for value, unit_ms in zip(m.groups(), _DURATION_UNITS_MS):
        if value is None:
            continue
        n = int(value)
        if n > _I64_MAX // (unit_ms * _NS_PER_MS):
            return None
        total_ms += n * unit_ms
        if total_ms * _NS_PER_MS > _I64_MAX:
            return None
    return total_ms * _NS_PER_MS


def parse_duration_ns(text: str) -> int:
    """Prometheus's `parseDuration` → nanoseconds; ValueError with Prometheus's message."""
    f = go_parse_float(text)
    if f is not None:
        ts = f * _NS_PER_S
        if ts > float(_I64_MAX) or ts < float(_I64_MIN):
            raise ValueError(
                f"cannot parse {_go_quote(text)} to a valid duration. It overflows int64"
            )
        return _go_int64(ts)
    ns = _parse_model_duration(text)
    if ns is not None:
        return ns
    raise ValueError(f"cannot parse {_go_quote(text)} to a valid duration")


def duration_ms(ns: int) -> int:
    """`durationMilliseconds`: a duration in nanoseconds as whole milliseconds (truncated)."""
    return int(ns / _NS_PER_MS) if ns < 0 else ns // _NS_PER_MS


def _go_quote(text: str) -> str:
    from vigilops.scrape.gofloat import go_quote_bytes

    return go_quote_bytes(text)


# ---- the request's form -------------------------------------------------------------------
@dataclass(frozen=True)
class Form:
    """A request's parameters: form-encoded POST body first, then the query string."""

    values: MultiDict[str]

    def get(self, name: str) -> str:
        """`Request.FormValue`: the first value, "" when absent."""
        return self.values.get(name, "")

    def getall(self, name: str) -> list[str]:
        return list(self.values.getall(name, []))


async def read_form(request: web.Request) -> Form:
    merged: MultiDict[str] = MultiDict()
    if request.method in ("POST", "PUT", "PATCH") and request.can_read_body:
        body = await request.post()
        for k, v in body.items():
            if isinstance(v, str):
                merged.add(k, v)
            elif isinstance(v, bytes):
                merged.add(k, v.decode("utf-8", "replace"))
    for k, v in request.query.items():
        merged.add(k, v)
    return Form(merged)


def invalid_param(name: str, message: str) -> ApiError:
    """Prometheus's `invalidParamError`: bad_data, ``invalid parameter "name": message``."""
    return ApiError(ErrorType.BAD_DATA, f'invalid parameter "{name}": {message}')


def time_param(form: Form, name: str, default_ms: int) -> int:
    """`parseTimeParam`: the parameter in milliseconds, `default_ms` when absent or empty."""
    text = form.get(name)
    if text == "":
        return default_ms
    try:
        return parse_time(text)
    except ValueError as exc:
        raise invalid_param(name, f"Invalid time value for '{name}': {exc}") from None


def required_time(form: Form, name: str) -> int:
    """`parseTime(r.FormValue(name))` as `query_range` uses it (no default)."""
    try:
        return parse_time(form.get(name))
    except ValueError as exc:
        raise invalid_param(name, str(exc)) from None


def start_end(form: Form) -> tuple[int, int]:
    """`start`/`end` of the metadata endpoints: defaults MinTime/MaxTime."""
    return time_param(form, "start", MIN_TIME_MS), time_param(form, "end", MAX_TIME_MS)


def range_params(form: Form) -> tuple[int, int]:
    """`start`/`end` of `query_range` (both required; end not before start)."""
    start = required_time(form, "start")
    end = required_time(form, "end")
    if end < start:
        raise invalid_param("end", "end timestamp must not be before start time")
    return start, end


def duration_param(form: Form, name: str) -> int:
    """A duration parameter (`step`, `timeout`, …) in nanoseconds."""
    try:
        return parse_duration_ns(form.get(name))
    except ValueError as exc:
        raise invalid_param(name, str(exc)) from None


def limit_param(form: Form, name: str = "limit") -> int:
    """`parseLimitParam` (Prometheus ≥ 2.49; 2.42 ignores `limit`): 0 when absent (no limit)."""
    text = form.get(name)
    if text == "":
        return 0
    value = go_atoi(text)
    if value is None:
        raise invalid_param(name, f"strconv.Atoi: parsing {_go_quote(text)}: invalid syntax")
    if value < 0:
        raise invalid_param(name, "limit must be non-negative")
    return value


def go_atoi(text: str) -> int | None:
    """`strconv.Atoi`: optional sign and ASCII digits in int64 range, else None."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    value = int(text)
    return value if _I64_MIN <= value <= _I64_MAX else None


# ---- match[] -------------------------------------------------------------------------------
def parse_matchers(
    selectors: Sequence[str], *, wrap_parse_errors: bool = True, wrap_empty: bool = False
) -> list[list[Matcher]]:
    """`parseMatchersParam`: one matcher list per `match[]`, each parsed with the PromQL
    parser's `parse_metric_selector`; each set needs a matcher that does not match the
    empty string (checked after all are parsed, as Prometheus does).

    Prometheus 2.42 prefixes both kinds of error with ``invalid parameter "match[]": `` in
    `/series` (``wrap_empty=True``) and neither in `/labels` and `/label/…/values`
    (``wrap_parse_errors=False``).
    """
    sets: list[list[Matcher]] = []
    for text in selectors:
        try:
            sets.append(parse_metric_selector(text))
        except ParseError as exc:
            if wrap_parse_errors:
                raise invalid_param("match[]", str(exc)) from None
            raise ApiError(ErrorType.BAD_DATA, str(exc)) from None
    for ms in sets:
        if not any(not m.matches_empty() for m in ms):
            message = "match[] must contain at least one non-empty matcher"
            if wrap_empty:
                raise invalid_param("match[]", message)
            raise ApiError(ErrorType.BAD_DATA, message)
    return sets

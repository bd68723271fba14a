"""`vigilops query 'EXPR'`: evaluate PromQL on a running server through its HTTP API and print
the answer the way `promtool query instant` / `promtool query range` do.

Without `--start`, `--end` or `--step` it is an instant query at `--time` (default now);
with any of them a range query (end defaults to now, start to five minutes before the end,
the step to a 250th of the range, at least one second, as promtool does). Times are Unix
seconds or RFC 3339. Output, one result per line::

    up{instance="h1", job="a"} => 1 @[1700000000.123]       (vector)
    up{instance="h1", job="a"} =>                          (matrix: series sorted,
    1 @[1700000000]                                         one point per line)
    scalar: 1.5 @[1700000000]                               (scalar)

An API error is printed to standard error as ``query error: <errorType>: <message>`` and
the exit status is 1.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal
from typing import Any

DEFAULT_URL = "http://127.0.0.1:9090"
_TIMEOUT_S = 300.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    q = sub.add_parser(
        "query",
        help="evaluate a PromQL expression on a running server (like promtool query)",
    )
    q.add_argument("expr", metavar="EXPR", help="PromQL expression")
    q.add_argument("--url", default=DEFAULT_URL, help=f"server URL (default {DEFAULT_URL})")
    q.add_argument("--time", default=None, help="instant query time (RFC 3339 or Unix seconds)")
    q.add_argument("--start", default=None, help="range query start (RFC 3339 or Unix seconds)")
    q.add_argument("--end", default=None, help="range query end (RFC 3339 or Unix seconds)")
    q.add_argument("--step", default=None, help="range query step (a duration such as 30s)")


class QueryFailed(Exception):
    """What to print after ``query error: ``."""


# ---- times ---------------------------------------------------------------------------------
def _parse_time_ms(text: str) -> int:
    """promtool's `parseTime`: Unix seconds (fractions allowed) or RFC 3339, in ms."""
    from vigilops.query.api.params import parse_time

    try:
        return parse_time(text)
    except ValueError as exc:
        raise QueryFailed(str(exc)) from None


def _seconds(ms: int) -> str:
    return format(Decimal(ms) / 1000, "f")


def _step_seconds(text: str) -> str:
    from vigilops.query.api.params import parse_duration_ns

    try:
        ns = parse_duration_ns(text)
    except ValueError as exc:
        raise QueryFailed(str(exc)) from None
    return format(Decimal(ns) / 1_000_000_000, "f")


def range_params(start: str | None, end: str | None, step: str | None) -> dict[str, str]:
    """The `start`/`end`/`step` form values for a range query, with promtool's defaults."""
    end_ms = _parse_time_ms(end) if end else time.time_ns() // 1_000_000
    start_ms = _parse_time_ms(start) if start else end_ms - 300_000
    if start_ms >= end_ms:
        raise QueryFailed("start time is not before end time")
    if step:
        step_s = _step_seconds(step)
    else:
        step_s = str(max(math.floor((end_ms - start_ms) / 1000 / 250), 1))
    return {"start": _seconds(start_ms), "end": _seconds(end_ms), "step": step_s}


# ---- the request ---------------------------------------------------------------------------
def call(base_url: str, path: str, form: dict[str, str]) -> Any:
    """POST the form to the API; the ``data`` of a success, else `QueryFailed`."""
    body = urllib.parse.urlencode(form).encode()
    req = urllib.request.Request(base_url.rstrip("/") + path, data=body, method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(req, timeout=_TIMEOUT_S) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            doc = json.loads(raw, parse_float=Decimal)
        except ValueError:
            raise QueryFailed(f"server returned HTTP status {err.code} {err.reason}") from None
        if not isinstance(doc, dict) or "error" not in doc:
            raise QueryFailed(f"server returned HTTP status {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise QueryFailed(f"Post {req.full_url!r}: {reason}") from None
    else:
        doc = json.loads(raw, parse_float=Decimal)
    if doc.get("status") != "success":
        raise QueryFailed(f"{doc.get('errorType', 'error')}: {doc.get('error', '')}")
    return doc.get("data")


# ---- printing (github.com/prometheus/common/model's String methods) --------------------------
def _go_float(v: float) -> str:
    """``strconv.FormatFloat(v, 'f', -1, 64)``."""
    from vigilops.query.api.promjson import format_float

    return format_float(v, "f")


def _value(text: str) -> str:
    """A JSON sample value string re-printed as promtool prints a `SampleValue`."""
    return _go_float(float(text))


def _timestamp(num: Decimal | int) -> str:
    """A JSON timestamp (seconds) as `model.Time.String()`: whole milliseconds, shortest."""
    ms = int((Decimal(num) * 1000).to_integral_value(rounding="ROUND_FLOOR"))
    return _go_float(float(ms) / 1000.0)


def _metric(labels: dict[str, str]) -> str:
    """`model.Metric.String()`: ``name{a="b", c="d"}`` (pairs sorted as text), ``{}``."""
    from vigilops.tsdb.model import go_quote

    name = labels.get("__name__")
    parts = sorted(f"{k}={go_quote(v)}" for k, v in labels.items() if k != "__name__")
    if not parts:
        return name if name is not None else "{}"
    return f"{name or ''}{{{', '.join(parts)}}}"


def _before(a: dict[str, str], b: dict[str, str]) -> int:
    """`model.LabelSet.Before` as a comparison: fewer labels first, then by values in label
    name order (a label missing on one side sorts that side first)."""
    if len(a) != len(b):
        return -1 if len(a) < len(b) else 1
    for name in sorted([*a, *b]):
        if name not in a:
            return -1
        if name not in b:
            return 1
        if a[name] != b[name]:
            return -1 if a[name] < b[name] else 1
    return 0


def render(data: Any) -> str:
    """The text promtool prints for a query's ``data`` (without the final newline)."""
    kind, result = data["resultType"], data["result"]
    if kind == "vector":
        return "\n".join(
            f"{_metric(s['metric'])} => {_value(s['value'][1])} @[{_timestamp(s['value'][0])}]"
            for s in result
        )
    if kind == "matrix":
        order = functools.cmp_to_key(_before)
        series: list[dict[str, Any]] = sorted(result, key=lambda s: order(s["metric"]))
        return "\n".join(
            f"{_metric(s['metric'])} =>\n"
            + "\n".join(f"{_value(v)} @[{_timestamp(t)}]" for t, v in s["values"])
            for s in series
        )
    if kind == "scalar":
        return f"scalar: {_value(result[1])} @[{_timestamp(result[0])}]"
    if kind == "string":
        from vigilops.tsdb.model import go_quote

        return f"{go_quote(result[1])} @[{_timestamp(result[0])}]"
    raise QueryFailed(f"unknown result type {kind!r}")


def run(args: argparse.Namespace) -> int:
    try:
        if args.start is not None or args.end is not None or args.step is not None:
            form = {"query": args.expr, **range_params(args.start, args.end, args.step)}
            data = call(args.url, "/api/v1/query_range", form)
        else:
            form = {"query": args.expr}
            if args.time:
                form["time"] = _seconds(_parse_time_ms(args.time))
            data = call(args.url, "/api/v1/query", form)
        text = render(data)
    except QueryFailed as exc:
        print(f"query error: {exc}", file=sys.stderr)
        return 1
    print(text)
    return 0

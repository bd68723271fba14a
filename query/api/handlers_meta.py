"""Handlers of the API v1 endpoints that need no PromQL evaluation: label names and
values, series, metadata, exemplars (none stored), build/runtime/TSDB status, and the
empty rules and alerts lists until the ruler fills them.

Each handler reads the form (query string and POST body), validates like Prometheus 2.42
(`web/api/v1/api.go`), runs storage work in the default executor and answers with the
`promjson` envelope.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import platform
import re
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

from aiohttp import web

from vigilops import __version__
from vigilops.http_api import FLAGS_KEY, MANAGER_KEY, REGISTRY_KEY
from vigilops.tsdb.api import Queryable
from vigilops.tsdb.model import Labels, Matcher
from vigilops.tsdb.stats import HeadCardinality, head_cardinality

from . import params
from .keys import DB_KEY, QUERYABLE_KEY, RUNTIME_KEY
from .params import Form, go_atoi, invalid_param, limit_param, parse_matchers, read_form, start_end
from .promjson import ApiError, ErrorType, respond, respond_error

log = logging.getLogger(__name__)

T = TypeVar("T")
Result = tuple[Any, list[str]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TRUNCATED_WARNING = "results truncated due to limit"
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def api_handler(fn: Callable[[web.Request, Form], Awaitable[Result]]) -> Handler:
    """Wrap `fn(request, form) -> (data, warnings)` into the envelope and error mapping."""

    @functools.wraps(fn)
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            form = await read_form(request)
            data, warnings = await fn(request, form)
        except ApiError as err:
            return respond_error(err)
        return await respond(request, data, warnings)

    return handler


async def in_executor(func: Callable[..., T], *args: Any) -> T:
    """Run storage work off the event loop; storage failures become `execution` errors."""
    try:
        return await asyncio.get_running_loop().run_in_executor(None, func, *args)
    except ApiError:
        raise
    except Exception as exc:
        log.exception("API storage call failed")
        raise ApiError(ErrorType.EXECUTION, str(exc)) from exc


def _truncate(items: list[T], limit: int, warnings: list[str]) -> list[T]:
    if limit and len(items) > limit:
        warnings.append(TRUNCATED_WARNING)
        return items[:limit]
    return items


# ---- labels, label values, series ----------------------------------------------------------
def _label_lookup(
    qa: Queryable,
    name: str | None,
    start: int,
    end: int,
    sets: Sequence[Sequence[Matcher]],
    limit: int,
) -> Result:
    """Label names (`name` None) or the values of label `name`, over the union of the
    matcher sets (all series without any), sorted and cut at `limit`."""
    # With a limit, fetch one more than asked to know whether the answer was truncated.
    fetch = limit + 1 if limit else 0
    warnings: list[str] = []
    found: set[str] = set()
    with qa.querier(start, end) as q:
        for ms in sets or [()]:
            if name is None:
                vals, w = q.label_names(ms, fetch)
            else:
                vals, w = q.label_values(name, ms, fetch)
            warnings.extend(w)
            found.update(vals)
    return _truncate(sorted(found), limit, warnings), warnings


def _series(
    qa: Queryable, start: int, end: int, sets: Sequence[Sequence[Matcher]], limit: int
) -> Result:
    fetch = limit + 1 if limit else 0
    found: set[Labels] = set()
    with qa.querier(start, end) as q:
        for ms in sets:
            found.update(q.series(ms, fetch))
    warnings: list[str] = []
    out = _truncate(sorted(found), limit, warnings)
    return [ls.to_dict() for ls in out], warnings


async def _label_answer(request: web.Request, form: Form, name: str | None) -> Result:
    """`/labels` (`name` None) and `/label/<name>/values`: `start`, `end`, `limit` and
    `match[]`, whose errors Prometheus 2.42 does not prefix."""
    start, end = start_end(form)
    limit = limit_param(form)
    sets = parse_matchers(form.getall("match[]"), wrap_parse_errors=False)
    return await in_executor(
        _label_lookup, request.app[QUERYABLE_KEY], name, start, end, sets, limit
    )


@api_handler
async def labels(request: web.Request, form: Form) -> Result:
    return await _label_answer(request, form, None)


@api_handler
async def label_values(request: web.Request, form: Form) -> Result:
    name = request.match_info["name"]
    if not _LABEL_NAME.match(name):
        raise ApiError(ErrorType.BAD_DATA, f"invalid label name: {params._go_quote(name)}")
    return await _label_answer(request, form, name)


@api_handler
async def series(request: web.Request, form: Form) -> Result:
    selectors = form.getall("match[]")
    if not selectors:
        raise ApiError(ErrorType.BAD_DATA, "no match[] parameter provided")
    start, end = start_end(form)
    limit = limit_param(form)
    sets = parse_matchers(selectors, wrap_empty=True)
    return await in_executor(_series, request.app[QUERYABLE_KEY], start, end, sets, limit)


# ---- metadata and exemplars ----------------------------------------------------------------
def _int_param(form: Form, name: str, default: int) -> int:
    text = form.get(name)
    if text == "":
        return default
    value = go_atoi(text)
    if value is None:
        raise ApiError(ErrorType.BAD_DATA, f"{name} must be a number")
    return value


@api_handler
async def metadata(request: web.Request, form: Form) -> Result:
    limit = _int_param(form, "limit", -1)
    per_metric = _int_param(form, "limit_per_metric", -1)
    metric = form.get("metric")
    merged: dict[str, dict[tuple[str, str, str], None]] = {}
    manager = request.app.get(MANAGER_KEY)
    loops = manager.active() if manager is not None else []
    for loop in loops:
        for name, meta in loop.status.metadata.items():
            if metric and name != metric:
                continue
            entries = merged.get(name)
            if per_metric > 0 and entries is not None and len(entries) >= per_metric:
                continue
            # Prometheus's text parser reports `# TYPE x untyped` as "unknown".
            mtype = "unknown" if meta.type == "untyped" else meta.type
            merged.setdefault(name, {})[(mtype, meta.help, meta.unit)] = None
    out: dict[str, list[dict[str, str]]] = {}
    for name in sorted(merged):
        if limit >= 0 and len(out) >= limit:
            break
        out[name] = [{"type": t, "help": h, "unit": u} for t, h, u in merged[name]]
    return out, []


@api_handler
async def query_exemplars(request: web.Request, form: Form) -> Result:
    start = params.time_param(form, "start", params.MIN_TIME_MS)
    end = params.time_param(form, "end", params.MAX_TIME_MS)
    if end < start:
        raise ApiError(ErrorType.BAD_DATA, "end timestamp must not be before start timestamp")
    if form.get("query") == "":
        # Prometheus's parser: an empty expression is a parse error.
        raise ApiError(ErrorType.BAD_DATA, "1:1: parse error: no expression found in input")
    # VigilOps stores no exemplars: any valid query has none.
    return [], []


# ---- status ----------------------------------------------------------------------------------
@api_handler
async def buildinfo(request: web.Request, form: Form) -> Result:
    # No "features" object: Grafana takes a non-empty one for a Mimir ruler API.
    return {
        "version": __version__,
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": f"python{platform.python_version()}",
    }, []


def _go_time(ts: float) -> str:
    """A Unix time as Go's `time.Time` JSON (RFC 3339 with trimmed nanoseconds)."""
    if ts <= 0:
        return "0001-01-01T00:00:00Z"
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        text += "." + f"{dt.microsecond:06d}".rstrip("0")
    return text + "Z"


def _retention(flags: dict[str, str]) -> str:
    parts = [
        v
        for v in (flags.get("storage.tsdb.retention.time", ""), flags.get("storage.tsdb.retention.size", ""))
        if v and v != "0" and v != "0B"
    ]
    return " or ".join(parts)


def _registry_value(request: web.Request, name: str) -> float | None:
    registry = request.app.get(REGISTRY_KEY)
    return registry.get_sample_value(name) if registry is not None else None


@api_handler
async def runtimeinfo(request: web.Request, form: Form) -> Result:
    state = request.app.get(RUNTIME_KEY)
    corrupt = _registry_value(request, "vigilops_tsdb_corrupted_blocks_total")
    reload_ok = _registry_value(request, "vigilops_config_last_reload_successful")
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return {
        "startTime": _go_time(state.start_time if state else 0.0),
        "CWD": os.getcwd(),
        "reloadConfigSuccess": bool(reload_ok) if reload_ok is not None else (
            state.reload_config_success if state else True
        ),
        "lastConfigTime": _go_time(state.last_config_time if state else 0.0),
        "corruptionCount": int(corrupt or 0),
        "goroutineCount": threading.active_count(),
        "GOMAXPROCS": cpus,
        "GOGC": str(gc.get_threshold()[0]) if gc.isenabled() else "off",
        "GODEBUG": os.environ.get("PYTHONDEVMODE", ""),
        "storageRetention": _retention(request.app.get(FLAGS_KEY, {})),
    }, []


def _stats_list(items: list[tuple[str, int]]) -> list[dict[str, Any]]:
    return [{"name": n, "value": v} for n, v in items]


@api_handler
async def tsdb_status(request: web.Request, form: Form) -> Result:
    limit = 10
    text = form.get("limit")
    if text != "":
        value = go_atoi(text)
        if value is None or value < 1:
            raise ApiError(ErrorType.BAD_DATA, "limit must be a positive number")
        limit = value
    db = request.app.get(DB_KEY)
    if db is None:
        raise ApiError(ErrorType.UNAVAILABLE, "TSDB not ready")
    st: HeadCardinality = await in_executor(head_cardinality, db, limit)
    return {
        "headStats": {
            "numSeries": st.num_series,
            "numLabelPairs": st.num_label_pairs,
            "chunkCount": st.chunk_count,
            "minTime": st.min_time,
            "maxTime": st.max_time,
        },
        "seriesCountByMetricName": _stats_list(st.series_count_by_metric_name),
        "labelValueCountByLabelName": _stats_list(st.label_value_count_by_label_name),
        "memoryInBytesByLabelName": _stats_list(st.memory_in_bytes_by_label_name),
        "seriesCountByLabelValuePair": _stats_list(st.series_count_by_label_value_pair),
    }, []


# ---- rules and alerts (empty until the ruler lands) ---------------------------------------
@api_handler
async def rules(request: web.Request, form: Form) -> Result:
    rule_type = form.get("type").lower()
    if rule_type not in ("", "alert", "record"):
        raise invalid_param("type", f"not supported value {params._go_quote(rule_type)}")
    return {"groups": []}, []


@api_handler
async def alerts(request: web.Request, form: Form) -> Result:
    return {"alerts": []}, []


__all__ = [
    "alerts",
    "buildinfo",
    "label_values",
    "labels",
    "metadata",
    "query_exemplars",
    "rules",
    "runtimeinfo",
    "series",
    "tsdb_status",
]

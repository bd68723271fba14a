"""`/federate`: the latest sample of every series matching any `match[]`, written in the
Prometheus text exposition format 0.0.4 for another server to scrape (Prometheus 2.42's
`web/federate.go`).

For each selector (`parser.ParseMetricSelector` syntax; no non-empty matcher is required)
the series with a sample in ``[now - lookback, now]`` are selected; series matched by
several selectors are written once. Each gets its latest sample in that window with its own
timestamp, unless that sample is a staleness marker (the format cannot carry one). Series
without a metric name are skipped. The global ``external_labels`` of the configuration are
appended to each series that lacks them, plus ``instance=""`` unless an external label
already names ``instance``. Families come sorted by metric name, series by labels, each
family under a ``# TYPE <name> untyped`` line.

Without any `match[]` the answer is empty; a selector that does not parse is answered
``400`` with the parser's message as plain text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

from aiohttp import web

from vigilops.http_api import MANAGER_KEY
from vigilops.query.api.keys import ENGINE_KEY, QUERYABLE_KEY
from vigilops.query.api.params import read_form
from vigilops.query.parser import ParseError, parse_metric_selector
from vigilops.query.printer import format_number
from vigilops.tsdb.api import Queryable, SelectHints
from vigilops.tsdb.model import METRIC_NAME, Labels, Matcher, is_stale

#: The text format's Content-Type, as Prometheus's `expfmt` negotiates it for scrapers.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_LOOKBACK_MS = 300_000
_INSTANCE = "instance"


def _escape(value: str) -> str:
    """A label value escaped for the text format: backslash, double quote, newline."""
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def format_sample_value(v: float) -> str:
    """A value as `expfmt`'s `writeFloat` writes it: Go's ``%g`` shortest, ``0`` for both
    zeros, ``NaN``, ``+Inf``, ``-Inf``."""
    return "0" if v == 0 else format_number(v)


def latest_samples(
    queryable: Queryable, selectors: Sequence[Sequence[Matcher]], now_ms: int, lookback_ms: int
) -> list[tuple[Labels, int, float]]:
    """The latest non-stale sample in ``[now - lookback, now]`` of every series matching
    any of `selectors`, each series once, sorted by labels."""
    mint, maxt = now_ms - lookback_ms, now_ms
    hints = SelectHints(start=mint, end=maxt)
    seen: dict[Labels, tuple[int, float] | None] = {}
    with queryable.querier(mint, maxt) as q:
        for matchers in selectors:
            for s in q.select(matchers, hints):
                if s.labels in seen or len(s.timestamps) == 0:
                    continue
                t, v = int(s.timestamps[-1]), float(s.values[-1])
                seen[s.labels] = None if is_stale(v) else (t, v)
    return sorted((ls, tv[0], tv[1]) for ls, tv in seen.items() if tv is not None)


def exposition(samples: Sequence[tuple[Labels, int, float]], external: Mapping[str, str]) -> bytes:
    """The text exposition of `samples` (sorted by labels) with `external` labels added."""
    extra = dict(external)
    extra.setdefault(_INSTANCE, "")
    extra_names = sorted(extra)
    # Labels sort by (name, value) pairs with __name__ first among the usual names, but a
    # label named below "__name__" would come before it: sort by metric name explicitly.
    ordered = sorted(samples, key=lambda s: (s[0].get(METRIC_NAME), s[0]))
    out: list[str] = []
    family = None
    for ls, t, v in ordered:
        name = ls.get(METRIC_NAME)
        if not name:
            continue  # Prometheus skips nameless series (with a warning)
        if name != family:
            out.append(f"# TYPE {name} untyped\n")
            family = name
        parts = [f'{k}="{_escape(val)}"' for k, val in ls.pairs() if k != METRIC_NAME and val]
        parts += [f'{k}="{_escape(extra[k])}"' for k in extra_names if not ls.get(k)]
        body = "{" + ",".join(parts) + "}" if parts else ""
        out.append(f"{name}{body} {format_sample_value(v)} {t}\n")
    return "".join(out).encode()


def _external_labels(request: web.Request) -> dict[str, str]:
    manager = request.app.get(MANAGER_KEY)
    cfg = manager.config if manager is not None else None
    return dict(cfg.global_config.external_labels) if cfg is not None else {}


def _lookback_ms(request: web.Request) -> int:
    engine = request.app.get(ENGINE_KEY)
    return engine.options.lookback_delta_ms if engine is not None else DEFAULT_LOOKBACK_MS


async def federate(request: web.Request) -> web.Response:
    form = await read_form(request)
    selectors: list[list[Matcher]] = []
    for text in form.getall("match[]"):
        try:
            selectors.append(parse_metric_selector(text))
        except ParseError as exc:
            return web.Response(
                status=400,
                text=f"{exc}\n",
                headers={"X-Content-Type-Options": "nosniff"},
                content_type="text/plain",
                charset="utf-8",
            )
    now_ms = time.time_ns() // 1_000_000
    external = _external_labels(request)
    lookback = _lookback_ms(request)
    queryable = request.app[QUERYABLE_KEY]

    def run() -> bytes:
        if not selectors:
            return b""
        return exposition(latest_samples(queryable, selectors, now_ms, lookback), external)

    try:
        body = await asyncio.get_running_loop().run_in_executor(None, run)
    except Exception as exc:  # storage failure: Prometheus answers 500 with the error
        return web.Response(status=500, text=f"{exc}\n", content_type="text/plain", charset="utf-8")
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def add_routes(app: web.Application) -> None:
    """Mount `GET /federate` (the app carries `QUERYABLE_KEY`; `ENGINE_KEY` and the scrape
    manager are optional: the lookback delta and external labels come from them)."""
    app.router.add_get("/federate", federate)


__all__ = ["CONTENT_TYPE", "add_routes", "exposition", "federate", "latest_samples"]

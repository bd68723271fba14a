"""Run the compatibility suite: data set → both importers → both servers → every case.

`run` generates the data set into a work directory, imports it with ``promtool tsdb
create-blocks-from openmetrics`` (reference) and ``vigilops tsdb import openmetrics``
(target), starts ``/usr/bin/prometheus`` and ``vigilops server`` on loopback with a
configuration that scrapes nothing, runs every query case as instant queries at several
times and as range queries over several grids through both HTTP APIs (a small pool of
concurrent requests), runs the metadata calls Grafana makes, and compares the answers with
`compare`. With ``target="prometheus"`` the target is a second Prometheus on a copy of the
reference data, which must agree 100 %: that validates the harness itself.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp

from . import dataset
from .compare import (
    DEFAULT_TOLERANCE,
    Answer,
    CompareMode,
    Tolerance,
    compare_api,
    compare_query,
    fine_differences,
)
from .queries import Case, cases

Target = Literal["vigilops", "prometheus"]
Profile = Literal["full", "quick"]

#: Per-request time limit; Prometheus answers any case in milliseconds.
REQUEST_TIMEOUT_S = 120.0
#: How long a server may take to open its data and answer.
STARTUP_TIMEOUT_S = 90.0
#: The configuration both servers run: no scrape targets, so nothing but the imported data
#: is visible, and the default evaluation interval (subqueries without a step use it).
CONFIG_YAML = "global:\n  scrape_interval: 1h\n  evaluation_interval: 1m\nscrape_configs: []\n"

START_S = dataset.START_MS / 1000
END_S = dataset.END_MS / 1000


# ---- evaluations ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Evaluation:
    """One way of running a case: an instant query at `start`, or a range query."""

    kind: Literal["instant", "range"]
    start: float
    end: float = 0.0
    step: float = 0.0

    @property
    def name(self) -> str:
        if self.kind == "instant":
            return f"instant@{self.start:.3f}"
        return f"range[{self.start:.3f},{self.end:.3f},{self.step:g}s]"

    @property
    def path(self) -> str:
        return "/api/v1/query" if self.kind == "instant" else "/api/v1/query_range"

    def params(self, query: str) -> dict[str, str]:
        if self.kind == "instant":
            return {"query": query, "time": f"{self.start:.3f}"}
        return {"query": query, "start": f"{self.start:.3f}", "end": f"{self.end:.3f}", "step": f"{self.step:g}"}


def instant(t: float) -> Evaluation:
    return Evaluation("instant", t)


def range_(start: float, end: float, step: float) -> Evaluation:
    return Evaluation("range", start, end, step)


#: The evaluation times and grids of each profile. Instant: aligned to the 15 s grid (the
#: last slot; ``h1`` scrapes exactly there), unaligned in the middle and 20 min before the
#: end, 100 s after the first sample (windows reach before the data), 4 min after the last
#: (only the lookback keeps series alive), exactly 5 min after ``h1``'s last sample (the
#: lookback is closed at ``t - 5m``), before any data. Range: whole data ± 5 min at 60 s,
#: unaligned start at 37 s, the last half hour at 15 s, a single step, steps of 7 min
#: (longer than the lookback), 2 s steps over 10 min (windows slide by less than the
#: scrape interval).
EVALUATIONS: dict[Profile, tuple[Evaluation, ...]] = {
    "full": (
        instant(END_S),
        instant(END_S - 3600 + 7.5),
        instant(END_S - 1234.567),
        instant(START_S + 100.123),
        instant(END_S + 240),
        instant(END_S + 300),
        instant(START_S - 30),
        range_(START_S - 300, END_S + 300, 60),
        range_(START_S + 7.25, END_S, 37),
        range_(END_S - 1800, END_S, 15),
        range_(END_S - 600, END_S - 600, 60),
        range_(START_S - 3600, END_S + 3600, 420),
        range_(END_S - 2400 + 0.5, END_S - 1800, 2),
    ),
    "quick": (
        instant(END_S - 3600 + 7.5),
        instant(START_S + 100.123),
        instant(END_S + 300),
        range_(START_S - 300, END_S + 300, 60),
        range_(END_S - 1800 + 7.25, END_S, 37),
    ),
}


# ---- metadata calls (Grafana's, USERS.md §2.1) -----------------------------------------------
@dataclass(frozen=True)
class ApiCase:
    """One non-PromQL API call compared with `compare_api` (or `compare_query` for
    ``mode="query"``: query endpoints called with odd parameters)."""

    name: str
    method: Literal["GET", "POST"]
    path: str
    params: tuple[tuple[str, str], ...] = ()
    mode: CompareMode | Literal["query"] = "set"


def _window(start: float, end: float) -> tuple[tuple[str, str], ...]:
    return (("start", f"{start:.0f}"), ("end", f"{end:.0f}"))


_ALL = _window(START_S - 3600, END_S + 3600)
_LAST_10M = _window(END_S - 600, END_S)

API_CASES: tuple[ApiCase, ...] = (
    ApiCase("labels", "GET", "/api/v1/labels"),
    ApiCase("labels POST start/end", "POST", "/api/v1/labels", _ALL),
    ApiCase("labels limit (Grafana)", "POST", "/api/v1/labels", (*_ALL, ("limit", "40000"))),
    ApiCase("labels match[] metric", "GET", "/api/v1/labels", (("match[]", "demo_memory_bytes"), *_ALL)),
    ApiCase("labels two match[]", "POST", "/api/v1/labels", (("match[]", "up"), ("match[]", "demo_rpc_latency_seconds"))),
    ApiCase("labels match[] last 10m", "GET", "/api/v1/labels", (("match[]", "demo_churn_items"), *_LAST_10M)),
    ApiCase("labels bad match[]", "GET", "/api/v1/labels", (("match[]", "{"),), "status"),
    ApiCase("label __name__ values", "GET", "/api/v1/label/__name__/values"),
    ApiCase("label __name__ values start/end", "GET", "/api/v1/label/__name__/values", _ALL),
    ApiCase("label job values match[]", "GET", "/api/v1/label/job/values", (("match[]", "up"), *_ALL)),
    ApiCase("label room values", "GET", "/api/v1/label/room/values"),
    ApiCase("label le values", "GET", "/api/v1/label/le/values", (("match[]", '{instance="h3:9100"}'),)),
    ApiCase("label instance values last 10m", "GET", "/api/v1/label/instance/values", _LAST_10M),
    ApiCase("label pod values match[] last 10m", "GET", "/api/v1/label/pod/values",
            (("match[]", "demo_churn_items"), *_LAST_10M)),
    ApiCase("label values unknown label", "GET", "/api/v1/label/nonexistent/values"),
    ApiCase("label values bad name", "GET", "/api/v1/label/not-a-label/values", (), "status"),
    ApiCase("series churn", "GET", "/api/v1/series", (("match[]", "demo_churn_items"), *_ALL)),
    ApiCase("series churn last 10m", "GET", "/api/v1/series", (("match[]", "demo_churn_items"), *_LAST_10M)),
    ApiCase("series all (Grafana)", "POST", "/api/v1/series", (("match[]", '{__name__!=""}'), *_ALL, ("limit", "40000"))),
    ApiCase("series awkward", "GET", "/api/v1/series",
            (("match[]", 'demo_temperature_celsius{room=~".*\\\\\\\\.*|new.*|(?s)new.*"}'),)),
    ApiCase("series two match[]", "GET", "/api/v1/series", (("match[]", "up"), ("match[]", 'demo_num_cpus{job="db"}'))),
    ApiCase("series before data", "GET", "/api/v1/series",
            (("match[]", "up"), *_window(START_S - 1200, START_S - 600))),
    ApiCase("series after data", "GET", "/api/v1/series",
            (("match[]", "up"), *_window(END_S + 86400, END_S + 86400 + 600))),
    ApiCase("label __name__ values match[] job", "GET", "/api/v1/label/__name__/values",
            (("match[]", '{job="special"}'), ("match[]", '{case="zero"}'))),
    ApiCase("labels last 10m", "GET", "/api/v1/labels", _LAST_10M),
    ApiCase("series no match[]", "GET", "/api/v1/series", (), "status"),
    ApiCase("series empty matcher", "GET", "/api/v1/series", (("match[]", '{job=""}'),), "status"),
    ApiCase("metadata", "GET", "/api/v1/metadata", (), "exact"),
    ApiCase("metadata limit", "GET", "/api/v1/metadata", (("limit", "1000"),), "exact"),
    ApiCase("metadata metric", "GET", "/api/v1/metadata", (("metric", "up"),), "exact"),
    ApiCase("buildinfo", "GET", "/api/v1/status/buildinfo", (), "keys"),
    ApiCase("flags", "GET", "/api/v1/status/flags", (), "status"),
    ApiCase("exemplars probe (Grafana, ms)", "GET", "/api/v1/query_exemplars",
            (("query", "test"), ("start", f"{START_S * 1000:.0f}"), ("end", f"{END_S * 1000:.0f}")), "exact"),
    ApiCase("exemplars", "POST", "/api/v1/query_exemplars",
            (("query", "demo_requests_total"), *_ALL), "exact"),
    ApiCase("health check 1+1 at t=4", "POST", "/api/v1/query", (("query", "1+1"), ("time", "4")), "query"),
    ApiCase("query GET", "GET", "/api/v1/query", (("query", "up"), ("time", f"{END_S:.0f}")), "query"),
    ApiCase("query RFC 3339 time", "GET", "/api/v1/query", (("query", "up"), ("time", "2023-12-01T00:30:00Z")), "query"),
    ApiCase("query with timeout", "POST", "/api/v1/query",
            (("query", "sum(up)"), ("time", f"{END_S:.0f}"), ("timeout", "5s")), "query"),
    ApiCase("query no query", "POST", "/api/v1/query", (("time", f"{END_S:.0f}"),), "query"),
    ApiCase("query bad time", "POST", "/api/v1/query", (("query", "up"), ("time", "yesterday")), "query"),
    ApiCase("query bad timeout", "POST", "/api/v1/query", (("query", "up"), ("timeout", "soon")), "query"),
    ApiCase("query_range Grafana aligned", "POST", "/api/v1/query_range",
            (("query", "sum by (job) (rate(demo_requests_total[1m]))"),
             ("start", f"{START_S:.0f}"), ("end", f"{END_S:.0f}"), ("step", "60")), "query"),
    ApiCase("query_range GET duration step", "GET", "/api/v1/query_range",
            (("query", "up"), ("start", f"{END_S - 600:.0f}"), ("end", f"{END_S:.0f}"), ("step", "1m")), "query"),
    ApiCase("query_range step 0", "POST", "/api/v1/query_range",
            (("query", "up"), ("start", f"{START_S:.0f}"), ("end", f"{END_S:.0f}"), ("step", "0")), "query"),
    ApiCase("query_range negative step", "POST", "/api/v1/query_range",
            (("query", "up"), ("start", f"{START_S:.0f}"), ("end", f"{END_S:.0f}"), ("step", "-15")), "query"),
    ApiCase("query_range end before start", "POST", "/api/v1/query_range",
            (("query", "up"), ("start", f"{END_S:.0f}"), ("end", f"{START_S:.0f}"), ("step", "15")), "query"),
    ApiCase("query_range too many points", "POST", "/api/v1/query_range",
            (("query", "up"), ("start", f"{START_S:.0f}"), ("end", f"{END_S:.0f}"), ("step", "0.5")), "query"),
    ApiCase("query_range 11000 points", "POST", "/api/v1/query_range",
            (("query", "vector(1)"), ("start", "0"), ("end", "10999"), ("step", "1")), "query"),
    ApiCase("query_range no step", "POST", "/api/v1/query_range",
            (("query", "up"), ("start", f"{START_S:.0f}"), ("end", f"{END_S:.0f}")), "query"),
    ApiCase("query time sub-ms .0005", "POST", "/api/v1/query", (("query", "time()"), ("time", f"{END_S:.0f}.0005")), "query"),
    ApiCase("query time sub-ms .9996", "POST", "/api/v1/query", (("query", "time()"), ("time", f"{END_S:.0f}.9996")), "query"),
    ApiCase("query time ns digits", "POST", "/api/v1/query",
            (("query", "demo_memory_bytes"), ("time", f"{END_S:.0f}.123456789")), "query"),
    ApiCase("query time exponent", "POST", "/api/v1/query", (("query", "time()"), ("time", "1.7013924e9")), "query"),
    ApiCase("query time negative", "POST", "/api/v1/query", (("query", "time()"), ("time", "-1.5")), "query"),
    ApiCase("query RFC 3339 fraction", "POST", "/api/v1/query",
            (("query", "time()"), ("time", "2023-12-01T00:30:00.123456Z")), "query"),
    ApiCase("query RFC 3339 offset", "POST", "/api/v1/query",
            (("query", "demo_num_cpus"), ("time", "2023-12-01T02:30:00+02:00")), "query"),
    ApiCase("query_range step 1m30s", "POST", "/api/v1/query_range",
            (("query", "demo_num_cpus"), ("start", f"{END_S - 900:.0f}"), ("end", f"{END_S:.0f}"), ("step", "1m30s")), "query"),
    ApiCase("query_range step 15.5", "POST", "/api/v1/query_range",
            (("query", "demo_num_cpus"), ("start", f"{END_S - 900:.0f}"), ("end", f"{END_S:.0f}"), ("step", "15.5")), "query"),
    ApiCase("query_range RFC 3339", "GET", "/api/v1/query_range",
            (("query", "sum(demo_num_cpus)"), ("start", "2023-12-01T00:00:00Z"), ("end", "2023-12-01T00:10:00.5Z"),
             ("step", "30s")), "query"),
    ApiCase("query_range start == end", "POST", "/api/v1/query_range",
            (("query", "demo_num_cpus"), ("start", f"{END_S:.0f}"), ("end", f"{END_S:.0f}"), ("step", "15")), "query"),
    ApiCase("query_range step > range", "POST", "/api/v1/query_range",
            (("query", "demo_num_cpus"), ("start", f"{END_S - 10:.0f}"), ("end", f"{END_S:.0f}"), ("step", "60")), "query"),
    ApiCase("query_range string", "POST", "/api/v1/query_range",
            (("query", '"s"'), ("start", f"{START_S:.0f}"), ("end", f"{END_S:.0f}"), ("step", "60")), "query"),
)


# ---- results and report ---------------------------------------------------------------------
@dataclass
class CaseResult:
    """The outcome of one case over all its evaluations."""

    case: Case
    diffs: list[tuple[str, str]] = field(default_factory=list)  # (evaluation name, diff)
    reference_problem: str | None = None
    #: Answers equal within the tolerance but not bit for bit, or printed differently
    #: (`compare.fine_differences`; first evaluation that has any).
    inexact: list[str] = field(default_factory=list)
    printed: list[str] = field(default_factory=list)
    test_seconds: float = 0.0  # time the target took, summed over the evaluations
    ref_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.diffs


@dataclass
class ApiResult:
    case: ApiCase
    diff: str | None


#: Diff text patterns → failure class, for the report's summary (first match wins).
_CLASSES: tuple[tuple[str, str], ...] = (
    (r"got HTTP 0|not JSON", "no answer / not JSON"),
    (r"expected HTTP \d+ success.*\n.*got HTTP \d+ (\w+)", "fails where Prometheus succeeds ({0})"),
    (r"expected HTTP \d+ (\w+):.*\n.*got HTTP \d+ success", "succeeds where Prometheus fails ({0})"),
    (r"expected HTTP \d+ (\w+):.*\n.*got HTTP \d+ (\w+)", "different error ({0} vs {1})"),
    (r"^resultType", "different resultType"),
    (r"^(missing|unexpected) series", "different series set"),
    (r"points expected", "different points (timestamps)"),
    (r"timestamp", "different timestamps"),
    (r"values differ|: expected .*, got|^value:", "different values"),
    (r"^order", "different order"),
    (r"^series order", "matrix not sorted by labels"),
)


def classify(diff: str) -> str:
    for pattern, label in _CLASSES:
        m = re.search(pattern, diff, re.M)
        if m:
            return label.format(*m.groups())
    return "other"


def build_report(
    results: Sequence[CaseResult],
    api: Sequence[ApiResult],
    evaluations: Sequence[Evaluation],
    meta: dict[str, Any],
) -> dict[str, Any]:
    """The JSON report: summary, per-group counts, failure classes, every failure."""
    passed = sum(r.passed for r in results)
    compared = sum(len(_evaluations_of(r.case, evaluations)) for r in results)
    failed_evals = sum(len(r.diffs) for r in results)
    groups: dict[str, dict[str, Any]] = {}
    for r in results:
        g = groups.setdefault(r.case.group, {"cases": 0, "passed": 0, "ref_seconds": 0.0, "test_seconds": 0.0})
        g["cases"] += 1
        g["passed"] += int(r.passed)
        g["ref_seconds"] = round(g["ref_seconds"] + r.ref_seconds, 3)
        g["test_seconds"] = round(g["test_seconds"] + r.test_seconds, 3)
    classes: dict[str, dict[str, Any]] = {}
    for r in results:
        if r.passed:
            continue
        seen: set[str] = set()
        for ev_name, diff in r.diffs:
            cls = classify(diff)
            if cls in seen:
                continue
            seen.add(cls)
            entry = classes.setdefault(cls, {"cases": 0, "examples": []})
            entry["cases"] += 1
            if len(entry["examples"]) < 8:
                entry["examples"].append({"query": r.case.query, "evaluation": ev_name, "diff": diff})
    api_passed = sum(a.diff is None for a in api)
    return {
        **meta,
        "evaluations": [e.name for e in evaluations],
        "summary": {
            "cases": len(results),
            "passed": passed,
            "pass_rate": round(passed / len(results), 4) if results else 0.0,
            "evaluations_compared": compared,
            "evaluations_passed": compared - failed_evals,
            "api_calls": len(api),
            "api_passed": api_passed,
            "reference_problems": sum(r.reference_problem is not None for r in results),
            "inexact_cases": sum(bool(r.inexact) for r in results),
            "printed_differently": sum(bool(r.printed) for r in results),
            "ref_seconds": round(sum(r.ref_seconds for r in results), 2),
            "test_seconds": round(sum(r.test_seconds for r in results), 2),
        },
        "groups": groups,
        "failure_classes": dict(sorted(classes.items(), key=lambda kv: -kv[1]["cases"])),
        "failures": [
            {"query": r.case.query, "group": r.case.group,
             "diffs": [{"evaluation": e, "diff": d} for e, d in r.diffs]}
            for r in results if not r.passed
        ],
        "api_failures": [
            {"name": a.case.name, "path": a.case.path, "params": list(a.case.params), "diff": a.diff}
            for a in api if a.diff is not None
        ],
        "reference_problems": [
            {"query": r.case.query, "problem": r.reference_problem}
            for r in results if r.reference_problem is not None
        ],
        "inexact": [{"query": r.case.query, "notes": r.inexact} for r in results if r.inexact],
        "printed_differently": [{"query": r.case.query, "notes": r.printed} for r in results if r.printed],
        "slowest": [
            {"query": r.case.query, "test_seconds": round(r.test_seconds, 3), "ref_seconds": round(r.ref_seconds, 3)}
            for r in sorted(results, key=lambda r: -r.test_seconds)[:20]
        ],
        "cases_passed": {r.case.query: r.passed for r in results},
    }


def summary_text(report: dict[str, Any], failures: int = 10) -> str:
    """A human-readable summary of `report` (what the CLI prints)."""
    s = report["summary"]
    lines = [
        f"PromQL compatibility of {report.get('target', '?')} against {report.get('reference', '?')}: "
        f"{s['passed']}/{s['cases']} cases pass ({100 * s['pass_rate']:.1f} %), "
        f"{s['evaluations_passed']}/{s['evaluations_compared']} evaluations; "
        f"API calls {s['api_passed']}/{s['api_calls']}",
    ]
    lines.append(
        f"  time answering: reference {s['ref_seconds']:.1f} s, target {s['test_seconds']:.1f} s; "
        f"passing cases with values equal only within the tolerance: {s['inexact_cases']}, "
        f"printed differently: {s['printed_differently']}"
    )
    for p in report["reference_problems"]:
        lines.append(f"  reference problem: {p['query']}: {p['problem']}")
    lines.append("  by group: " + ", ".join(
        f"{g} {v['passed']}/{v['cases']}" for g, v in report["groups"].items()
    ))
    for cls, entry in report["failure_classes"].items():
        lines.append(f"  [{entry['cases']:4d}] {cls}: e.g. {entry['examples'][0]['query']}")
    for f in report["failures"][:failures]:
        d = f["diffs"][0]
        lines.append(f"--- {f['query']}  ({d['evaluation']}, {len(f['diffs'])} evaluations differ)")
        lines.extend("    " + line for line in d["diff"].splitlines())
    for a in report["api_failures"]:
        lines.append(f"--- API {a['name']}: {a['diff']}")
    for kind in ("printed_differently", "inexact"):
        for f in report[kind][: failures // 3]:
            lines.append(f"--- {kind.replace('_', ' ')}: {f['query']}: {'; '.join(f['notes'])}")
    return "\n".join(lines)


# ---- running the cases --------------------------------------------------------------------
def _evaluations_of(case: Case, evaluations: Sequence[Evaluation]) -> list[Evaluation]:
    return [
        e for e in evaluations
        if (e.kind == "instant" and case.instant) or (e.kind == "range" and case.range)
    ]


async def _fetch(
    session: aiohttp.ClientSession, base: str, method: str, path: str,
    params: Sequence[tuple[str, str]] | dict[str, str],
) -> Answer:
    url = base + path
    try:
        if method == "POST":
            async with session.post(url, data=list(params.items()) if isinstance(params, dict) else list(params)) as resp:
                return Answer.from_bytes(resp.status, await resp.read())
        async with session.get(url, params=list(params.items()) if isinstance(params, dict) else list(params)) as resp:
            return Answer.from_bytes(resp.status, await resp.read())
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        return Answer(0, None, f"{type(exc).__name__}: {exc}")


async def _timed(aw: Awaitable[Answer]) -> tuple[Answer, float]:
    t0 = time.monotonic()
    answer = await aw
    return answer, time.monotonic() - t0


def _check_reference(case: Case, answers: list[Answer]) -> str | None:
    statuses = {a.body.get("status") if isinstance(a.body, dict) else None for a in answers}
    if case.expect == "fail" and "error" not in statuses:
        return "Prometheus succeeded on a case that expects an error"
    if case.expect == "ok" and statuses != {"success"}:
        return "Prometheus failed a case that expects success"
    if None in statuses:
        return "Prometheus did not answer JSON"
    return None


async def _run_case(
    session: aiohttp.ClientSession, sem: asyncio.Semaphore, ref: str, test: str,
    case: Case, evaluations: Sequence[Evaluation], tol: Tolerance,
) -> CaseResult:
    result = CaseResult(case)
    ref_answers = []
    for ev in _evaluations_of(case, evaluations):
        params = ev.params(case.query)
        async with sem:
            (r_answer, r_s), (t_answer, t_s) = await asyncio.gather(
                _timed(_fetch(session, ref, "POST", ev.path, params)),
                _timed(_fetch(session, test, "POST", ev.path, params)),
            )
        result.ref_seconds += r_s
        result.test_seconds += t_s
        ref_answers.append(r_answer)
        diff = compare_query(r_answer, t_answer, ordered=case.ordered and ev.kind == "instant", tol=tol,
                             sorted_matrix=ev.kind == "range")
        if diff is not None:
            result.diffs.append((ev.name, diff))
        elif not result.inexact or not result.printed:
            fine = fine_differences(r_answer, t_answer)
            result.inexact = result.inexact or fine.inexact
            result.printed = result.printed or fine.printed
    result.reference_problem = _check_reference(case, ref_answers)
    return result


async def _run_api_case(session: aiohttp.ClientSession, ref: str, test: str, case: ApiCase) -> ApiResult:
    r_answer, t_answer = await asyncio.gather(
        _fetch(session, ref, case.method, case.path, case.params),
        _fetch(session, test, case.method, case.path, case.params),
    )
    if case.mode == "query":
        return ApiResult(case, compare_query(r_answer, t_answer))
    return ApiResult(case, compare_api(r_answer, t_answer, case.mode))


async def run_all(
    ref: str, test: str, all_cases: Sequence[Case], evaluations: Sequence[Evaluation],
    concurrency: int = 4, tol: Tolerance = DEFAULT_TOLERANCE,
) -> tuple[list[CaseResult], list[ApiResult]]:
    """Run every case and API call against the two base URLs."""
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=2 * concurrency + 2)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        api = [await _run_api_case(session, ref, test, c) for c in API_CASES]
        sem = asyncio.Semaphore(concurrency)
        results = await asyncio.gather(
            *(_run_case(session, sem, ref, test, c, evaluations, tol) for c in all_cases)
        )
    return list(results), api


# ---- servers ------------------------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _binary(name: str) -> str:
    path = shutil.which(name) or f"/usr/bin/{name}"
    if not os.path.exists(path):
        raise RuntimeError(f"{name} is not installed (Debian package 'prometheus')")
    return path


def _run(args: list[str], what: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


@contextmanager
def _process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server for the duration of the block; always terminate and reap it."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until the server lists label names (its data is open)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(base + "/api/v1/label/__name__/values", timeout=5) as resp:
                if resp.status == 200 and b"demo_memory_bytes" in resp.read():
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{base} not ready after {STARTUP_TIMEOUT_S:.0f} s: {log.read_text(errors='replace')[-2000:]}")


def prometheus_args(config: Path, data_dir: Path, port: int) -> list[str]:
    return [
        _binary("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=100y",
    ]


def vigilops_args(config: Path, data_dir: Path, port: int) -> list[str]:
    return [
        sys.executable, "-m", "vigilops.cli", "server", "--config.file", str(config),
        "--storage.tsdb.path", str(data_dir), "--web.listen-address", f"127.0.0.1:{port}",
        "--storage.tsdb.retention.time", "100y",
    ]


@dataclass
class Setup:
    """What `prepare` built in the work directory."""

    workdir: Path
    data: dataset.Dataset
    config: Path
    prometheus_dir: Path
    vigilops_dir: Path | None
    timings: dict[str, float]


def prepare(workdir: Path, target: Target) -> Setup:
    """Write the data set and import it (promtool for the reference; ``vigilops tsdb
    import`` for a VigilOps target, a copy of the reference data for a Prometheus one)."""
    timings: dict[str, float] = {}
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    source = workdir / "data.om"
    data = dataset.write(source)
    config = workdir / "config.yml"
    config.write_text(CONFIG_YAML)
    timings["generate_s"] = round(time.monotonic() - t0, 2)
    prom_dir = workdir / "prometheus"
    shutil.rmtree(prom_dir, ignore_errors=True)
    t0 = time.monotonic()
    _run([_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source), str(prom_dir)],
         "promtool tsdb create-blocks-from openmetrics")
    timings["promtool_import_s"] = round(time.monotonic() - t0, 2)
    vig_dir = None
    if target == "vigilops":
        vig_dir = workdir / "vigilops"
        shutil.rmtree(vig_dir, ignore_errors=True)
        t0 = time.monotonic()
        _run([sys.executable, "-m", "vigilops.cli", "tsdb", "import", "openmetrics", str(source), str(vig_dir)],
             "vigilops tsdb import openmetrics")
        timings["vigilops_import_s"] = round(time.monotonic() - t0, 2)
    return Setup(workdir, data, config, prom_dir, vig_dir, timings)


@contextmanager
def servers(setup: Setup, target: Target) -> Iterator[tuple[str, str]]:
    """Start the reference and the target server; yield their base URLs."""
    with ExitStack() as stack:
        ref_port, test_port = _free_port(), _free_port()
        ref_log = setup.workdir / "reference.log"
        ref = stack.enter_context(_process(prometheus_args(setup.config, setup.prometheus_dir, ref_port), ref_log))
        test_log = setup.workdir / "target.log"
        if target == "vigilops":
            assert setup.vigilops_dir is not None
            args = vigilops_args(setup.config, setup.vigilops_dir, test_port)
        else:
            copy = setup.workdir / "prometheus-copy"
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(setup.prometheus_dir, copy)
            args = prometheus_args(setup.config, copy, test_port)
        test_proc = stack.enter_context(_process(args, test_log))
        ref_url, test_url = f"http://127.0.0.1:{ref_port}", f"http://127.0.0.1:{test_port}"
        t0 = time.monotonic()
        _wait_ready(ref_url, ref, ref_log)
        _wait_ready(test_url, test_proc, test_log)
        setup.timings["startup_s"] = round(time.monotonic() - t0, 2)
        yield ref_url, test_url


def reference_version() -> str:
    out = subprocess.run([_binary("prometheus"), "--version"], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).splitlines()[:1]
    m = re.search(r"version (\S+)", first[0]) if first else None
    return f"prometheus {m.group(1)}" if m else "prometheus"


def select_cases(match: str | None = None, group: str | None = None) -> list[Case]:
    """The cases whose query matches the regular expression `match` and whose group
    equals `group` (all of them by default)."""
    out = cases()
    if match:
        pattern = re.compile(match)
        out = [c for c in out if pattern.search(c.query)]
    if group:
        out = [c for c in out if c.group == group]
    return out


def run(
    target: Target = "vigilops",
    profile: Profile = "full",
    workdir: Path | None = None,
    selected: Sequence[Case] | None = None,
    concurrency: int = 4,
    tol: Tolerance = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    """Set everything up, run every case, tear down; return the report."""
    chosen = list(selected) if selected is not None else cases()
    evaluations = EVALUATIONS[profile]
    with ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="promql-compat-")))
        setup = prepare(workdir, target)
        with servers(setup, target) as (ref_url, test_url):
            t0 = time.monotonic()
            results, api = asyncio.run(run_all(ref_url, test_url, chosen, evaluations, concurrency, tol))
            setup.timings["queries_s"] = round(time.monotonic() - t0, 2)
        meta = {
            "reference": reference_version(),
            "target": target,
            "profile": profile,
            "tolerance": {"fraction": tol.fraction, "margin": tol.margin},
            "dataset": {"series": setup.data.series, "samples": setup.data.samples,
                        "start_ms": setup.data.start_ms, "end_ms": setup.data.end_ms},
            "timings": setup.timings,
        }
        return build_report(results, api, evaluations, meta)


def results_markdown(report: dict[str, Any], written_by: str) -> str:
    """The pass rate, per group and per failure class, as Markdown (RESULTS.md)."""
    s = report["summary"]
    lines = [
        f"PromQL compatibility with {report['reference']}: **{s['passed']}/{s['cases']} query cases "
        f"({100 * s['pass_rate']:.1f} %)** agree ({s['evaluations_passed']}/{s['evaluations_compared']} "
        f"evaluations: {len(report['evaluations'])} per case), API calls {s['api_passed']}/{s['api_calls']}.",
        "",
        f"Written by {written_by}; `python -m vigilops.compat.promql_compat` runs the full suite.",
        "",
        "| group | cases | pass |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {g} | {v['cases']} | {v['passed']} |" for g, v in report["groups"].items()]
    lines += [
        "",
        f"Passing cases whose values agree only within the tolerance (relative "
        f"{report['tolerance']['fraction']:g}), not bit for bit: {s['inexact_cases']}; "
        f"printed differently: {s['printed_differently']}.",
    ]
    if report["failure_classes"]:
        lines += ["", "| failure class | cases | example |", "| --- | ---: | --- |"]
        for cls, entry in report["failure_classes"].items():
            example = entry["examples"][0]["query"].replace("|", "\\|")
            lines.append(f"| {cls} | {entry['cases']} | `{example}` |")
    return "\n".join(lines) + "\n"

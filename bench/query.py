"""Dashboard query latency: VigilOps, Prometheus and VictoriaMetrics on the same data.

The dataset is loaded once into each system (VigilOps: ``vigilops tsdb import openmetrics
--compact``; Prometheus: promtool blocks, then its own compaction; VictoriaMetrics: the
import API and a forced merge) and the data directories are kept under
``bench/out/query-data/<dataset>/`` for the next run. Then the systems are served at once on
loopback ports, with no scrape targets, and every query of `QUERIES` is sent over HTTP
sequentially: one warm-up request to each, then `repeats` rounds of one timed request to each
system, in an order that rotates (this host's speed drifts by tens of percent over minutes:
measured one system after the other, the ratios moved with it). VictoriaMetrics runs with its
response cache off (``-search.disableCache``), so all three compute every answer.

Latency is the client's wall time of the HTTP request (connection kept open), the way Grafana
sees it. Range queries cover the whole dataset at a 60 s step; instant queries are at its
last timestamp.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import statistics
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from .dataset import Dataset
from .disk import vigilops_binary
from .machine import PROMETHEUS, VICTORIA_METRICS
from .procs import Server, free_port

D = dict[str, Any]


@dataclass(frozen=True)
class Query:
    name: str
    expr: str
    kind: str  # "range" (whole dataset, 60 s step) or "instant" (at the last sample)


QUERIES: tuple[Query, ...] = (
    Query("rate", "rate(node_cpu_seconds_total[5m])", "range"),
    Query("sum by rate", 'sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))', "range"),
    Query("histogram_quantile",
          "histogram_quantile(0.9, sum by (le) (rate(synthetic_http_request_duration_seconds_bucket[5m])))",
          "range"),
    Query("gauge ratio", "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", "range"),
    Query("topk", "topk(5, node_filesystem_avail_bytes)", "range"),
    Query("rate", "rate(node_cpu_seconds_total[5m])", "instant"),
    Query("count by name", 'count by (__name__) ({__name__=~".+"})', "instant"),
)

RANGE_STEP_S = 60
SYSTEMS = ("vigilops", "prometheus", "victoriametrics")
NAMES = {"vigilops": "VigilOps", "prometheus": "Prometheus", "victoriametrics": "VictoriaMetrics"}

_EMPTY_CONFIG = "global:\n  scrape_interval: 1h\n  evaluation_interval: 1h\nscrape_configs: []\n"


@dataclass
class Timing:
    query: str
    expr: str
    kind: str
    median_ms: float
    p95_ms: float
    series: int
    points: int
    error: str = ""


@dataclass
class SystemResult:
    system: str
    timings: list[Timing] = field(default_factory=list)
    load_note: str = ""


# -- loading ---------------------------------------------------------------------------------

def data_root(ds: Dataset, out_dir: str) -> str:
    stem = os.path.splitext(os.path.basename(ds.path))[0]
    return os.path.join(out_dir, "query-data", stem)


def ensure_loaded(ds: Dataset, system: str, root: str, step: Any) -> str:
    """Load the dataset into `system` unless a previous run did; return its data directory."""
    from .disk import vigilops_backfill
    from .peers import prometheus_backfill, victoriametrics_import

    sub = {"vigilops": "vigilops", "prometheus": "prometheus", "victoriametrics": "victoria-metrics"}[system]
    data_dir = os.path.join(root, sub)
    marker = os.path.join(root, f"{system}.loaded.json")
    loaded = {"dataset": ds.path, "layout": _vigilops_layout() if system == "vigilops" else ""}
    if os.path.exists(marker):
        with open(marker) as f:
            before = json.load(f)
        if {k: before.get(k, "") for k in loaded} == loaded:
            return data_dir
        shutil.rmtree(data_dir, ignore_errors=True)  # loaded by another version: again
    os.makedirs(root, exist_ok=True)
    log = os.path.join(root, f"{system}.load.log")
    step(f"query: loading the dataset into {NAMES[system]} (once; log: {log})")
    loader = {"vigilops": vigilops_backfill, "prometheus": prometheus_backfill,
              "victoriametrics": victoriametrics_import}[system]
    loader(ds, root, log)
    with open(marker, "w") as f:
        json.dump({**loaded, "loaded_at": time.time()}, f)
    return data_dir


def _vigilops_layout() -> str:
    """A digest of the code that decides how VigilOps lays a block out (frame cuts and
    encoding): data loaded by an earlier version is loaded again, not timed as it was."""
    import hashlib

    from vigilops.tsdb.block import writer
    from vigilops.tsdb.chunks import frame

    digest = hashlib.sha256()
    for module in (writer, frame):
        with open(module.__file__ or "", "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]


@contextmanager
def serving(system: str, data_dir: str, root: str) -> Iterator[str]:
    """Run `system` on `data_dir` without scrape targets; yield its base URL."""
    port = free_port()
    listen = f"127.0.0.1:{port}"
    config = os.path.join(root, "empty.yml")
    with open(config, "w") as f:
        f.write(_EMPTY_CONFIG)
    if system == "vigilops":
        cmd = [vigilops_binary(), "server", f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
               f"--web.listen-address={listen}", "--storage.tsdb.retention.time=100y"]
        ready = "/-/ready"
    elif system == "prometheus":
        cmd = [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
               f"--web.listen-address={listen}", "--storage.tsdb.retention.time=100y"]
        ready = "/-/ready"
    else:
        cmd = [VICTORIA_METRICS, f"-storageDataPath={data_dir}", f"-httpListenAddr={listen}",
               "-retentionPeriod=100y", "-search.disableCache"]
        ready = "/health"
    with Server(system, cmd, os.path.join(root, f"{system}.serve.log")) as srv:
        srv.wait_http(f"http://{listen}{ready}", timeout_s=600)
        yield f"http://{listen}"


# -- measuring -------------------------------------------------------------------------------

def _request(conn: http.client.HTTPConnection, path: str, params: dict[str, str]) -> tuple[float, D]:
    body = urllib.parse.urlencode(params)
    t0 = time.perf_counter()
    conn.request("POST", path, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    resp = conn.getresponse()
    raw = resp.read()
    elapsed = time.perf_counter() - t0
    return elapsed, json.loads(raw)


def _query_request(q: Query, ds: Dataset) -> tuple[str, dict[str, str]]:
    if q.kind == "range":
        params = {"query": q.expr, "start": str(ds.start_s), "end": str(ds.end_s), "step": str(RANGE_STEP_S)}
        return "/api/v1/query_range", params
    return "/api/v1/query", {"query": q.expr, "time": str(ds.end_s)}


def _connect(base: str) -> http.client.HTTPConnection:
    host, port = urllib.parse.urlsplit(base).netloc.split(":")
    return http.client.HTTPConnection(host, int(port), timeout=600)


def _timing(q: Query, samples: list[float], answer: D) -> Timing:
    if answer.get("status") != "success":
        return Timing(q.name, q.expr, q.kind, 0.0, 0.0, 0, 0, error=str(answer.get("error")))
    result = answer["data"]["result"]
    points = sum(len(s.get("values", [0])) for s in result) if isinstance(result, list) else 1
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]
    return Timing(q.name, q.expr, q.kind, statistics.median(samples), p95, len(result), points)


def time_query_interleaved(bases: list[str], q: Query, ds: Dataset, repeats: int) -> list[Timing]:
    """`q` sent to every system: one warm-up request each, then `repeats` rounds of one
    timed request per system, the order rotating from round to round, so that the host's
    slower and faster moments fall on all systems alike."""
    path, params = _query_request(q, ds)
    conns = [_connect(base) for base in bases]
    try:
        answers = [_request(conn, path, params)[1] for conn in conns]
        ok = [a.get("status") == "success" for a in answers]
        samples: list[list[float]] = [[] for _ in bases]
        for r in range(repeats):
            for k in range(len(bases)):
                i = (r + k) % len(bases)
                if ok[i]:
                    samples[i].append(_request(conns[i], path, params)[0] * 1000)
    finally:
        for conn in conns:
            conn.close()
    return [_timing(q, s or [0.0], a) for s, a in zip(samples, answers)]


def run_query_bench(ds: Dataset, out_dir: str, systems: list[str], repeats: int, step: Any) -> D:
    """Every system is served at once (idle but for the queries) and each query is timed
    on all of them interleaved (`time_query_interleaved`)."""
    root = data_root(ds, out_dir)
    data_dirs = [ensure_loaded(ds, system, root, step) for system in systems]
    results = [SystemResult(NAMES[system]) for system in systems]
    step(f"query: {', '.join(NAMES[s] for s in systems)} ({len(QUERIES)} queries x {repeats}, interleaved)")
    with ExitStack() as stack:
        bases = [stack.enter_context(serving(s, d, root)) for s, d in zip(systems, data_dirs)]
        for q in QUERIES:
            for res, t in zip(results, time_query_interleaved(bases, q, ds, repeats)):
                res.timings.append(t)
                shown = f"error: {t.error}" if t.error else f"median {t.median_ms:8.1f} ms  p95 {t.p95_ms:8.1f} ms"
                print(f"   {res.system:16} {q.kind:7} {q.name:20} {shown}  ({t.series} series)", flush=True)
    return {
        "dataset": ds.path,
        "repeats": repeats,
        "range_step_s": RANGE_STEP_S,
        "interleaved": True,
        "systems": [asdict(r) for r in results],
    }

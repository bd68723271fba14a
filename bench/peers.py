"""Loading the dataset into real Prometheus and VictoriaMetrics, and measuring them.

Both peers run as the Debian packages install them, with their defaults except where a
flag says otherwise below, each on a free loopback port and a data directory of its own.
Servers are always stopped on the way out (`bench.procs.Server`).
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import time
from collections.abc import Callable

from .dataset import Dataset, prometheus_ms_chunks
from .disk import Phase, StoreResult, block_inventory, dir_bytes
from .machine import PROMETHEUS, PROMTOOL, VICTORIA_METRICS, binary_version
from .procs import Server, free_port, http_get, run_measured

POLL_S = 1.0

_SERIES_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def scrape(url: str) -> dict[str, float]:
    """A /metrics page as {"name{labels}": value} (labels text as exposed)."""
    out: dict[str, float] = {}
    for line in http_get(url).decode(errors="replace").splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SERIES_LINE.match(line)
        if m:
            try:
                out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
            except ValueError:
                pass
    return out


def total(metrics: dict[str, float], name: str) -> float:
    """Sum of every series of metric `name`."""
    return sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{"))


def wait_for(what: str, check: Callable[[], bool], timeout_s: float, poll_s: float = POLL_S) -> float:
    """Poll `check` until true; return the seconds waited. Raises on timeout."""
    t0 = time.monotonic()
    while True:
        if check():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout_s:
            raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)


# -- Prometheus ---------------------------------------------------------------------------

PROMETHEUS_CONFIG = """\
# No scrape targets: this server only opens, compacts and serves the backfilled blocks.
global:
  scrape_interval: 1h
  evaluation_interval: 1h
scrape_configs: []
"""


def prometheus_backfill(ds: Dataset, workdir: str, log_path: str, settle_timeout_s: float = 3600) -> StoreResult:
    """promtool writes 2 h blocks; then a Prometheus server compacts them its own way.

    Prometheus's DB runs its compactor one minute after start and every minute after;
    ``prometheus_tsdb_compactions_triggered_total`` is incremented just before each run
    and the runs are sequential, so once it reads 2 the first run, which merges until its
    planner finds nothing more to do, has finished.
    """
    data_dir = os.path.join(workdir, "prometheus")
    shutil.rmtree(data_dir, ignore_errors=True)
    os.makedirs(data_dir)
    promtool_cmd = [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", ds.path, data_dir]
    usage = run_measured(promtool_cmd, log_path)
    created = block_inventory(data_dir)
    phases = [
        Phase(
            "promtool create-blocks",
            usage.cpu_s,
            usage.wall_s,
            usage.peak_rss_bytes,
            "promtool tsdb create-blocks-from openmetrics FILE DIR",
        )
    ]
    config = os.path.join(workdir, "prometheus.yml")
    with open(config, "w") as f:
        f.write(PROMETHEUS_CONFIG)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server_cmd = [
        PROMETHEUS,
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    notes = [f"promtool wrote {created.blocks} blocks, {created.total_bytes / ds.samples:.3f} B/sample before compaction"]
    with Server("prometheus", server_cmd, log_path) as srv:
        t0 = time.perf_counter()
        srv.wait_http(base + "/-/ready", timeout_s=600)

        def compacted() -> bool:
            srv.check_alive()
            return total(scrape(base + "/metrics"), "prometheus_tsdb_compactions_triggered_total") >= 2

        wait_for("Prometheus's first compaction run", compacted, settle_timeout_s, poll_s=2.0)
        m = scrape(base + "/metrics")
        failed = total(m, "prometheus_tsdb_compactions_failed_total")
        if failed:
            notes.append(f"Prometheus reports {failed:.0f} failed compactions")
        phases.append(
            Phase(
                "prometheus compaction",
                srv.cpu_s(),
                time.perf_counter() - t0,
                srv.peak_rss_bytes(),
                "prometheus --storage.tsdb.path=DIR (no scrape targets), until its first "
                "compaction run ends",
            )
        )
        notes.append(
            f"Prometheus ran {total(m, 'prometheus_tsdb_compactions_total'):.0f} compactions; "
            "its CPU figure includes start-up and about 2 minutes of idling"
        )
    inv = block_inventory(data_dir)
    kept = dir_bytes(data_dir, exclude_top=("wal", "chunks_head", "lock", "queries.active"))
    if kept != inv.total_bytes:
        notes.append(f"outside blocks (excluded): {kept - inv.total_bytes} bytes")
    return StoreResult(
        system="Prometheus",
        version=binary_version(PROMETHEUS, "prometheus"),
        total_bytes=inv.total_bytes,
        sample_bytes=inv.chunk_bytes,
        samples_in=ds.samples,
        samples_stored=inv.samples,
        units=inv.blocks,
        phases=phases,
        breakdown=inv.breakdown,
        notes=notes,
    )


# -- VictoriaMetrics ----------------------------------------------------------------------

#: Bytes per import request. The endpoint streams, so this only bounds what a failed
#: request loses and our own memory.
VM_REQUEST_BYTES = 32 << 20
_FORCE_MERGE_DONE = re.compile(rb"forced merge for partition_prefix=\S* has been successfully finished")


def victoriametrics_import(ds: Dataset, workdir: str, log_path: str, settle_timeout_s: float = 3600) -> StoreResult:
    """Stream the dataset into /api/v1/import/prometheus, flush, force-merge, measure.

    The import phase runs from the first request until the server holds no pending rows;
    the merge phase from ``/internal/force_merge`` until the server logs that the forced
    merge finished and no merge is active. CPU is the server's (psutil), not the converter's.
    """
    data_dir = os.path.join(workdir, "victoria-metrics")
    shutil.rmtree(data_dir, ignore_errors=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        VICTORIA_METRICS,
        f"-storageDataPath={data_dir}",
        f"-httpListenAddr=127.0.0.1:{port}",
        # The dataset's timestamps are fixed; keep them whatever today's date is.
        "-retentionPeriod=100y",
    ]
    notes: list[str] = []
    phases: list[Phase] = []
    with Server("victoria-metrics", cmd, log_path) as srv:
        srv.wait_http(base + "/health", timeout_s=120)
        cpu0, t0 = srv.cpu_s(), time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        try:
            with open(ds.path, "rb") as f:
                for body in prometheus_ms_chunks(f, VM_REQUEST_BYTES):
                    conn.request("POST", "/api/v1/import/prometheus", body=body,
                                 headers={"Content-Type": "text/plain"})
                    resp = conn.getresponse()
                    answer = resp.read()
                    if resp.status // 100 != 2:
                        raise RuntimeError(f"VictoriaMetrics import failed: {resp.status} {answer[:500]!r}")
        finally:
            conn.close()
        http_get(base + "/internal/force_flush")

        def flushed() -> bool:
            srv.check_alive()
            return total(scrape(base + "/metrics"), "vm_pending_rows") == 0

        wait_for("VictoriaMetrics to flush pending rows", flushed, settle_timeout_s, poll_s=0.5)
        phases.append(
            Phase(
                "import",
                srv.cpu_s() - cpu0,
                time.perf_counter() - t0,
                srv.peak_rss_bytes(),
                "POST /api/v1/import/prometheus (streamed, ms timestamps), /internal/force_flush",
            )
        )
        cpu1, t1 = srv.cpu_s(), time.perf_counter()
        log_start = os.path.getsize(log_path)
        http_get(base + "/internal/force_merge")

        def merged() -> bool:
            srv.check_alive()
            with open(log_path, "rb") as lf:
                lf.seek(log_start)
                done = _FORCE_MERGE_DONE.search(lf.read()) is not None
            m = scrape(base + "/metrics")
            return done and total(m, "vm_active_merges") == 0 and total(m, "vm_pending_rows") == 0

        wait_for("VictoriaMetrics's forced merge", merged, settle_timeout_s)
        # Its part counts lag the merge a little: wait until they hold still.
        seen: list[float] = []

        def steady() -> bool:
            m = scrape(base + "/metrics")
            seen.append(total(m, "vm_parts") + 1000 * total(m, "vm_active_merges"))
            return len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3]

        wait_for("VictoriaMetrics's part counts to settle", steady, settle_timeout_s)
        m = scrape(base + "/metrics")
        phases.append(
            Phase(
                "force merge",
                srv.cpu_s() - cpu1,
                time.perf_counter() - t1,
                srv.peak_rss_bytes(),
                "GET /internal/force_merge, until the server logs it finished",
            )
        )
        stored = int(total(m, "vm_rows{type=\"storage/big\"}") + total(m, "vm_rows{type=\"storage/small\"}"))
        parts = int(total(m, "vm_parts{type=\"storage/big\"}") + total(m, "vm_parts{type=\"storage/small\"}"))
        ignored = total(m, "vm_rows_ignored_total") + total(m, "vm_rows_invalid_total")
        if ignored:
            notes.append(f"VictoriaMetrics ignored or rejected {ignored:.0f} rows")
    data_bytes = dir_bytes(os.path.join(data_dir, "data"), exclude_top=("flock.lock",))
    index_bytes = dir_bytes(os.path.join(data_dir, "indexdb"))
    kept = dir_bytes(data_dir, exclude_top=("flock.lock", "snapshots", "tmp", "cache"))
    notes.append("VictoriaMetrics stores floats as decimal mantissa and exponent with limited precision")
    return StoreResult(
        system="VictoriaMetrics",
        version=binary_version(VICTORIA_METRICS, "victoria-metrics"),
        total_bytes=kept,
        sample_bytes=data_bytes,
        samples_in=ds.samples,
        samples_stored=stored,
        units=parts,
        phases=phases,
        breakdown={"data": data_bytes, "indexdb": index_bytes, "other": kept - data_bytes - index_bytes},
        notes=notes,
    )

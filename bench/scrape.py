"""Scrape ingest through the full scrape path: VigilOps, Prometheus and VictoriaMetrics in turn.

Each system runs as its users run it, as a real server process with a generated
``prometheus.yml`` (static targets), against the same target server: the shared
``workloads/loadserver.py`` serving K node_exporter-like targets (one port each, ~535
series, values moving between scrapes), restarted for every system so each sees the same
payload sequence. Four further *probe* targets, served from this process, serve a frozen
frame of the same payload and record the arrival time of every scrape; they measure
timeliness the same way for all three systems, whatever each stores as the sample time.

Per system, after a warm-up, over a measurement window:

* samples ingested, from the system's own counter (``vigilops_tsdb_head_samples_appended_total``,
  ``prometheus_tsdb_head_samples_appended_total``, ``vm_rows_inserted_total{type="promscrape"}``;
  all three include the five report series per scrape), per second of wall time;
* CPU seconds (user + system, all threads) of the server process from psutil, per million
  samples; resident set at the end of the window per active series (the system's own
  series count);
* scrape lateness against the schedule, p50/p99/max, and missed scrapes (ticks with no
  scrape at all): from the probes' arrival times (all systems) and from the stored
  timestamps of ``up`` for every target (VigilOps and Prometheus store the actual scrape
  start when it is more than 2 ms off the schedule; VictoriaMetrics stores the scheduled
  tick time unless it is off by more than a tenth of the interval, so its stored
  timestamps show only missed scrapes). A target's schedule is a fixed phase inside the
  interval: for VigilOps it is computed the way its server computes it
  (`vigilops_phases`); for the peers it is estimated per target (`schedule_phase`: the
  densest 2 ms of its scrape phases, i.e. its on-time scrapes). Lateness is the time
  from that phase to the scrape, modulo the interval, so a scrape more than one interval
  late reads as a missed tick plus the remainder. Prometheus's own
  ``prometheus_target_interval_length_seconds`` quantiles (the time between consecutive
  scrapes of a target, over its last ten minutes) are reported beside it.

VigilOps is then run once more for timeliness *while a compaction runs*: its data
directory is first filled with old 2 h blocks (``vigilops tsdb import openmetrics FILE
DIR``, no ``--compact``), which the server's background maintenance (``DB.maintain()``,
first run a minute after start, then every minute) merges into 6 h and 24 h blocks while
the targets are scraped. The compaction window is taken from the server's own metrics
(``vigilops_tsdb_compactions_total{kind="merge"}`` and the duration histogram's sum,
polled twice a second) and the lateness of scrapes inside it is compared with the half
minute just before it, in the same run.

All servers bind to 127.0.0.1 and are stopped on the way out (`bench.procs.Server`), also
on errors and interrupts; scratch directories are removed by the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import psutil

from .dataset import Dataset, workloads_dir
from .disk import block_inventory, vigilops_binary
from .machine import PROMETHEUS, REPO, VICTORIA_METRICS, binary_version, git_commit
from .peers import scrape as read_metrics
from .peers import total
from .procs import Server, http_get, run_measured, tail

F64 = npt.NDArray[np.float64]
D = dict[str, Any]

DEFAULT_TARGETS = 200
DEFAULT_INTERVAL_S = 1.0
DEFAULT_WARMUP_S = 60.0
DEFAULT_DURATION_S = 180.0
DEFAULT_PROBES = 4
#: up, scrape_duration_seconds, scrape_samples_scraped, scrape_samples_post_metric_relabeling,
#: scrape_series_added: written by every scrape, by all three systems.
REPORT_SERIES = 5
LOAD_JOB = "node"
PROBE_JOB = "probe"
#: How often the steady window checks that the server is alive (psutil only, no HTTP).
ALIVE_POLL_S = 1.0
#: How often the compaction run reads the server's /metrics.
COMPACTION_POLL_S = 0.5
#: The part of the compaction run just before the compaction that serves as its baseline.
BEFORE_WINDOW_S = 30.0
#: VigilOps's background maintenance runs this long after start (server.MAINTENANCE_INTERVAL_S).
FIRST_MAINTENANCE_S = 60.0
SYSTEM_NAMES = {"vigilops": "VigilOps", "prometheus": "Prometheus", "victoriametrics": "VictoriaMetrics"}


# -- ports -----------------------------------------------------------------------------------

def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(n: int, lo: int = 20000, hi: int = 45000, tries: int = 200) -> int:
    """First port of `n` consecutive loopback ports that were all free a moment ago."""
    rng = random.Random()
    for _ in range(tries):
        base = rng.randrange(lo, hi - n)
        if all(_bindable(base + i) for i in range(n)):
            return base
    raise RuntimeError(f"found no {n} consecutive free ports in {lo}..{hi}")


def fmt_duration(seconds: float) -> str:
    """A Prometheus duration for a config file (``1s``, ``500ms``, ``15s``)."""
    ms = int(round(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


# -- the targets -----------------------------------------------------------------------------

def frames_for(run_s: float, interval_s: float) -> int:
    """Payload frames the load server pre-renders (its default 600 takes ~10 s). A target starts
    at most a quarter of them in and restarts its counters when it runs out, so short runs
    get fewer (faster to start), runs of two minutes or more the default."""
    if run_s >= 120:
        return 600
    return min(600, max(120, int(2 * (run_s + 30) / interval_s)))


class LoadServer(Server):
    """``workloads/loadserver.py``: K targets on ports BASE..BASE+K-1, one process."""

    def __init__(self, targets: int, interval_s: float, log_path: str, max_seconds: float,
                 run_s: float = 600.0) -> None:
        script = os.path.join(workloads_dir(), "loadserver.py")
        if not os.path.exists(script):
            raise RuntimeError(f"{script} is missing; set $VIGILOPS_WORKLOADS to the workloads directory")
        self.targets = targets
        self.base_port = free_port_block(targets)
        self.ready_file = log_path + f".ready-{os.getpid()}-{self.base_port}"
        self.series_per_target = 0
        cmd = [
            sys.executable, script, "--targets", str(targets), "--base-port", str(self.base_port),
            "--dt", f"{interval_s:g}", "--host", "127.0.0.1", "--ready-file", self.ready_file,
            "--max-seconds", str(int(max_seconds)), "--frames", str(frames_for(run_s, interval_s)),
        ]
        super().__init__("loadserver", cmd, log_path, stop_timeout_s=10)

    def __enter__(self) -> LoadServer:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.ready_file)
        super().__enter__()
        return self

    def stop(self) -> None:
        super().stop()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.ready_file)

    def wait_ready(self, timeout_s: float = 300) -> None:
        """It pre-renders its payloads first (about ten seconds), then writes the ready file."""
        deadline = time.monotonic() + timeout_s
        while not os.path.exists(self.ready_file):
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"loadserver not ready after {timeout_s:.0f} s:\n{tail(self.log_path)}")
            time.sleep(0.2)
        time.sleep(0.1)  # the file is written, then flushed
        with open(self.ready_file) as f:
            self.series_per_target = int(f.read().strip() or 0)

    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{self.base_port + i}" for i in range(self.targets)]


class _ProbeProtocol(asyncio.Protocol):
    def __init__(self, response: bytes, arrivals: list[float]) -> None:
        self.response = response
        self.arrivals = arrivals
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.buf = self.buf[end + 4:]
            self.arrivals.append(now)
            assert self.transport is not None
            self.transport.write(self.response)


class ProbeTargets:
    """A few targets served from a thread of this process, recording when each scrape arrives.

    They serve one frozen frame of the load server's payload, so a probe costs the scraper
    what a load target costs; only the arrival times (wall clock, when the request's
    headers are complete) are of interest.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self.ports: list[int] = []
        self._arrivals: list[list[float]] = [[] for _ in range(count)]
        self._response = b""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, body: bytes) -> None:
        if not self.count:
            return
        self._response = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(body)) + body
        self._thread = threading.Thread(target=self._run, name="probe targets", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError(f"probe targets failed to start: {self._error}")

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        servers: list[asyncio.AbstractServer] = []
        try:
            for i in range(self.count):
                def factory(i: int = i) -> _ProbeProtocol:
                    return _ProbeProtocol(self._response, self._arrivals[i])
                srv = loop.run_until_complete(loop.create_server(factory, "127.0.0.1", 0))
                servers.append(srv)
                self.ports.append(srv.sockets[0].getsockname()[1])
        except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            for server in servers:
                server.close()
            loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = None
        self._thread = None

    def __enter__(self) -> ProbeTargets:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.ports]

    def arrivals_ms(self, t0: float, t1: float, phases: dict[str, float] | None = None
                    ) -> list[tuple[F64, float | None]]:
        """Arrival times (ms) in [t0, t1) (wall-clock seconds), one array per probe, each with
        its scrape phase from `phases` ("job/instance" keys) if given."""
        out: list[tuple[F64, float | None]] = []
        for port, arr in zip(self.ports, self._arrivals):
            a = np.array(list(arr), dtype=np.float64)
            key = f"{PROBE_JOB}/127.0.0.1:{port}"
            out.append((a[(a >= t0) & (a < t1)] * 1000.0, phases.get(key) if phases else None))
        return out


# -- lateness --------------------------------------------------------------------------------

@dataclass
class Lateness:
    """How late scrapes were against their schedule (from 10 ms early to one interval late)."""

    targets: int
    scrapes: int
    missed: int  # schedule ticks with no scrape
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    late_over_10pct: int  # scrapes later than a tenth of the interval
    exact_phase: bool  # the schedule was known (computed as the scraper does), not estimated

    @property
    def missed_share(self) -> float:
        n = self.scrapes + self.missed
        return self.missed / n if n else 0.0

    def to_dict(self) -> D:
        d = asdict(self)
        d["missed_share"] = self.missed_share
        return d


#: Width of the window of scrape phases the schedule is looked for in, and how far before
#: the densest such window an on-time scrape may still fall (clock and network jitter).
PHASE_WINDOW_MS = 2.0
PHASE_SLACK_MS = 10.0


def schedule_phase(ts_ms: F64, interval_ms: float) -> float:
    """The phase (ms modulo the interval) a target is scheduled at, estimated from its scrape
    times: the densest 2 ms window of residues (time modulo interval) marks the scrapes that
    were on time; the phase is the earliest residue up to 10 ms before that window. That is
    the schedule as long as a good share of scrapes were on time, whatever the late ones did."""
    r = np.sort(np.mod(ts_ms, interval_ms))
    ext = np.concatenate([r, r + interval_ms])
    counts = np.searchsorted(ext, r + PHASE_WINDOW_MS, side="left") - np.arange(len(r))
    best = float(r[int(np.argmax(counts))])
    lead = np.mod(best - r, interval_ms)  # how far each residue is before the densest window
    near = lead[lead <= PHASE_SLACK_MS]
    return float(np.mod(best - near.max(), interval_ms))


def lateness(series: Sequence[tuple[F64, float | None]], interval_ms: float) -> Lateness | None:
    """Lateness of the scrape times of each target (ms, already cut to the window) against
    its schedule, and the ticks missed. Each target comes with its schedule phase (ms modulo
    the interval) when it is known, else None and the phase is estimated (`schedule_phase`).
    A scrape more than an interval late reads as a missed tick and the remainder; one up to
    10 ms before its tick as early (negative lateness)."""
    late: list[F64] = []
    missed = 0
    targets = 0
    exact = True
    for ts, phase in series:
        ts = np.sort(np.asarray(ts, dtype=np.float64))
        if len(ts) < 2:
            continue
        targets += 1
        if phase is None:
            exact = False
            phase = schedule_phase(ts, interval_ms)
        # Up to PHASE_SLACK_MS before the tick counts as (slightly) early, not as an interval late:
        # VigilOps's loop may wake a fraction of a millisecond before its tick.
        dev = np.mod(ts - phase + PHASE_SLACK_MS, interval_ms) - PHASE_SLACK_MS
        ticks = np.rint((ts - dev - phase) / interval_ms)
        missed += int(ticks[-1] - ticks[0] + 1 - len(np.unique(ticks)))
        late.append(dev)
    if not late:
        return None
    d = np.concatenate(late)
    p50, p90, p99 = np.percentile(d, [50, 90, 99])
    return Lateness(
        targets=targets,
        scrapes=len(d),
        missed=missed,
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        max_ms=float(d.max()),
        late_over_10pct=int((d > interval_ms / 10).sum()),
        exact_phase=exact,
    )


def _cut(
    series: dict[str, tuple[F64, F64]], t0_ms: float, t1_ms: float, phases: dict[str, float] | None
) -> tuple[list[tuple[F64, float | None]], int, int]:
    """Timestamps inside [t0, t1) per target with its phase (if known), and how many of
    those scrapes were up / down."""
    out: list[tuple[F64, float | None]] = []
    up = down = 0
    for key, (ts, vals) in series.items():
        keep = (ts >= t0_ms) & (ts < t1_ms)
        v = vals[keep]
        out.append((ts[keep], phases.get(key) if phases else None))
        up += int((v == 1).sum())
        down += int((v == 0).sum())
    return out, up, down


def vigilops_phases(config_path: str) -> dict[str, float]:
    """The scrape phase of every target of a VigilOps config, as `vigilops server` computes it
    (`scrape.loop.scrape_offset_ms` with the server's host-name seed), keyed "job/instance"."""
    import zlib

    from vigilops.scrape.config import load_config
    from vigilops.scrape.discovery.static import StaticDiscoverer
    from vigilops.scrape.loop import scrape_offset_ms
    from vigilops.scrape.targets import build_targets

    seed = zlib.crc32(socket.gethostname().encode())  # as vigilops.server does
    out: dict[str, float] = {}
    for sc in load_config(config_path).scrape_configs:
        targets, _ = build_targets(StaticDiscoverer(sc.static_configs, sc.job_name).groups, sc)
        for t in targets:
            out[f"{sc.job_name}/{t.labels.get('instance')}"] = float(
                scrape_offset_ms(repr(t.key()), t.interval_ms, seed))
    return out


def phases_check(stored: dict[str, tuple[F64, F64]], phases: dict[str, float], interval_ms: float) -> bool:
    """Whether the computed phases are the server's: most stored scrape times fall exactly on
    them (the loop snaps a scrape within 2 ms of its tick to the tick)."""
    on = n = 0
    for key, (ts, _) in stored.items():
        if key in phases and len(ts):
            on += int((np.mod(ts, interval_ms) == phases[key] % interval_ms).sum())
            n += len(ts)
    return n > 0 and on / n > 0.3


# -- results -----------------------------------------------------------------------------------

@dataclass
class SystemResult:
    system: str
    version: str
    command: str
    targets: int
    probes: int
    series_per_target: int  # what each load target serves (the report series come on top)
    interval_s: float
    warmup_s: float
    window_s: float
    samples: float
    series: float
    cpu_s: float
    rss_bytes: int
    peak_rss_bytes: int
    scrapes_up: int = 0
    scrapes_down: int = 0
    lateness_probe: D | None = None
    lateness_stored: D | None = None
    own_timing: D | None = None  # the system's own timing metric, if it has one
    loadserver_cpu_s: float = 0.0
    neighbours_cores: float = 0.0  # other CPU use on the machine during the window
    notes: list[str] = field(default_factory=list)

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.window_s if self.window_s else 0.0

    @property
    def expected_per_s(self) -> float:
        """Every active series once per interval."""
        return self.series / self.interval_s if self.interval_s else 0.0

    @property
    def cpu_s_per_million(self) -> float | None:
        return self.cpu_s / (self.samples / 1e6) if self.samples else None

    @property
    def rss_per_series(self) -> float | None:
        return self.rss_bytes / self.series if self.series else None

    def to_dict(self) -> D:
        d = asdict(self)
        d["samples_per_s"] = self.samples_per_s
        d["expected_per_s"] = self.expected_per_s
        d["keeping_up"] = self.samples_per_s / self.expected_per_s if self.expected_per_s else None
        d["cpu_s_per_million"] = self.cpu_s_per_million
        d["cores"] = self.cpu_s / self.window_s if self.window_s else None
        d["rss_per_series"] = self.rss_per_series
        return d


@dataclass
class CompactionResult:
    backfill: D
    import_command: str
    import_cpu_s: float
    import_wall_s: float
    import_peak_rss_bytes: int
    blocks_before: int
    blocks_after: int
    merges_expected: int
    merges: int
    start_after_ready_s: float  # when the compaction started, seconds after the server was ready
    window_s: float
    cpu_s: float  # the server's CPU during the window (scraping included)
    samples_per_s: float | None
    expected_per_s: float
    peak_rss_bytes: int
    before: D = field(default_factory=dict)  # lateness_stored / lateness_probe / window_s
    during: D = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> D:
        return asdict(self)


# -- configuration -------------------------------------------------------------------------------

def write_config(path: str, interval_s: float, load: Sequence[str], probes: Sequence[str]) -> None:
    """One prometheus.yml that all three accept: two jobs of static targets."""
    timeout = fmt_duration(min(interval_s, 10.0))
    lines = [
        "# Generated by `python -m bench scrape`.",
        "global:",
        f"  scrape_interval: {fmt_duration(interval_s)}",
        f"  scrape_timeout: {timeout}",
        "scrape_configs:",
    ]
    for job, targets in ((LOAD_JOB, load), (PROBE_JOB, probes)):
        if not targets:
            continue
        lines += [f"  - job_name: {job}", "    static_configs:", "      - targets:"]
        lines += [f"          - '{t}'" for t in targets]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


# -- one system ------------------------------------------------------------------------------------

@dataclass
class Spec:
    """How to run and read one system."""

    key: str
    name: str
    version: str
    cmd: list[str]
    display: str
    ready_path: str
    samples: Callable[[dict[str, float]], float]
    series: Callable[[dict[str, float]], float]
    data_dir: str
    port: int
    config: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _vigilops_spec(workdir: str, config: str, extra: Sequence[str] = (), tag: str = "") -> Spec:
    from .procs import free_port

    port = free_port()
    data_dir = os.path.join(workdir, f"vigilops-scrape{tag}")
    cmd = [vigilops_binary(), "server", "--config.file", config, "--storage.tsdb.path", data_dir,
           "--web.listen-address", f"127.0.0.1:{port}", *extra]
    return Spec(
        key="vigilops", name="VigilOps", version=git_commit(), cmd=cmd,
        display="vigilops server --config.file CFG --storage.tsdb.path DIR --web.listen-address 127.0.0.1:PORT"
        + ("".join(" " + a for a in extra)),
        ready_path="/-/ready",
        samples=lambda m: total(m, "vigilops_tsdb_head_samples_appended_total"),
        series=lambda m: total(m, "vigilops_tsdb_head_series"),
        data_dir=data_dir, port=port, config=config,
    )


def _prometheus_spec(workdir: str, config: str) -> Spec:
    from .procs import free_port

    port = free_port()
    data_dir = os.path.join(workdir, "prometheus-scrape")
    cmd = [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
           f"--web.listen-address=127.0.0.1:{port}"]
    return Spec(
        key="prometheus", name="Prometheus", version=binary_version(PROMETHEUS, "prometheus"), cmd=cmd,
        display="prometheus --config.file=CFG --storage.tsdb.path=DIR --web.listen-address=127.0.0.1:PORT",
        ready_path="/-/ready",
        samples=lambda m: total(m, "prometheus_tsdb_head_samples_appended_total"),
        series=lambda m: total(m, "prometheus_tsdb_head_series"),
        data_dir=data_dir, port=port, config=config,
    )


def _victoriametrics_spec(workdir: str, config: str) -> Spec:
    from .procs import free_port

    port = free_port()
    data_dir = os.path.join(workdir, "victoria-metrics-scrape")
    cmd = [VICTORIA_METRICS, f"-storageDataPath={data_dir}", f"-httpListenAddr=127.0.0.1:{port}",
           f"-promscrape.config={config}"]
    return Spec(
        key="victoriametrics", name="VictoriaMetrics",
        version=binary_version(VICTORIA_METRICS, "victoria-metrics"), cmd=cmd,
        display="victoria-metrics -storageDataPath=DIR -httpListenAddr=127.0.0.1:PORT -promscrape.config=CFG",
        ready_path="/health",
        samples=lambda m: m.get('vm_rows_inserted_total{type="promscrape"}', 0.0),
        # A fresh storage: every series it has created is an active one.
        series=lambda m: total(m, "vm_new_timeseries_created_total"),
        data_dir=data_dir, port=port, config=config,
    )


def _machine_busy_s() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def _self_cpu_s() -> float:
    t = psutil.Process().cpu_times()
    return float(t.user + t.system)


def _sleep_checking(srvs: Sequence[Server], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(ALIVE_POLL_S, left))
        for s in srvs:
            s.check_alive()


def _stored_up_http_prometheus(spec: Spec, t0: float, t1: float) -> dict[str, tuple[F64, F64]]:
    dur_ms = int((t1 - t0) * 1000) + 1
    q = urllib.parse.urlencode({"query": f"up[{dur_ms}ms]", "time": f"{t1:.3f}"})
    data = json.loads(http_get(f"{spec.base}/api/v1/query?{q}", timeout=120))
    out = {}
    for r in data["data"]["result"]:
        key = f'{r["metric"].get("job")}/{r["metric"].get("instance")}'
        vals = r["values"]
        ts = np.array([float(v[0]) * 1000.0 for v in vals], dtype=np.float64)
        vs = np.array([float(v[1]) for v in vals], dtype=np.float64)
        out[key] = (np.rint(ts), vs)
    return out


def _stored_up_http_victoriametrics(spec: Spec, t0: float, t1: float) -> dict[str, tuple[F64, F64]]:
    http_get(f"{spec.base}/internal/force_flush")
    time.sleep(1.0)
    q = urllib.parse.urlencode({"match[]": "up", "start": f"{t0 - 1:.3f}", "end": f"{t1 + 1:.3f}"})
    out: dict[str, tuple[F64, F64]] = {}
    for line in http_get(f"{spec.base}/api/v1/export?{q}", timeout=120).splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        key = f'{r["metric"].get("job")}/{r["metric"].get("instance")}'
        ts = np.array(r["timestamps"], dtype=np.float64)
        vs = np.array(r["values"], dtype=np.float64)
        if key in out:  # several blocks of one series
            ts = np.concatenate([out[key][0], ts])
            vs = np.concatenate([out[key][1], vs])
        order = np.argsort(ts, kind="stable")
        out[key] = (ts[order], vs[order])
    return out


def _stored_up_vigilops(data_dir: str, t0_ms: int, t1_ms: int) -> tuple[dict[str, tuple[F64, F64]], int]:
    """`up` of every target, read from the stopped server's data directory (read-only: the
    WAL is replayed into memory). Also the head's series count."""
    from vigilops.tsdb.db import DB, DBOptions
    from vigilops.tsdb.model import Matcher, MatchType

    db = DB.open(data_dir, DBOptions(verify_blocks_on_open=False), read_only=True)
    try:
        out = {}
        for s in db.querier(t0_ms, t1_ms).select([Matcher(MatchType.EQUAL, "__name__", "up")]):
            lab = s.labels.to_dict()
            out[f'{lab.get("job")}/{lab.get("instance")}'] = (
                np.asarray(s.timestamps, dtype=np.float64), np.asarray(s.values, dtype=np.float64))
        return out, db.head.num_series()
    finally:
        db.close()


def _prometheus_interval_quantiles(m: dict[str, float], interval_s: float) -> D | None:
    """prometheus_target_interval_length_seconds{interval=...,quantile=...}: the time between
    two consecutive scrapes of a target (a summary over its last ten minutes)."""
    q: D = {}
    for k, v in m.items():
        if k.startswith("prometheus_target_interval_length_seconds{"):
            lab = k[k.index("{") + 1:-1]
            parts = dict(p.split("=", 1) for p in lab.split(","))
            if "quantile" in parts and v == v:  # skip NaN (no observations)
                q[parts["quantile"].strip('"')] = v
    if not q:
        return None
    return {
        "metric": "prometheus_target_interval_length_seconds",
        "meaning": "time between consecutive scrapes of a target, quantiles over its last 10 minutes",
        "quantiles_s": q,
        "minus_interval_ms": {k: (v - interval_s) * 1000.0 for k, v in q.items()},
    }


def run_system(
    spec: Spec,
    targets: int,
    probes: ProbeTargets,
    interval_s: float,
    warmup_s: float,
    duration_s: float,
    workdir: str,
    max_seconds: float,
) -> SystemResult:
    """One system against a fresh load server: warm up, measure a window, stop, read back."""
    log = os.path.join(workdir, f"{spec.key}-scrape.log")
    notes: list[str] = []
    with LoadServer(targets, interval_s, log + ".loadserver", max_seconds, warmup_s + duration_s) as load:
        load.wait_ready()
        if probes.count and not probes.ports:
            probes.start(http_get(f"http://{load.addresses()[0]}/metrics"))
        write_config(spec.config, interval_s, load.addresses(), probes.addresses())
        with Server(spec.name, spec.cmd, log) as srv:
            srv.wait_http(spec.base + spec.ready_path, timeout_s=300)
            _sleep_checking([srv, load], warmup_s)
            m0 = read_metrics(spec.base + "/metrics")
            t0, cpu0, ls0, busy0, self0 = time.time(), srv.cpu_s(), load.cpu_s(), _machine_busy_s(), _self_cpu_s()
            _sleep_checking([srv, load], duration_s)
            m1 = read_metrics(spec.base + "/metrics")
            t1, cpu1, ls1, busy1, self1 = time.time(), srv.cpu_s(), load.cpu_s(), _machine_busy_s(), _self_cpu_s()
            rss, peak = srv.rss_bytes(), srv.peak_rss_bytes()
            stored: dict[str, tuple[F64, F64]] = {}
            own = None
            if spec.key == "prometheus":
                stored = _stored_up_http_prometheus(spec, t0, t1)
                own = _prometheus_interval_quantiles(m1, interval_s)
            elif spec.key == "victoriametrics":
                stored = _stored_up_http_victoriametrics(spec, t0, t1)
                notes.append("VictoriaMetrics stores the scheduled tick time as the sample time unless a "
                             "scrape is off by more than a tenth of the interval: its stored timestamps show "
                             "missed scrapes, not lateness")
        series = spec.series(m1)
        if spec.key == "vigilops":
            stored, head_series = _stored_up_vigilops(spec.data_dir, int(t0 * 1000), int(t1 * 1000))
            if not series:  # the gauge is refreshed by the background maintenance only
                series = head_series
                notes.append("series: the head's count, read back from the data directory")
    interval_ms = interval_s * 1000.0
    phases = None
    if spec.key == "vigilops":
        phases = vigilops_phases(spec.config)
        if not phases_check(stored, phases, interval_ms):
            phases = None
            notes.append("the computed scrape phases do not match the stored scrape times: phases estimated")
    cut, up, down = _cut(stored, t0 * 1000.0, t1 * 1000.0, phases)
    stored_late = lateness(cut, interval_ms)
    probe_late = lateness(probes.arrivals_ms(t0, t1, phases), interval_ms)
    window = t1 - t0
    server_cpu = cpu1 - cpu0
    loadserver_cpu = ls1 - ls0
    neighbours = (busy1 - busy0) - server_cpu - loadserver_cpu - (self1 - self0)
    if down:
        notes.append(f"{down} scrapes failed (up == 0) in the window")
    res = SystemResult(
        system=spec.name,
        version=spec.version,
        command=spec.display,
        targets=targets,
        probes=probes.count,
        series_per_target=load.series_per_target,
        interval_s=interval_s,
        warmup_s=warmup_s,
        window_s=window,
        samples=spec.samples(m1) - spec.samples(m0),
        series=series,
        cpu_s=server_cpu,
        rss_bytes=rss,
        peak_rss_bytes=peak,
        scrapes_up=up,
        scrapes_down=down,
        lateness_probe=probe_late.to_dict() if probe_late else None,
        lateness_stored=(stored_late.to_dict() if stored_late and spec.key != "victoriametrics" else None),
        own_timing=own,
        loadserver_cpu_s=loadserver_cpu,
        neighbours_cores=max(neighbours, 0.0) / window if window else 0.0,
        notes=notes,
    )
    if spec.key == "victoriametrics" and stored_late:
        res.own_timing = {"stored_missed": stored_late.missed, "stored_scrapes": stored_late.scrapes}
    return res


# -- VigilOps while compacting ------------------------------------------------------------------

def _block_spans(data_dir: str) -> list[tuple[int, int]]:
    spans = []
    for entry in os.scandir(data_dir):
        meta = os.path.join(entry.path, "meta.json")
        if entry.is_dir() and os.path.exists(meta):
            with open(meta) as f:
                m = json.load(f)
            spans.append((int(m["minTime"]), int(m["maxTime"])))
    return sorted(spans)


def expected_merges(spans: Sequence[tuple[int, int]], newest_ms: int) -> tuple[int, int]:
    """(merges, blocks after) that the server's maintenance will do on these blocks, by the
    same planner it uses."""
    from vigilops.tsdb.compaction_plan import plan_compaction
    from vigilops.tsdb.db import DBOptions

    ranges = DBOptions().compaction_ranges_ms
    blocks = sorted(spans)
    merges = 0
    for _ in range(64):
        groups = plan_compaction(blocks, ranges, newest_ms)
        if not groups:
            break
        merges += len(groups)
        merged = {i for g in groups for i in g}
        new = [b for i, b in enumerate(blocks) if i not in merged]
        new += [(min(blocks[i][0] for i in g), max(blocks[i][1] for i in g)) for g in groups]
        blocks = sorted(new)
    return merges, len(blocks)


def run_compaction(
    ds: Dataset,
    targets: int,
    probes: ProbeTargets,
    interval_s: float,
    workdir: str,
    max_seconds: float,
    timeout_s: float = 1800.0,
) -> CompactionResult:
    """VigilOps scraping while its background maintenance merges backfilled blocks."""
    rng_ms = 2 * 3_600_000
    block_end_s = -(-(ds.end_s * 1000 + 1) // rng_ms) * rng_ms / 1000
    if block_end_s > time.time() - 60:
        raise RuntimeError(
            f"the backfill {ds.path} ends at {ds.end_s} (its last 2 h block at {block_end_s:.0f}), too close "
            "to now: scraped samples would fall inside its blocks. Use an older dataset (--backfill-end)."
        )
    spec = _vigilops_spec(workdir, os.path.join(workdir, "vigilops-compaction.yml"),
                          extra=["--storage.tsdb.retention.time", "10y"], tag="-compaction")
    log = os.path.join(workdir, "vigilops-compaction.log")
    shutil.rmtree(spec.data_dir, ignore_errors=True)
    imp_cmd = [vigilops_binary(), "tsdb", "import", "openmetrics", ds.path, spec.data_dir, "--max-block-duration", "2h"]
    usage = run_measured(imp_cmd, log)
    spans = _block_spans(spec.data_dir)
    before_blocks = len(spans)
    merges_expected, blocks_after_expected = expected_merges(spans, int(time.time() * 1000))
    notes: list[str] = []
    if not merges_expected:
        raise RuntimeError(f"the backfill's {before_blocks} blocks leave the server nothing to merge")
    polls: list[tuple[float, float, float, float, float]] = []  # t, cpu, merges, duration sum, samples
    with LoadServer(targets, interval_s, log + ".loadserver", max_seconds) as load:
        load.wait_ready()
        if probes.count and not probes.ports:
            probes.start(http_get(f"http://{load.addresses()[0]}/metrics"))
        write_config(spec.config, interval_s, load.addresses(), probes.addresses())
        with Server(spec.name, spec.cmd, log) as srv:
            srv.wait_http(spec.base + "/-/ready", timeout_s=600)
            t_ready = time.time()
            deadline = time.monotonic() + FIRST_MAINTENANCE_S + timeout_s
            done_at = None
            while True:
                srv.check_alive()
                load.check_alive()
                m = read_metrics(spec.base + "/metrics")
                now, cpu = time.time(), srv.cpu_s()
                merges = m.get('vigilops_tsdb_compactions_total{kind="merge"}', 0.0)
                polls.append((now, cpu, merges,
                              total(m, "vigilops_tsdb_compaction_duration_seconds_sum"),
                              total(m, "vigilops_tsdb_head_samples_appended_total")))
                if total(m, "vigilops_tsdb_compactions_failed_total"):
                    raise RuntimeError(f"VigilOps reports a failed compaction:\n{tail(log)}")
                if done_at is None and merges >= merges_expected:
                    done_at = now
                if done_at is not None and now - done_at >= 5 * interval_s + 2:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"VigilOps merged {merges:.0f} of {merges_expected} block groups "
                                       f"within {FIRST_MAINTENANCE_S + timeout_s:.0f} s")
                time.sleep(COMPACTION_POLL_S)
            peak = srv.peak_rss_bytes()
    inv = block_inventory(spec.data_dir)
    # Window: the poll that first saw merges, minus the merge time they report, to the poll
    # that saw the last one.
    first = next(i for i, p in enumerate(polls) if p[2] > 0)
    last = next(i for i, p in enumerate(polls) if p[2] >= merges_expected)
    ws = polls[first][0] - (polls[first][3] - polls[first - 1][3] if first else polls[first][3])
    we = polls[last][0]
    pre0 = max(ws - BEFORE_WINDOW_S, t_ready + 10 * interval_s)
    stored, _ = _stored_up_vigilops(spec.data_dir, int(pre0 * 1000), int(we * 1000) + 1)
    interval_ms = interval_s * 1000.0
    phases: dict[str, float] | None = vigilops_phases(spec.config)
    if not phases_check(stored, phases or {}, interval_ms):
        phases = None
        notes.append("the computed scrape phases do not match the stored scrape times: phases estimated")

    def phase(a: float, b: float) -> D:
        cut, up, down = _cut(stored, a * 1000.0, b * 1000.0, phases)
        st = lateness(cut, interval_ms)
        pr = lateness(probes.arrivals_ms(a, b, phases), interval_ms)
        return {"window_s": b - a, "lateness_stored": st.to_dict() if st else None,
                "lateness_probe": pr.to_dict() if pr else None, "scrapes_down": down}

    # The polls closest to the window's ends give its CPU and samples.
    i0 = max(0, min(range(len(polls)), key=lambda i: abs(polls[i][0] - ws)))
    cpu = polls[last][1] - polls[i0][1]
    span = polls[last][0] - polls[i0][0]
    # Scrapes land in bursts; a rate over less than a few intervals says little.
    samples_rate = (polls[last][4] - polls[i0][4]) / span if span >= 5 * interval_s else None
    series_per_target = load.series_per_target + REPORT_SERIES
    expected = (targets + probes.count) * series_per_target / interval_s
    if inv.blocks != blocks_after_expected:
        notes.append(f"expected {blocks_after_expected} blocks after compaction, found {inv.blocks}")
    if pre0 > ws - BEFORE_WINDOW_S + 0.5:
        notes.append(f"the 'before' window is {ws - pre0:.0f} s (from 10 intervals after ready)")
    shown = " ".join(["vigilops"] + imp_cmd[1:4] + ["FILE", "DIR"] + imp_cmd[6:])
    return CompactionResult(
        backfill={"path": ds.path, "samples": ds.samples, "series": ds.series, "targets": ds.targets,
                  "hours": ds.hours, "step_s": ds.step_s, "generator_command": ds.generator_command},
        import_command=shown,
        import_cpu_s=usage.cpu_s,
        import_wall_s=usage.wall_s,
        import_peak_rss_bytes=usage.peak_rss_bytes,
        blocks_before=before_blocks,
        blocks_after=inv.blocks,
        merges_expected=merges_expected,
        merges=int(polls[last][2]),
        start_after_ready_s=ws - t_ready,
        window_s=we - ws,
        cpu_s=cpu,
        samples_per_s=samples_rate,
        expected_per_s=expected,
        peak_rss_bytes=peak,
        before=phase(pre0, ws),
        during=phase(ws, we),
        notes=notes,
    )


# -- the whole benchmark -----------------------------------------------------------------------

def run_scrape(
    workdir: str,
    systems: Sequence[str],
    targets: int = DEFAULT_TARGETS,
    interval_s: float = DEFAULT_INTERVAL_S,
    warmup_s: float = DEFAULT_WARMUP_S,
    duration_s: float = DEFAULT_DURATION_S,
    probes: int = DEFAULT_PROBES,
    backfill: Dataset | None = None,
    step: Callable[[str], None] = print,
    guarded: Callable[[str, Callable[[], D]], D] | None = None,
) -> D:
    """Every system in turn, then VigilOps while compacting `backfill` (if given)."""
    guard = guarded or (lambda what, fn: fn())
    os.makedirs(workdir, exist_ok=True)
    # Bound the load servers' lives even if this process is killed outright.
    max_seconds = 3 * (warmup_s + duration_s) + 3600
    out: D = {
        "targets": targets, "interval_s": interval_s, "warmup_s": warmup_s, "duration_s": duration_s,
        "probes": probes,
        "loadserver": f"{os.path.relpath(os.path.join(workloads_dir(), 'loadserver.py'), REPO)} "
        f"--targets {targets} --base-port P --dt {interval_s:g}",
        "systems": {},
    }
    with ProbeTargets(probes) as probe:
        for key in systems:
            name = SYSTEM_NAMES[key]
            config = os.path.join(workdir, f"{key}-scrape.yml")
            spec = {"vigilops": _vigilops_spec, "prometheus": _prometheus_spec,
                    "victoriametrics": _victoriametrics_spec}[key](workdir, config)
            step(f"scrape: {name}, {targets} targets + {probes} probes every {interval_s:g} s, "
                 f"{warmup_s:g} s warm-up + {duration_s:g} s (log: {os.path.relpath(os.path.join(workdir, key + '-scrape.log'), REPO)})")
            r = guard(name, lambda: run_system(spec, targets, probe, interval_s, warmup_s, duration_s,
                                               workdir, max_seconds).to_dict())
            out["systems"][name] = r
            shutil.rmtree(spec.data_dir, ignore_errors=True)
            if "error" not in r:
                lp = r.get("lateness_probe") or {}
                print(f"   {r['samples_per_s'] / 1e3:.0f} k samples/s ({100 * (r['keeping_up'] or 0):.1f} % of "
                      f"the series' rate), {r['cpu_s_per_million'] or 0:.2f} CPU-s per M samples, "
                      f"{(r['rss_per_series'] or 0):,.0f} B RSS per series, probe lateness p50 "
                      f"{lp.get('p50_ms', float('nan')):.1f} ms p99 {lp.get('p99_ms', float('nan')):.1f} ms",
                      flush=True)
        if backfill is not None and "vigilops" in systems:
            step(f"scrape: VigilOps while compacting {backfill.samples:,} backfilled samples "
                 f"({backfill.targets} targets x {backfill.hours:g} h; log: "
                 f"{os.path.relpath(os.path.join(workdir, 'vigilops-compaction.log'), REPO)})")
            c = guard("VigilOps compaction", lambda: run_compaction(backfill, targets, probe, interval_s, workdir,
                                                                    max_seconds).to_dict())
            out["compaction"] = c
            shutil.rmtree(os.path.join(workdir, "vigilops-scrape-compaction"), ignore_errors=True)
            if "error" not in c:
                d = (c["during"].get("lateness_stored") or {})
                print(f"   {c['merges']} merges in {c['window_s']:.1f} s; stored lateness during it p50 "
                      f"{d.get('p50_ms', float('nan')):.1f} ms p99 {d.get('p99_ms', float('nan')):.1f} ms, "
                      f"{d.get('missed', 0)} missed", flush=True)
    return out

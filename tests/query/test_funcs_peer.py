"""Side by side with real Prometheus 2.42: the same OpenMetrics file is loaded into both
(`promtool tsdb create-blocks-from openmetrics` / `vigilops.tsdb.importer`), and our
function implementations, applied to windows built from what `vigilops.tsdb` returns, must
give Prometheus's answers for rate, increase, delta, irate, deriv, holt_winters,
quantile_over_time, histogram_quantile and label_replace at a few instants.

The engine is not involved: windows and instant vectors are built here from the querier's
series, so a difference points at a function (or at storage), not at evaluation."""

from __future__ import annotations

import json
import math
import random
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from peerprocs import binary, free_port, get, process

from vigilops.query.funcs import IMPLEMENTATIONS
from vigilops.query.values import FunctionContext, Scalar, String, Value, Vector, build_windows
from vigilops.tsdb.db import DB
from vigilops.tsdb.importer import import_openmetrics
from vigilops.tsdb.model import METRIC_NAME, Labels, Matcher, MatchType

pytestmark = pytest.mark.peer

START_MS = 1_600_000_000_000
BUCKETS = ("0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf")


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def _series() -> dict[Labels, list[tuple[int, float]]]:
    """Counters with resets and jittered scrapes, gauges, and classic histograms."""
    rng = random.Random(2042)
    out: dict[Labels, list[tuple[int, float]]] = {}
    for inst in range(4):
        t, v = START_MS, float(rng.randint(0, 50))
        samples: list[tuple[int, float]] = []
        for _ in range(240):
            t += rng.choice([15_000, 15_000, 15_000, 14_000, 16_000, 45_000])
            v = 0.0 if rng.random() < 0.03 else v + rng.choice([0, 1, 2, 5, 0.5])
            samples.append((t, v))
        out[Labels({METRIC_NAME: "req_total", "instance": f"i{inst}", "path": f"/api/v{inst}"})] = samples
        t = START_MS
        gauge: list[tuple[int, float]] = []
        for _ in range(200):
            t += rng.choice([10_000, 20_000, 30_000])
            gauge.append((t, round(rng.gauss(50, 20), 3)))
        out[Labels({METRIC_NAME: "temp", "instance": f"i{inst}", "path": f"/api/v{inst}"})] = gauge
    for job in ("a", "b"):
        counts = [0.0] * len(BUCKETS)
        cols: list[list[tuple[int, float]]] = [[] for _ in BUCKETS]
        for k in range(240):
            t = START_MS + (k + 1) * 15_000
            for _ in range(rng.randint(0, 20)):
                obs = rng.expovariate(3.0)
                for i, le in enumerate(BUCKETS):
                    if le == "+Inf" or obs <= float(le):
                        counts[i] += 1
            for i in range(len(BUCKETS)):
                cols[i].append((t, counts[i]))
        for i, le in enumerate(BUCKETS):
            out[Labels({METRIC_NAME: "lat_bucket", "job": job, "le": le})] = cols[i]
    return out


def _openmetrics(data: dict[Labels, list[tuple[int, float]]]) -> str:
    lines = ["# TYPE req counter", "# TYPE temp gauge", "# TYPE lat histogram"]
    for ls, samples in data.items():
        rest = ",".join(f'{n}="{v}"' for n, v in ls.pairs() if n != METRIC_NAME)
        for t, v in samples:
            lines.append(f"{ls.name}{{{rest}}} {_fmt(v)} {t // 1000}.{t % 1000:03d}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


class Peers:
    """Prometheus on loopback and our DB, both holding the same data."""

    def __init__(self, base: str, db: DB) -> None:
        self.base = base
        self.db = db

    def prometheus(self, query: str, t_ms: int) -> dict[Labels, float]:
        params = urllib.parse.urlencode({"query": query, "time": f"{t_ms // 1000}.{t_ms % 1000:03d}"})
        body = json.loads(get(f"{self.base}/api/v1/query?{params}", timeout=30))
        assert body["status"] == "success", body
        return {Labels(s["metric"]): float(s["value"][1]) for s in body["data"]["result"]}

    def select(self, name: str, mint: int, maxt: int) -> tuple[list[Labels], list[Any], list[Any]]:
        with self.db.querier(mint, maxt) as q:
            found = sorted(q.select([Matcher(MatchType.EQUAL, METRIC_NAME, name)]), key=lambda s: s.labels)
        return [s.labels for s in found], [s.timestamps for s in found], [s.values for s in found]

    def windows_call(self, func: str, name: str, t_ms: int, range_ms: int,
                     before: tuple[float, ...] = (), after: tuple[float, ...] = ()) -> Vector:
        labels, ts, vs = self.select(name, t_ms - range_ms, t_ms)
        win = build_windows(labels, ts, vs, np.array([t_ms], dtype=np.int64), range_ms)
        args: list[Value] = [Scalar(np.array([x])) for x in before]
        args.append(win)
        args.extend(Scalar(np.array([x])) for x in after)
        out = IMPLEMENTATIONS[func](args, FunctionContext(np.array([t_ms], dtype=np.int64)))
        assert isinstance(out, Vector)
        return out

    def instant(self, name: str, t_ms: int, lookback_ms: int = 300_000) -> Vector:
        """The latest sample of each series in ``[t - lookback, t]``."""
        labels, ts, vs = self.select(name, t_ms - lookback_ms, t_ms)
        keep, values = [], []
        for ls, t, v in zip(labels, ts, vs):
            inside = np.flatnonzero((t >= t_ms - lookback_ms) & (t <= t_ms))
            if len(inside):
                keep.append(ls)
                values.append(float(v[inside[-1]]))
        return Vector(keep, np.array(values).reshape(-1, 1), np.ones((len(keep), 1), dtype=bool))


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    tmp = tmp_path_factory.mktemp("funcs-peer")
    data = tmp / "data.om"
    data.write_text(_openmetrics(_series()))
    config = tmp / "empty.yml"
    config.write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    pdir, vdir = tmp / "prom", tmp / "vigil"
    subprocess.run([binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(data), str(pdir)],
                   check=True, capture_output=True)
    (pdir / "wal").mkdir(exist_ok=True)
    with open(data, "rb") as f:
        import_openmetrics(f, str(vdir))
    port = free_port()
    log = tmp / "prom.log"
    with process([binary("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={pdir}",
                  f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=100y"],
                 str(log)) as proc:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, proc, log)
        db = DB.open(str(vdir), read_only=True)
        try:
            yield Peers(base, db)
        finally:
            db.close()


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"prometheus exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            if len(json.loads(get(base + "/api/v1/label/__name__/values"))["data"]) >= 3:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"{base} not ready: {log.read_text(errors='replace')[-2000:]}")


def _as_dict(vec: Vector) -> dict[Labels, float]:
    return {ls: float(vec.values[i, 0]) for i, ls in enumerate(vec.labels) if vec.present[i, 0]}


def _assert_same(query: str, theirs: dict[Labels, float], ours: dict[Labels, float]) -> None:
    assert theirs, f"{query}: Prometheus returned nothing; the comparison would be vacuous"
    assert set(theirs) == set(ours), query
    for ls, want in theirs.items():
        got = ours[ls]
        ok = (math.isnan(want) and math.isnan(got)) or math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-300)
        assert ok, (query, ls, want, got)


# Instants inside the data (some between scrapes, one on a sample of every histogram series).
INSTANTS = [START_MS + 600_000, START_MS + 1_234_567, START_MS + 2_400_000, START_MS + 3_000_000]


@pytest.mark.parametrize("t_ms", INSTANTS)
@pytest.mark.parametrize(
    ("func", "metric", "range_s", "before", "after"),
    [
        ("rate", "req_total", 300, (), ()),
        ("rate", "req_total", 60, (), ()),
        ("increase", "req_total", 120, (), ()),
        ("delta", "temp", 300, (), ()),
        ("irate", "req_total", 120, (), ()),
        ("deriv", "temp", 600, (), ()),
        ("holt_winters", "temp", 600, (), (0.3, 0.6)),
        ("quantile_over_time", "temp", 600, (0.9,), ()),
        ("quantile_over_time", "temp", 300, (0.5,), ()),
    ],
)
def test_range_functions_match_prometheus(peers: Peers, t_ms: int, func: str, metric: str, range_s: int,
                                          before: tuple[float, ...], after: tuple[float, ...]) -> None:
    pre = "".join(f"{x}, " for x in before)
    post = "".join(f", {x}" for x in after)
    query = f"{func}({pre}{metric}[{range_s}s]{post})"
    ours = peers.windows_call(func, metric, t_ms, range_s * 1000, before, after)
    _assert_same(query, peers.prometheus(query, t_ms), _as_dict(ours))


@pytest.mark.parametrize("t_ms", [START_MS + 600_000, START_MS + 1_800_000])
@pytest.mark.parametrize("q", [0.5, 0.9, 0.99])
def test_histogram_quantile_matches_prometheus(peers: Peers, t_ms: int, q: float) -> None:
    ctx = FunctionContext(np.array([t_ms], dtype=np.int64))
    raw = IMPLEMENTATIONS["histogram_quantile"]([Scalar(np.array([q])), peers.instant("lat_bucket", t_ms)], ctx)
    assert isinstance(raw, Vector)
    query = f"histogram_quantile({q}, lat_bucket)"
    _assert_same(query, peers.prometheus(query, t_ms), _as_dict(raw))

    rates = peers.windows_call("rate", "lat_bucket", t_ms, 300_000)
    of_rates = IMPLEMENTATIONS["histogram_quantile"]([Scalar(np.array([q])), rates], ctx)
    assert isinstance(of_rates, Vector)
    query = f"histogram_quantile({q}, rate(lat_bucket[5m]))"
    _assert_same(query, peers.prometheus(query, t_ms), _as_dict(of_rates))


@pytest.mark.parametrize(
    "args",
    [
        ("inst_num", "$1", "instance", "i(.*)"),
        ("path", "${1}-$2", "path", "/(api)/(v[0-2])"),
        ("instance", "", "instance", "i[13]"),
        ("x", "$name", "path", "/api/(?P<name>v.)"),
    ],
)
def test_label_replace_matches_prometheus(peers: Peers, args: tuple[str, str, str, str]) -> None:
    t_ms = START_MS + 1_800_000
    vec = peers.instant("temp", t_ms)
    ctx = FunctionContext(np.array([t_ms], dtype=np.int64))
    ours = IMPLEMENTATIONS["label_replace"]([vec, *(String(a) for a in args)], ctx)
    assert isinstance(ours, Vector)
    query = "label_replace(temp, " + ", ".join(json.dumps(a) for a in args) + ")"
    _assert_same(query, peers.prometheus(query, t_ms), _as_dict(ours))

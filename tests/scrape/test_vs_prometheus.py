"""The same prometheus.yml, loaded by real Prometheus 2.42 and by `vigilops server`, against the
same deterministic targets: identical targets and identical series."""

from __future__ import annotations

import json
import os
import signal
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vigilops.tsdb.db import DB
from vigilops.tsdb.model import MAX_TIME, MIN_TIME, Matcher, MatchType

from peerprocs import binary, fetch, free_port, get_json, process, vigilops_server, wait_for

PAYLOAD = """\
# HELP requests_total Requests.
# TYPE requests_total counter
requests_total{code="200",job="exposed",instance="exp"} 5
requests_total{code="500"} 1
# TYPE drop_this gauge
drop_this 1
with_secret{secret="s",keep="k"} 2
gauge_nan NaN
weird_value{path="/a b",quote="say \\"hi\\"",nl="x\\ny"} -Inf
"""


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = PAYLOAD.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def targets() -> Iterator[tuple[int, int]]:
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Handler) for _ in range(2)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    try:
        yield servers[0].server_address[1], servers[1].server_address[1]
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


def write_config(tmp_path, port_a: int, port_b: int) -> str:  # type: ignore[no-untyped-def]
    sd = tmp_path / "sd.json"
    sd.write_text(json.dumps([{"targets": [f"127.0.0.1:{port_b}"], "labels": {"zone": "z1", "job": "from_sd"}}]))
    config = tmp_path / "prometheus.yml"
    config.write_text(
        f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  external_labels: {{cluster: test}}
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ["127.0.0.1:{port_a}", "localhost:{port_a}"]
        labels: {{team: core, tier: web}}
    relabel_configs:
      - source_labels: [__address__]
        regex: "(.*):(\\\\d+)"
        target_label: host
        replacement: "$1"
      - source_labels: [team, tier]
        separator: "-"
        target_label: owner
      - regex: "tier"
        action: labeldrop
      - source_labels: [__address__]
        regex: "localhost:.*"
        action: drop
      - source_labels: [host]
        modulus: 4
        target_label: shard
        action: hashmod
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: "drop_.*"
        action: drop
      - regex: "secret"
        action: labeldrop
      - source_labels: [__name__]
        regex: "(gauge)_nan"
        target_label: kind
        replacement: "${{1}}"
  - job_name: honor
    honor_labels: true
    metrics_path: /custom/metrics
    params: {{module: [x], extra: ["1"]}}
    file_sd_configs:
      - files: ["{sd}"]
    relabel_configs:
      - action: labelmap
        regex: "z(one)"
        replacement: "region_$1"
      - target_label: __param_module
        replacement: "y"
"""
    )
    return str(config)


def _target_view(body: dict) -> dict[tuple[str, str], tuple[dict, dict]]:  # type: ignore[type-arg]
    return {
        (t["scrapePool"], t["scrapeUrl"]): (t["labels"], t["discoveredLabels"])
        for t in body["data"]["activeTargets"]
    }


@pytest.mark.peer
def test_same_config_same_targets_and_series(tmp_path, targets: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    port_a, port_b = targets
    config = write_config(tmp_path, port_a, port_b)
    prom_port, our_port = free_port(), free_port()
    prom = [
        binary("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'prom'}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
    ]
    our_data = str(tmp_path / "ours")
    with process(prom, str(tmp_path / "prometheus.log")) as p, process(
        vigilops_server(config, our_data, our_port), str(tmp_path / "vigilops.log")
    ) as v:
        def scraped_twice(port: int) -> dict | None:  # type: ignore[type-arg]
            body = get_json(f"http://127.0.0.1:{port}/api/v1/targets")
            active = body["data"]["activeTargets"]
            ok = len(active) == 2 and all(t["health"] == "up" for t in active)
            return body if ok else None

        prom_targets = wait_for(lambda: scraped_twice(prom_port), "Prometheus targets up", proc=p)
        our_targets = wait_for(lambda: scraped_twice(our_port), "VigilOps targets up", proc=v)
        assert _target_view(our_targets) == _target_view(prom_targets)
        prom_dropped = sorted(json.dumps(d["discoveredLabels"], sort_keys=True) for d in prom_targets["data"]["droppedTargets"])
        our_dropped = sorted(json.dumps(d["discoveredLabels"], sort_keys=True) for d in our_targets["data"]["droppedTargets"])
        assert our_dropped == prom_dropped

        def prom_series() -> set[tuple[tuple[str, str], ...]] | None:
            q = urllib.parse.urlencode({"match[]": '{__name__=~".+"}'})
            data = get_json(f"http://127.0.0.1:{prom_port}/api/v1/series?{q}")["data"]
            found = {tuple(sorted(s.items())) for s in data}
            return found if len(found) >= 16 else None

        expected = wait_for(prom_series, "Prometheus series")
        with DB.open(our_data, read_only=True) as db, db.querier(MIN_TIME, MAX_TIME) as q:
            ours = {tuple(ls.pairs()) for ls in q.series([Matcher(MatchType.REGEX, "__name__", ".+")])}
        assert ours == expected


@pytest.mark.peer
def test_reload_keeps_old_config_on_error_and_applies_good_ones(tmp_path, targets: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    port_a, port_b = targets
    config = tmp_path / "prometheus.yml"
    good = f"""
global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
  - job_name: a
    static_configs: [{{targets: ["127.0.0.1:{port_a}"]}}]
"""
    config.write_text(good)
    port = free_port()
    with process(vigilops_server(str(config), str(tmp_path / "d"), port), str(tmp_path / "v.log")) as v:
        def pools() -> set[str]:
            body = get_json(f"http://127.0.0.1:{port}/api/v1/targets")
            return {t["scrapePool"] for t in body["data"]["activeTargets"]}

        wait_for(lambda: pools() == {"a"}, "job a", proc=v)
        config.write_text(good + "    unknown_key: 1\n")
        req = urllib.request.Request(f"http://127.0.0.1:{port}/-/reload", method="POST")
        status, _, answer = fetch(req, timeout=10)
        assert status == 500
        assert b"unknown_key" in answer
        assert pools() == {"a"}
        config.write_text(
            good + f"""  - job_name: b
    static_configs: [{{targets: ["127.0.0.1:{port_b}"]}}]
"""
        )
        os.kill(v.pid, signal.SIGHUP)
        wait_for(lambda: pools() == {"a", "b"}, "job b after SIGHUP", proc=v)
        flags = get_json(f"http://127.0.0.1:{port}/api/v1/status/flags")["data"]
        assert flags["config.file"] == str(config)
        status_config = get_json(f"http://127.0.0.1:{port}/api/v1/status/config")["data"]["yaml"]
        assert "job_name: b" in status_config

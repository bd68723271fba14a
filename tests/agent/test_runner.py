"""A hung or failing collector costs its own metrics only; `/metrics` still answers."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from vigilops.agent.collectors.base import NoDataError, gauge
from vigilops.agent.collectors.loadavg import LoadavgCollector
from vigilops.agent.config import AgentConfig
from vigilops.agent.server import build_registry, serve

from .procs import free_port, get


class HangingCollector:
    name = "hanging"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def collect(self) -> list[Metric]:
        self.calls += 1
        self.release.wait(60)
        return [gauge("node_hanging", "never seen", 1).metric]


class FailingCollector:
    name = "failing"

    def collect(self) -> list[Metric]:
        raise NoDataError("nothing here")


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(body.decode()) for s in fam.samples}


@pytest.fixture
def hanging() -> Iterator[HangingCollector]:
    collector = HangingCollector()
    yield collector
    collector.release.set()


def test_hung_collector_reports_failure_and_the_rest_answer(hanging: HangingCollector) -> None:
    config = AgentConfig(collector_timeout=0.5)
    registry, runner = build_registry(config, "test", [hanging, FailingCollector(), LoadavgCollector()])
    port = free_port()
    httpd = serve(registry, f"127.0.0.1:{port}")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        for _ in range(2):  # the second scrape finds the collector still stuck
            got = samples(get(f"http://127.0.0.1:{port}/metrics", timeout=20))
            assert got[("node_scrape_collector_success", (("collector", "hanging"),))] == 0
            assert got[("node_scrape_collector_success", (("collector", "failing"),))] == 0
            assert got[("node_scrape_collector_success", (("collector", "loadavg"),))] == 1
            assert ("node_load1", ()) in got
            assert ("node_hanging", ()) not in got
            assert ("node_scrape_collector_duration_seconds", (("collector", "hanging"),)) in got
        assert hanging.calls == 1, "a stuck collector must not be started again"
        hanging.release.set()
        for _ in range(100):  # once it returns it runs again on the next scrape
            got = samples(get(f"http://127.0.0.1:{port}/metrics", timeout=20))
            if got[("node_scrape_collector_success", (("collector", "hanging"),))] == 1:
                break
        assert ("node_hanging", ()) in got
        assert get(f"http://127.0.0.1:{port}/", timeout=20).startswith(b"<html>")
    finally:
        httpd.shutdown()
        httpd.server_close()
        runner.close()

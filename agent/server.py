"""`vigilops agent`: the collectors behind a small threaded HTTP server on `/metrics`."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from types import FrameType
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import Metric
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler, make_wsgi_app

from .collectors import Collector, build_collectors
from .collectors.base import gauge
from .collectors.processes_top import TopProcessesCollector
from .config import AgentConfig, split_listen_address
from .probes import ProbeRunner
from .registration import Announcer
from .runner import CollectorRunner

log = logging.getLogger("vigilops.agent")

LANDING = b"""<html><head><title>VigilOps agent</title></head><body>
<h1>VigilOps agent</h1><p><a href="/metrics">Metrics</a></p></body></html>"""


class InfoCollector:
    """`vigilops_agent_info{hostname, version, <tags>} 1`."""

    def __init__(self, config: AgentConfig, version: str) -> None:
        self.labels = {"hostname": config.hostname, "version": version, **config.tags}

    def collect(self) -> Iterable[Metric]:
        yield gauge("vigilops_agent_info", "VigilOps agent host name, version and tags.", 1,
                    self.labels).metric


def build_registry(config: AgentConfig, version: str,
                   collectors: Sequence[Collector] | None = None) -> tuple[CollectorRegistry, CollectorRunner]:
    registry = CollectorRegistry(auto_describe=False)
    chosen = list(collectors) if collectors is not None else build_collectors(
        config.collectors, config.textfile_directory)
    if collectors is None and config.top_processes.enabled:
        chosen.append(TopProcessesCollector(config.top_processes.count, config.top_processes.by))
    runner = CollectorRunner(chosen, config.collector_timeout)
    registry.register(runner)
    registry.register(InfoCollector(config, version))
    ProcessCollector(registry=registry)
    return registry, runner


def start_probes(registry: CollectorRegistry, config: AgentConfig) -> ProbeRunner:
    """Register the probes' cached results on `registry` and start their loops."""
    probes = ProbeRunner(config.probes)
    registry.register(probes)
    probes.start()
    return probes


def make_app(registry: CollectorRegistry) -> Callable[..., Any]:
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return metrics_app(environ, start_response)
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [LANDING]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"404 page not found\n"]

    return app


def serve(registry: CollectorRegistry, address: str) -> WSGIServer:
    host, port = split_listen_address(address)

    class Server(ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    return make_server(host or "0.0.0.0", port, make_app(registry), Server, handler_class=_SilentHandler)


def start_registration(registry: CollectorRegistry, config: AgentConfig,
                       version: str) -> Announcer | None:
    """Announce the agent to `config.server` on a thread of its own (registration.py)."""
    if config.server is None:
        return None
    announcer = Announcer(config, version)
    registry.register(announcer)
    announcer.start()
    return announcer


def run_agent(config: AgentConfig, version: str) -> int:
    registry, runner = build_registry(config, version)
    httpd = serve(registry, config.listen_address)
    probes = start_probes(registry, config)
    announcer = start_registration(registry, config, version)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=httpd.serve_forever, name="http", daemon=True)
    thread.start()
    log.info("vigilops agent listening on %s", config.listen_address)
    stop.wait()
    if announcer is not None:
        announcer.stop()
    httpd.shutdown()
    httpd.server_close()
    probes.close()
    runner.close()
    return 0

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
from .config import AgentConfig, split_listen_address
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
    chosen = collectors if collectors is not None else build_collectors(
        config.collectors, config.textfile_directory)
    runner = CollectorRunner(chosen, config.collector_timeout)
    registry.register(runner)
    registry.register(InfoCollector(config, version))
    ProcessCollector(registry=registry)
    return registry, runner


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


def run_agent(config: AgentConfig, version: str) -> int:
    registry, runner = build_registry(config, version)
    httpd = serve(registry, config.listen_address)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=httpd.serve_forever, name="http", daemon=True)
    thread.start()
    log.info("vigilops agent listening on %s", config.listen_address)
    stop.wait()
    httpd.shutdown()
    httpd.server_close()
    runner.close()
    return 0

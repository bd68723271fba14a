"""HTTP and TCP probes against real servers on loopback; `/metrics` never waits for a probe."""

from __future__ import annotations

import http.server
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from vigilops.agent.config import AgentConfig, ProbeConfig
from vigilops.agent.probes import ProbeResult, ProbeRunner
from vigilops.agent.probes.tls import cert_not_after
from vigilops.agent.server import build_registry, serve, start_probes

from .procs import free_port, get


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    release: threading.Event  # set by the fixture: lets /slow return
    entered: threading.Event  # set when /slow starts waiting

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/ok":
            self._send(200, b"status: all systems operational\n")
        elif self.path == "/error":
            self._send(500, b"internal error\n")
        elif self.path == "/slow":
            self.entered.set()
            self.release.wait(30)
            self._send(200, b"too late\n")
        elif self.path == "/trickle":  # every byte in time, the whole answer far too late
            self.entered.set()
            for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 200:
                if self.release.wait(0.2):
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
        elif self.path.startswith("/redirect/"):
            left = int(self.path.rsplit("/", 1)[1])
            self._send(302, headers={"Location": f"/redirect/{left - 1}" if left > 1 else "/ok"})
        else:
            self._send(404, b"not found\n")


class Server:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        handler: type[Handler] = type("H", (Handler,), {"release": threading.Event(),
                                                        "entered": threading.Event()})
        self.handler = handler
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.scheme = "https" if tls is not None else "http"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.handler.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    """A self-signed cert for 127.0.0.1 and localhost, and its notAfter as openssl reads it."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-days", "30", "-nodes",
                    "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    out = subprocess.run(["openssl", "x509", "-enddate", "-noout", "-in", str(cert)],
                         check=True, capture_output=True, text=True).stdout
    not_after = ssl.cert_time_to_seconds(out.strip().removeprefix("notAfter="))
    return cert, key, float(not_after)


@pytest.fixture
def tls_server(certificate: tuple[Path, Path, float]) -> Iterator[Server]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certificate[0], certificate[1])
    srv = Server(ctx)
    yield srv
    srv.stop()


def http_probe(target: str, **kwargs: Any) -> ProbeConfig:
    return ProbeConfig("p", "http", target, **kwargs)


def run(config: ProbeConfig) -> ProbeResult:
    runner = ProbeRunner([config])
    return runner.run_once(runner.probes[0])


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(body.decode()) for s in fam.samples}


def test_http_up(server: Server) -> None:
    result = run(http_probe(server.url("/ok"), body_regex=r"all systems \w+"))
    assert result.success, result.error
    assert result.status_code == 200
    assert result.redirects == 0
    assert not result.failed_due_to_regex
    assert not result.ssl and result.ssl_earliest_cert_expiry is None
    assert 0 < result.duration < 5


def test_http_down() -> None:
    result = run(http_probe(f"http://127.0.0.1:{free_port()}/"))
    assert not result.success
    assert result.status_code == 0
    assert result.error is not None and "refused" in result.error


def test_http_slow_fails_at_the_timeout(server: Server) -> None:
    start = time.monotonic()
    result = run(http_probe(server.url("/slow"), timeout=0.5))
    assert time.monotonic() - start < 20, "the probe must return around its timeout"
    assert server.handler.entered.is_set()
    assert not result.success
    assert result.status_code == 0
    assert result.error is not None and "timeout" in result.error


def test_http_trickling_server_cannot_hold_the_probe(server: Server) -> None:
    start = time.monotonic()
    result = run(http_probe(server.url("/trickle"), timeout=1))
    assert time.monotonic() - start < 20, "the watchdog must end the probe at its timeout"
    assert not result.success
    assert result.error is not None and "timeout" in result.error


def test_http_wrong_status(server: Server) -> None:
    result = run(http_probe(server.url("/error")))
    assert not result.success
    assert result.status_code == 500
    assert not result.failed_due_to_regex
    assert run(http_probe(server.url("/error"), valid_status_codes=(500,))).success


def test_http_wrong_body(server: Server) -> None:
    result = run(http_probe(server.url("/ok"), body_regex="degraded"))
    assert not result.success
    assert result.status_code == 200
    assert result.failed_due_to_regex


def test_http_redirects_are_counted(server: Server) -> None:
    result = run(http_probe(server.url("/redirect/3"), body_regex="operational"))
    assert result.success, result.error
    assert (result.status_code, result.redirects) == (200, 3)
    direct = run(http_probe(server.url("/redirect/3"), follow_redirects=False))
    assert not direct.success
    assert (direct.status_code, direct.redirects) == (302, 0)
    assert run(http_probe(server.url("/redirect/3"), follow_redirects=False,
                          valid_status_codes=(302,))).success


def test_https_self_signed_reports_cert_expiry(tls_server: Server,
                                               certificate: tuple[Path, Path, float]) -> None:
    cert, _, not_after = certificate
    insecure = run(http_probe(tls_server.url("/ok"), insecure_skip_verify=True))
    assert insecure.success, insecure.error
    assert insecure.ssl and insecure.status_code == 200
    assert insecure.ssl_earliest_cert_expiry == not_after
    # untrusted: the probe fails, the expiry is still reported
    untrusted = run(http_probe(tls_server.url("/ok")))
    assert not untrusted.success
    assert untrusted.error is not None and "CERTIFICATE_VERIFY_FAILED" in untrusted.error
    assert untrusted.ssl_earliest_cert_expiry == not_after
    trusted = run(http_probe(tls_server.url("/ok"), ca_file=str(cert)))
    assert trusted.success, trusted.error
    assert trusted.ssl_earliest_cert_expiry == not_after


def test_der_not_after_matches_openssl(certificate: tuple[Path, Path, float]) -> None:
    cert, _, not_after = certificate
    assert cert_not_after(ssl.PEM_cert_to_DER_cert(cert.read_text())) == not_after


def test_tcp_open_and_closed() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        opened = run(ProbeConfig("db", "tcp", f"127.0.0.1:{port}"))
    assert opened.success, opened.error
    closed = run(ProbeConfig("db", "tcp", f"127.0.0.1:{free_port()}"))
    assert not closed.success
    assert closed.error is not None and "refused" in closed.error


def test_metrics_names_and_labels(server: Server) -> None:
    runner = ProbeRunner([http_probe(server.url("/redirect/1")),
                          ProbeConfig("closed", "tcp", f"127.0.0.1:{free_port()}")])
    for probe in runner.probes:
        runner.run_once(probe)
    got = {(s.name, s.labels["probe"]): s.value for m in runner.collect() for s in m.samples}
    assert got[("probe_success", "p")] == 1
    assert got[("probe_http_status_code", "p")] == 200
    assert got[("probe_http_redirects", "p")] == 1
    assert got[("probe_failed_due_to_regex", "p")] == 0
    assert got[("probe_success", "closed")] == 0
    assert ("probe_http_status_code", "closed") not in got
    assert ("probe_ssl_earliest_cert_expiry", "p") not in got
    for name in ("p", "closed"):
        assert got[("probe_duration_seconds", name)] > 0
        assert got[("probe_last_run_timestamp_seconds", name)] > 1e9
    labels = {tuple(sorted(s.labels)) for m in runner.collect() for s in m.samples}
    assert labels == {("probe", "target")}


def test_metrics_answers_while_a_probe_hangs(server: Server) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        tcp_target = f"127.0.0.1:{listener.getsockname()[1]}"
        config = AgentConfig(collectors={name: False for name in (
            "cpu", "diskstats", "filesystem", "hwmon", "netdev", "netstat", "thermal_zone")},
            probes=(http_probe(server.url("/slow"), timeout=60, interval=60),
                    ProbeConfig("tcp", "tcp", tcp_target, interval=0.2)))
        registry, runner = build_registry(config, "test")
        port = free_port()
        httpd = serve(registry, f"127.0.0.1:{port}")
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        probes = start_probes(registry, config)
        try:
            assert server.handler.entered.wait(20), "the http probe never reached the server"
            for _ in range(200):  # the tcp probe keeps reporting while the http one hangs
                got = samples(get(f"http://127.0.0.1:{port}/metrics", timeout=20))
                key = ("probe_success", (("probe", "tcp"), ("target", tcp_target)))
                if got.get(key) == 1:
                    break
                time.sleep(0.05)
            assert got[key] == 1
            assert not any(name == "probe_success" and dict(labels)["probe"] == "p"
                           for name, labels in got)
            assert not server.handler.release.is_set()  # still hanging while /metrics answered
        finally:
            server.handler.release.set()
            probes.close()
            httpd.shutdown()
            httpd.server_close()
            runner.close()


def test_runner_stops_its_threads(server: Server) -> None:
    runner = ProbeRunner([replace(http_probe(server.url("/ok")), interval=0.1)])
    runner.start()
    try:
        for _ in range(200):
            if runner.results():
                break
            time.sleep(0.05)
        assert runner.results()["p"].success
    finally:
        runner.close()
    assert not any(t.name == "probe-p" and t.is_alive() for t in threading.enumerate())

"""Helpers shared by the tests that run real processes on loopback: peer binaries
(Prometheus, promtool, node_exporter, …) and our own `vigilops` commands."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import Message
from typing import Any, TypeVar

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binary(name: str) -> str:
    path = shutil.which(name) or f"/usr/bin/{name}"
    if not os.path.exists(path):
        raise AssertionError(f"{name} is not installed; ./dev.sh test installs it")
    return path


def fetch(
    req: str | urllib.request.Request, data: bytes | None = None, timeout: float = 30.0
) -> tuple[int, Message, bytes]:
    """One HTTP request: its status, headers and body, error statuses included.

    The connection is always closed. An `HTTPError` dropped unread keeps its socket open until
    the garbage collector finds it, and pytest then fails whichever test happens to be running
    with a ResourceWarning."""
    try:
        with urllib.request.urlopen(req, data, timeout=timeout) as resp:
            return int(resp.status), resp.headers, bytes(resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers, bytes(err.read())


def get(url: str | urllib.request.Request, timeout: float = 5.0) -> bytes:
    """The body of a 2xx answer; raises `HTTPError` (already closed) on any other status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return bytes(resp.read())
    except urllib.error.HTTPError as err:
        err.close()
        raise


def get_json(url: str) -> Any:
    return json.loads(get(url))


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> bytes:
    """Poll `url` until it answers 2xx (the body), while `proc` keeps running."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            return get(url, timeout=2.0)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def wait_for(fn: Callable[[], T | None], what: str, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> T:
    """Poll `fn` until it returns something truthy (bounded in time and in tries)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} while waiting for {what}")
        try:
            value = fn()
            if value:
                return value
        except (OSError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


@contextmanager
def process(args: list[str], log_path: str | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run a process for the duration of the block; always terminate and reap it."""
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL
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
        if log_path:
            out.close()  # type: ignore[union-attr]


def vigilops_server(config: str, data_dir: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "vigilops.cli", "server",
        "--config.file", config,
        "--storage.tsdb.path", data_dir,
        "--web.listen-address", f"127.0.0.1:{port}",
    ]


@contextmanager
def prometheus_and_vigilops(
    tmp: str, openmetrics: str, config: str = "global:\n  scrape_interval: 1h\nscrape_configs: []\n"
) -> Iterator[tuple[str, str]]:
    """The same OpenMetrics data in a real Prometheus (promtool blocks) and in a VigilOps
    server (`vigilops tsdb import`), both with `config`; yields their base URLs once both
    answer a non-empty ``/api/v1/labels``."""
    from contextlib import ExitStack

    data, config_path = os.path.join(tmp, "data.om"), os.path.join(tmp, "config.yml")
    with open(data, "w") as f:
        f.write(openmetrics)
    with open(config_path, "w") as f:
        f.write(config)
    pdir, vdir = os.path.join(tmp, "prom"), os.path.join(tmp, "vigil")
    subprocess.run([binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", data, pdir],
                   check=True, capture_output=True)
    os.makedirs(os.path.join(pdir, "wal"), exist_ok=True)
    subprocess.run([sys.executable, "-m", "vigilops.cli", "tsdb", "import", "openmetrics", data, vdir],
                   check=True, capture_output=True)
    pport, vport = free_port(), free_port()
    with ExitStack() as stack:
        prom = stack.enter_context(process([
            binary("prometheus"), f"--config.file={config_path}", f"--storage.tsdb.path={pdir}",
            f"--web.listen-address=127.0.0.1:{pport}", "--storage.tsdb.retention.time=100y",
        ], os.path.join(tmp, "prom.log")))
        ours = stack.enter_context(process([
            sys.executable, "-m", "vigilops.cli", "server", "--config.file", config_path,
            "--storage.tsdb.path", vdir, "--web.listen-address", f"127.0.0.1:{vport}",
            "--storage.tsdb.retention.time", "100y",
        ], os.path.join(tmp, "vigil.log")))
        pbase, vbase = f"http://127.0.0.1:{pport}", f"http://127.0.0.1:{vport}"
        for base, proc in ((pbase, prom), (vbase, ours)):
            wait_for(lambda b=base: get_json(b + "/api/v1/labels").get("data") or None,  # type: ignore[misc]
                     f"{base} serving the data", timeout=90, proc=proc)
        yield pbase, vbase

"""`vigilops server` as a real process on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from peerprocs import free_port, wait_http

VIGILOPS = [sys.executable, "-m", "vigilops.cli"]


@contextmanager
def running_server(data: object, port: int, **popen: Any) -> Iterator[subprocess.Popen[bytes]]:
    """`vigilops server` on `data` and 127.0.0.1:`port`, its output discarded unless
    `popen` says otherwise; killed on the way out if the test did not stop it (its stderr
    pipe, if any, closed)."""
    args = [*VIGILOPS, "server", "--storage.tsdb.path", str(data), "--web.listen-address", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(args, **{"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, **popen})
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def test_version() -> None:
    out = subprocess.run([*VIGILOPS, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("vigilops ")


def test_server_serves_health_and_metrics_and_stops_cleanly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    data = tmp_path / "data"
    with running_server(data, port, stderr=subprocess.PIPE) as proc:
        assert b"Healthy" in wait_http(f"http://127.0.0.1:{port}/-/healthy", proc)
        assert b"Ready" in wait_http(f"http://127.0.0.1:{port}/-/ready", proc)
        metrics = wait_http(f"http://127.0.0.1:{port}/metrics", proc).decode()
        assert "vigilops_tsdb_head_series " in metrics
        assert "vigilops_tsdb_wal_" in metrics
        assert os.path.isdir(data / "wal")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_server_refuses_a_second_instance_on_the_same_data(tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    data = str(tmp_path / "data")
    with running_server(data, port) as first:
        wait_http(f"http://127.0.0.1:{port}/-/healthy", first)
        second = subprocess.run(
            [*VIGILOPS, "server", "--storage.tsdb.path", data,
             "--web.listen-address", f"127.0.0.1:{free_port()}"],
            capture_output=True, text=True, timeout=60,
        )
        assert second.returncode != 0
        assert "in use by another process" in second.stderr


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--storage.tsdb.retention.time", "15 days", "not a valid duration"),
        ("--storage.tsdb.retention.size", "lots", "not a valid size"),
        ("--storage.tsdb.wal-sync", "sometimes", "sometimes"),
    ],
)
def test_server_rejects_bad_flags_clearly(tmp_path, flag: str, value: str, message: str) -> None:  # type: ignore[no-untyped-def]
    out = subprocess.run(
        [*VIGILOPS, "server", "--storage.tsdb.path", str(tmp_path / "d"), flag, value],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode != 0
    assert message in out.stderr


def test_server_without_config_scrapes_itself(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The embedded default config: the server's own /metrics, and the agent port (down
    until an agent runs there)."""
    import json

    port = free_port()
    with running_server(tmp_path / "data", port) as proc:
        wait_http(f"http://127.0.0.1:{port}/-/healthy", proc)
        deadline = time.monotonic() + 60
        while True:
            body = json.loads(wait_http(f"http://127.0.0.1:{port}/api/v1/targets", proc))
            by_job = {t["labels"]["job"]: t for t in body["data"]["activeTargets"]}
            if by_job.get("vigilops", {}).get("health") == "up":
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.5)
        assert set(by_job) == {"vigilops", "node"}
        assert by_job["vigilops"]["scrapeUrl"] == f"http://127.0.0.1:{port}/metrics"
        assert by_job["vigilops"]["scrapeInterval"] == "15s"
        meta = json.loads(wait_http(
            f"http://127.0.0.1:{port}/api/v1/targets/metadata?metric=vigilops_tsdb_head_series", proc
        ))
        assert meta["data"][0]["type"] == "gauge"
        assert meta["data"][0]["target"]["job"] == "vigilops"


def test_stopping_during_the_first_compile_kills_the_compiling_child(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Nothing cached yet (a fresh NUMBA_CACHE_DIR): the loops compile in a child; a
    SIGTERM meanwhile ends it rather than waiting for all of them to compile."""
    cache = tmp_path / "numba"
    port = free_port()
    with running_server(tmp_path / "data", port, env={**os.environ, "NUMBA_CACHE_DIR": str(cache)}) as proc:
        wait_http(f"http://127.0.0.1:{port}/-/healthy", proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
    import vigilops.query.aggregation
    import vigilops.query.api.points_json
    import vigilops.query.window_kernels
    import vigilops.tsdb.chunks.frame_integrate
    import vigilops.tsdb.columns  # noqa: F401 - the modules with compiled loops
    from vigilops.tsdb import compiled

    loops = {k.py_func.__name__ for k, _ in compiled._registered}
    assert len(loops) >= 8
    cached = {p.name.split(".")[1].split("-")[0] for p in cache.rglob("*.nbi")} if cache.exists() else set()
    assert len(cached & loops) < len(loops) / 2, cached  # the child did not go on to the end

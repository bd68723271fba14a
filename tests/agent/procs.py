"""Run the agent and node_exporter as processes on loopback; always reaped."""

from __future__ import annotations

import subprocess
import sys
import time

from peerprocs import free_port, get, process

__all__ = ["agent_command", "free_port", "get", "process", "wait_up"]


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            return get(url)
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def agent_command(config: str, port: int) -> list[str]:
    return [sys.executable, "-m", "vigilops.cli", "agent", "--config", config,
            "--web.listen-address", f"127.0.0.1:{port}"]

"""Run the agent and node_exporter as processes on loopback; always reaped."""

from __future__ import annotations

import sys

from peerprocs import free_port, get, process, wait_http

__all__ = ["agent_command", "free_port", "get", "process", "wait_http"]


def agent_command(config: str, port: int) -> list[str]:
    return [sys.executable, "-m", "vigilops.cli", "agent", "--config", config,
            "--web.listen-address", f"127.0.0.1:{port}"]

"""`loadavg`: node_load1/5/15 from /proc/loadavg."""

from __future__ import annotations

from prometheus_client.core import Metric

from .base import PROC, finish, gauge, read_text


class LoadavgCollector:
    name = "loadavg"

    def collect(self) -> list[Metric]:
        one, five, fifteen = (float(x) for x in read_text(f"{PROC}/loadavg").split()[:3])
        return finish([
            gauge("node_load1", "1m load average.", one),
            gauge("node_load5", "5m load average.", five),
            gauge("node_load15", "15m load average.", fifteen),
        ])

"""`pressure`: pressure stall information from /proc/pressure (kernel 4.20+)."""

from __future__ import annotations

import os

from prometheus_client.core import Metric

from .base import PROC, NoDataError, counter, finish, read_text

HELP = {
    ("cpu", "some"): ("node_pressure_cpu_waiting_seconds_total",
                      "Total time in seconds that processes have waited for CPU time"),
    ("io", "some"): ("node_pressure_io_waiting_seconds_total",
                     "Total time in seconds that processes have waited due to IO congestion"),
    ("io", "full"): ("node_pressure_io_stalled_seconds_total",
                     "Total time in seconds no process could make progress due to IO congestion"),
    ("memory", "some"): ("node_pressure_memory_waiting_seconds_total",
                         "Total time in seconds that processes have waited for memory"),
    ("memory", "full"): ("node_pressure_memory_stalled_seconds_total",
                         "Total time in seconds no process could make progress due to memory congestion"),
}


class PressureCollector:
    name = "pressure"

    def collect(self) -> list[Metric]:
        if not os.path.isdir(f"{PROC}/pressure"):
            raise NoDataError("no /proc/pressure (kernel without PSI)")
        fams = []
        for resource in ("cpu", "io", "memory"):
            for line in read_text(f"{PROC}/pressure/{resource}").splitlines():
                kind, *fields = line.split()
                spec = HELP.get((resource, kind))
                total = dict(f.split("=", 1) for f in fields).get("total")
                if spec is not None and total is not None:
                    fams.append(counter(spec[0], spec[1], int(total) / 1e6))
        return finish(fams)

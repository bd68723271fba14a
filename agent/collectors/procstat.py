"""`stat`: boot time, context switches, interrupts, forks and process states from /proc/stat."""

from __future__ import annotations

from prometheus_client.core import Metric

from .base import PROC, counter, finish, gauge, read_text


class StatCollector:
    name = "stat"

    def collect(self) -> list[Metric]:
        values: dict[str, float] = {}
        for line in read_text(f"{PROC}/stat").splitlines():
            key, _, rest = line.partition(" ")
            if key in ("intr", "ctxt", "btime", "processes", "procs_running", "procs_blocked"):
                values[key] = float(rest.split()[0])
        return finish([
            gauge("node_boot_time_seconds", "Node boot time, in unixtime.", values.get("btime")),
            counter("node_context_switches_total", "Total number of context switches.",
                    values.get("ctxt")),
            counter("node_forks_total", "Total number of forks.", values.get("processes")),
            counter("node_intr_total", "Total number of interrupts serviced.", values.get("intr")),
            gauge("node_procs_blocked", "Number of processes blocked waiting for I/O to complete.",
                  values.get("procs_blocked")),
            gauge("node_procs_running", "Number of processes in runnable state.",
                  values.get("procs_running")),
        ])

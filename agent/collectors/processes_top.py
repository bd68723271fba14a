"""`top_processes` (optional, off by default): CPU and memory of the busiest processes.

Processes are aggregated by name (`vigilops_process_*{name}`), never labelled by pid, and only
the top `count` names (at most 50) are exported, so cardinality stays bounded however many
short-lived processes come and go. `by: cpu` ranks by CPU time used since the previous scrape
(cumulative time on the first one); `by: memory` by resident memory.

`vigilops_process_cpu_seconds_total{name}` is a real counter: it accumulates each process's
CPU time as it grows, so a process exiting does not make it go down. A name that leaves the
top N and comes back continues where it was while any process of that name stayed alive.
"""

from __future__ import annotations

import threading

import psutil
from prometheus_client.core import Metric

from .base import counter, finish, gauge

_ATTRS = ["name", "cpu_times", "memory_info", "create_time"]


class TopProcessesCollector:
    name = "top_processes"

    def __init__(self, count: int = 10, by: str = "cpu") -> None:
        self.count = count
        self.by = by
        self._cpu: dict[tuple[int, float], float] = {}  # (pid, create time) -> cpu seconds
        self._totals: dict[str, float] = {}  # name -> accumulated cpu seconds
        self._primed = False
        self._lock = threading.Lock()

    def collect(self) -> list[Metric]:
        with self._lock:
            return self._collect()

    def _collect(self) -> list[Metric]:
        cpu: dict[tuple[int, float], float] = {}
        delta: dict[str, float] = {}
        rss: dict[str, float] = {}
        procs: dict[str, int] = {}
        for proc in psutil.process_iter(_ATTRS, ad_value=None):
            info = proc.info
            times, mem = info.get("cpu_times"), info.get("memory_info")
            if times is None or mem is None:  # gone, or not ours to read
                continue
            name = info.get("name") or "unknown"
            key = (proc.pid, info.get("create_time") or 0.0)
            seconds = float(times.user + times.system)
            cpu[key] = seconds
            grown = seconds - self._cpu.get(key, 0.0)
            delta[name] = delta.get(name, 0.0) + max(0.0, grown)
            rss[name] = rss.get(name, 0.0) + float(mem.rss)
            procs[name] = procs.get(name, 0) + 1
        self._totals = {n: self._totals.get(n, 0.0) + delta[n] for n in procs}
        self._cpu = cpu
        rank = rss if self.by == "memory" else (delta if self._primed else self._totals)
        self._primed = True
        top = sorted(procs, key=lambda n: (-rank[n], n))[: self.count]
        cpu_fam = counter("vigilops_process_cpu_seconds_total",
                          "CPU time (user + system) of the processes with this name, in seconds.")
        rss_fam = gauge("vigilops_process_resident_memory_bytes",
                        "Resident memory of the processes with this name, in bytes.")
        count_fam = gauge("vigilops_process_count", "Number of running processes with this name.")
        for name in top:
            labels = {"name": name}
            cpu_fam.add(self._totals[name], labels)
            rss_fam.add(rss[name], labels)
            count_fam.add(procs[name], labels)
        return finish([cpu_fam, rss_fam, count_fam])

"""`cpu`: per-CPU mode times from /proc/stat (node_exporter's cpu collector)."""

from __future__ import annotations

import os

from prometheus_client.core import Metric

from .base import PROC, Family, finish, read_text

MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
GUEST_MODES = ("user", "nice")
# A backwards jump this large is a real reset (e.g. CPU hotplug), not kernel jitter.
RESET_JUMP_SECONDS = 300.0


class CPUCollector:
    name = "cpu"

    def __init__(self) -> None:
        self.user_hz = float(os.sysconf("SC_CLK_TCK"))
        self._last: dict[str, list[float]] = {}

    def _monotonic(self, cpu: str, values: list[float]) -> list[float]:
        """Keep counters from going backwards (iowait/idle can), like node_exporter 1.5."""
        old = self._last.get(cpu)
        if old is None or len(old) != len(values) or old[3] - values[3] >= RESET_JUMP_SECONDS:
            self._last[cpu] = values
            return values
        merged = [max(o, n) for o, n in zip(old, values)]
        self._last[cpu] = merged
        return merged

    def collect(self) -> list[Metric]:
        seconds = Family("node_cpu_seconds_total", "Seconds the CPUs spent in each mode.", "counter")
        guest = Family("node_cpu_guest_seconds_total",
                       "Seconds the CPUs spent in guests (VMs) for each mode.", "counter")
        for line in read_text(f"{PROC}/stat").splitlines():
            if not line.startswith("cpu") or line.startswith("cpu "):
                continue
            fields = line.split()
            cpu = fields[0][3:]
            raw = [int(x) / self.user_hz for x in fields[1:11]]
            raw += [0.0] * (10 - len(raw))
            values = self._monotonic(cpu, raw)
            for mode, value in zip(MODES, values):
                seconds.add(value, {"cpu": cpu, "mode": mode})
            for mode, value in zip(GUEST_MODES, values[8:10]):
                guest.add(value, {"cpu": cpu, "mode": mode})
        return finish([seconds, guest])

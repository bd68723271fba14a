"""`time`: wall clock, time zone offset and clock sources."""

from __future__ import annotations

import glob
import os
import time

from prometheus_client.core import Metric

from .base import SYS, Family, finish, gauge, read_optional


class TimeCollector:
    name = "time"

    def collect(self) -> list[Metric]:
        now = time.time()
        local = time.localtime(now)
        available = Family("node_time_clocksource_available_info",
                           "Available clocksources read from '/sys/devices/system/clocksource'.", "gauge")
        current = Family("node_time_clocksource_current_info",
                         "Current clocksource read from '/sys/devices/system/clocksource'.", "gauge")
        for path in sorted(glob.glob(f"{SYS}/devices/system/clocksource/clocksource[0-9]*")):
            device = os.path.basename(path)[len("clocksource"):]
            for source in (read_optional(f"{path}/available_clocksource") or "").split():
                available.add(1, {"clocksource": source, "device": device})
            cur = read_optional(f"{path}/current_clocksource")
            if cur:
                current.add(1, {"clocksource": cur, "device": device})
        return finish([
            available, current,
            gauge("node_time_seconds", "System time in seconds since epoch (1970).", now),
            gauge("node_time_zone_offset_seconds", "System time zone offset in seconds.",
                  local.tm_gmtoff, {"time_zone": local.tm_zone}),
        ])

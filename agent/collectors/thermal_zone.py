"""`thermal_zone`: /sys/class/thermal zone temperatures and cooling devices."""

from __future__ import annotations

import glob
import os

from prometheus_client.core import Metric

from .base import SYS, Family, NoDataError, finish, read_optional


class ThermalZoneCollector:
    name = "thermal_zone"

    def __init__(self, base: str = f"{SYS}/class/thermal") -> None:
        self.base = base

    def collect(self) -> list[Metric]:
        if not os.path.isdir(self.base):
            raise NoDataError(f"no {self.base}")
        temp = Family("node_thermal_zone_temp", "Zone temperature in Celsius", "gauge")
        cur = Family("node_cooling_device_cur_state",
                     "Current throttle state of the cooling device", "gauge")
        top = Family("node_cooling_device_max_state",
                     "Maximum throttle state of the cooling device", "gauge")
        for path in sorted(glob.glob(f"{self.base}/thermal_zone[0-9]*")):
            raw, kind = read_optional(f"{path}/temp"), read_optional(f"{path}/type")
            if raw and kind is not None:
                zone = os.path.basename(path)[len("thermal_zone"):]
                temp.add(int(raw) / 1000.0, {"type": kind, "zone": zone})
        for path in sorted(glob.glob(f"{self.base}/cooling_device[0-9]*")):
            kind = read_optional(f"{path}/type")
            labels = {"name": os.path.basename(path)[len("cooling_device"):], "type": kind or ""}
            for fam, file in ((cur, "cur_state"), (top, "max_state")):
                raw = read_optional(f"{path}/{file}")
                if raw and raw.lstrip("-").isdigit():
                    fam.add(float(raw), labels)
        return finish([cur, top, temp])

"""`hwmon`: temperature, voltage and fan sensors from /sys/class/hwmon (node_exporter's names).

Covers the common sensor kinds (temp, in, fan) with input/min/max/crit values; chip names are
derived from the device path exactly as node_exporter's `hwmonName` does.
"""

from __future__ import annotations

import os
import re

from prometheus_client.core import Metric

from .base import SYS, Family, NoDataError, finish, read_optional

_INVALID = re.compile(r"[^a-z0-9:_]")
_SENSOR = re.compile(r"^(temp|in|fan)(\d+)_(input|min|max|crit|label)$")
# kind -> (unit suffix, scale, help noun)
KINDS = {"temp": ("celsius", 0.001, "temperature"), "in": ("volts", 0.001, "voltage"),
         "fan": ("rpm", 1.0, "fan revolutions per minute")}


def clean(name: str) -> str:
    return _INVALID.sub("_", name.strip().lower()).strip("_")


def chip_name(path: str) -> str:
    device = os.path.join(path, "device")
    if os.path.exists(device):
        prefix, dev_name = os.path.split(os.path.realpath(device))
        dev_type = clean(os.path.basename(prefix))
        if dev_type and clean(dev_name):
            return f"{dev_type}_{clean(dev_name)}"
        if clean(dev_name):
            return clean(dev_name)
    name = clean(read_optional(os.path.join(path, "name")) or "")
    return name or clean(os.path.basename(os.path.realpath(path)))


class HwmonCollector:
    name = "hwmon"

    def __init__(self, base: str = f"{SYS}/class/hwmon") -> None:
        self.base = base

    def collect(self) -> list[Metric]:
        if not os.path.isdir(self.base):
            raise NoDataError(f"no {self.base}")
        fams: dict[str, Family] = {}
        names = Family("node_hwmon_chip_names", "Annotation metric for human-readable chip names",
                       "gauge")
        labels_fam = Family("node_hwmon_sensor_label", "Label for given chip and sensor", "gauge")
        for entry in sorted(os.listdir(self.base)):
            path = os.path.join(self.base, entry)
            chip = chip_name(path)
            human = read_optional(os.path.join(path, "name"))
            if human:
                names.add(1, {"chip": chip, "chip_name": human})
            for file in sorted(os.listdir(path)):
                m = _SENSOR.match(file)
                if not m:
                    continue
                kind, num, item = m.groups()
                raw = read_optional(os.path.join(path, file))
                if raw is None:
                    continue
                sensor = f"{kind}{num}"
                if item == "label":
                    labels_fam.add(1, {"chip": chip, "label": raw, "sensor": sensor})
                    continue
                unit, scale, noun = KINDS[kind]
                metric = f"node_hwmon_{kind}_{unit}" if item == "input" else f"node_hwmon_{kind}_{item}_{unit}"
                fam = fams.setdefault(metric, Family(metric, f"Hardware monitor for {noun} ({item})", "gauge"))
                try:
                    fam.add(float(raw) * scale, {"chip": chip, "sensor": sensor})
                except ValueError:
                    continue
        return finish([names, labels_fam, *fams.values()])

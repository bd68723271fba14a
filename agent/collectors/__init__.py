"""The collectors, by the name node_exporter gives them (the `collector` label value)."""

from __future__ import annotations

from collections.abc import Callable

from .base import Collector, NoDataError
from .cpu import CPUCollector
from .diskstats import DiskstatsCollector
from .entropy import EntropyCollector
from .filefd import FilefdCollector
from .filesystem import FilesystemCollector
from .hwmon import HwmonCollector
from .loadavg import LoadavgCollector
from .meminfo import MeminfoCollector
from .netdev import NetdevCollector
from .netstat import NetstatCollector
from .pressure import PressureCollector
from .procstat import StatCollector
from .sockstat import SockstatCollector
from .systime import TimeCollector
from .textfile import TextfileCollector
from .thermal_zone import ThermalZoneCollector
from .uname import UnameCollector
from .vmstat import VmstatCollector

__all__ = ["COLLECTORS", "Collector", "NoDataError", "build_collectors"]

# name -> factory(textfile_directory)
COLLECTORS: dict[str, Callable[[str | None], Collector]] = {
    "cpu": lambda _: CPUCollector(),
    "diskstats": lambda _: DiskstatsCollector(),
    "entropy": lambda _: EntropyCollector(),
    "filefd": lambda _: FilefdCollector(),
    "filesystem": lambda _: FilesystemCollector(),
    "hwmon": lambda _: HwmonCollector(),
    "loadavg": lambda _: LoadavgCollector(),
    "meminfo": lambda _: MeminfoCollector(),
    "netdev": lambda _: NetdevCollector(),
    "netstat": lambda _: NetstatCollector(),
    "pressure": lambda _: PressureCollector(),
    "sockstat": lambda _: SockstatCollector(),
    "stat": lambda _: StatCollector(),
    "textfile": TextfileCollector,
    "thermal_zone": lambda _: ThermalZoneCollector(),
    "time": lambda _: TimeCollector(),
    "uname": lambda _: UnameCollector(),
    "vmstat": lambda _: VmstatCollector(),
}


def build_collectors(enabled: dict[str, bool], textfile_directory: str | None) -> list[Collector]:
    """Every known collector unless disabled (`enabled` names only known collectors)."""
    return [make(textfile_directory) for name, make in COLLECTORS.items() if enabled.get(name, True)]

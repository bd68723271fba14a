"""`diskstats`: block device I/O counters from /proc/diskstats (node_exporter's names)."""

from __future__ import annotations

import re

from prometheus_client.core import Metric

from .base import PROC, Family, finish, read_text

DEFAULT_DEVICE_EXCLUDE = r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$"
SECTOR_BYTES = 512.0
MS = 0.001
UDEV_DATA = "/run/udev/data"

# (field index after the device name, name, help, type, scale)
FIELDS: tuple[tuple[int, str, str, str, float], ...] = (
    (0, "node_disk_reads_completed_total", "The total number of reads completed successfully.", "counter", 1.0),
    (1, "node_disk_reads_merged_total", "The total number of reads merged.", "counter", 1.0),
    (2, "node_disk_read_bytes_total", "The total number of bytes read successfully.", "counter", SECTOR_BYTES),
    (3, "node_disk_read_time_seconds_total", "The total number of seconds spent by all reads.", "counter", MS),
    (4, "node_disk_writes_completed_total", "The total number of writes completed successfully.", "counter", 1.0),
    (5, "node_disk_writes_merged_total", "The number of writes merged.", "counter", 1.0),
    (6, "node_disk_written_bytes_total", "The total number of bytes written successfully.", "counter", SECTOR_BYTES),
    (7, "node_disk_write_time_seconds_total", "This is the total number of seconds spent by all writes.", "counter", MS),
    (8, "node_disk_io_now", "The number of I/Os currently in progress.", "gauge", 1.0),
    (9, "node_disk_io_time_seconds_total", "Total seconds spent doing I/Os.", "counter", MS),
    (10, "node_disk_io_time_weighted_seconds_total", "The weighted # of seconds spent doing I/Os.", "counter", MS),
    (11, "node_disk_discards_completed_total", "The total number of discards completed successfully.", "counter", 1.0),
    (12, "node_disk_discards_merged_total", "The total number of discards merged.", "counter", 1.0),
    (13, "node_disk_discarded_sectors_total", "The total number of sectors discarded successfully.", "counter", 1.0),
    (14, "node_disk_discard_time_seconds_total", "This is the total number of seconds spent by all discards.", "counter", MS),
    (15, "node_disk_flush_requests_total", "The total number of flush requests completed successfully", "counter", 1.0),
    (16, "node_disk_flush_requests_time_seconds_total", "This is the total number of seconds spent by all flush requests.", "counter", MS),
)
UDEV_KEYS = {"ID_PATH": "path", "ID_MODEL": "model", "ID_REVISION": "revision",
             "ID_SERIAL_SHORT": "serial", "ID_WWN": "wwn"}


def udev_info(major: str, minor: str) -> dict[str, str]:
    info = dict.fromkeys(UDEV_KEYS.values(), "")
    try:
        with open(f"{UDEV_DATA}/b{major}:{minor}", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("E:"):
                    key, _, value = line[2:].rstrip("\n").partition("=")
                    if key in UDEV_KEYS:
                        info[UDEV_KEYS[key]] = value
    except OSError:
        pass
    return info


class DiskstatsCollector:
    name = "diskstats"

    def __init__(self, device_exclude: str = DEFAULT_DEVICE_EXCLUDE) -> None:
        self.device_exclude = re.compile(device_exclude)

    def collect(self) -> list[Metric]:
        fams = [Family(name, help_text, typ) for _, name, help_text, typ, _ in FIELDS]
        info = Family("node_disk_info", "Info of /sys/block/<block_device>.", "gauge")
        for line in read_text(f"{PROC}/diskstats").splitlines():
            parts = line.split()
            if len(parts) < 14 or self.device_exclude.search(parts[2]):
                continue
            major, minor, device = parts[:3]
            values = parts[3:]
            labels = {"device": device}
            info.add(1, {"device": device, "major": major, "minor": minor, **udev_info(major, minor)})
            for fam, (index, _, _, _, scale) in zip(fams, FIELDS):
                if index < len(values):
                    fam.add(float(values[index]) * scale, labels)
        return finish([info, *fams])

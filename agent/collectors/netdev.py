"""`netdev`: per-interface counters (node_network_*_total{device}) from sysfs statistics,
the same kernel counters node_exporter 1.5 reads over netlink."""

from __future__ import annotations

import os
import re

from prometheus_client.core import Metric

from .base import SYS, Family, finish, read_optional

DEFAULT_DEVICE_EXCLUDE = r"^lo$"
# node_exporter stat name -> /sys/class/net/<dev>/statistics/<file>
STATS: tuple[tuple[str, str], ...] = (
    ("receive_bytes", "rx_bytes"),
    ("receive_compressed", "rx_compressed"),
    ("receive_drop", "rx_dropped"),
    ("receive_errs", "rx_errors"),
    ("receive_fifo", "rx_fifo_errors"),
    ("receive_frame", "rx_frame_errors"),
    ("receive_multicast", "multicast"),
    ("receive_nohandler", "rx_nohandler"),
    ("receive_packets", "rx_packets"),
    ("transmit_bytes", "tx_bytes"),
    ("transmit_carrier", "tx_carrier_errors"),
    ("transmit_colls", "collisions"),
    ("transmit_compressed", "tx_compressed"),
    ("transmit_drop", "tx_dropped"),
    ("transmit_errs", "tx_errors"),
    ("transmit_fifo", "tx_fifo_errors"),
    ("transmit_packets", "tx_packets"),
)


class NetdevCollector:
    name = "netdev"

    def __init__(self, device_exclude: str = DEFAULT_DEVICE_EXCLUDE) -> None:
        self.device_exclude = re.compile(device_exclude)

    def collect(self) -> list[Metric]:
        base = f"{SYS}/class/net"
        fams = [Family(f"node_network_{stat}_total", f"Network device statistic {stat}.", "counter")
                for stat, _ in STATS]
        for device in sorted(os.listdir(base)):
            if self.device_exclude.search(device):
                continue
            labels = {"device": device}
            for fam, (_, file) in zip(fams, STATS):
                raw = read_optional(f"{base}/{device}/statistics/{file}")
                if raw:
                    fam.add(float(raw), labels)
        return finish(fams)

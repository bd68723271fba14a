"""`sockstat`: socket counts from /proc/net/sockstat{,6}."""

from __future__ import annotations

import os

from prometheus_client.core import Metric

from .base import PROC, Family, finish, gauge, read_text

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def parse_sockstat(text: str) -> list[tuple[str, str, float]]:
    out = []
    for line in text.splitlines():
        protocol, _, rest = line.partition(":")
        parts = rest.split()
        for key, value in zip(parts[::2], parts[1::2]):
            out.append((protocol, key, float(value)))
    return out


class SockstatCollector:
    name = "sockstat"

    def collect(self) -> list[Metric]:
        rows = parse_sockstat(read_text(f"{PROC}/net/sockstat"))
        try:
            rows += parse_sockstat(read_text(f"{PROC}/net/sockstat6"))
        except OSError:
            pass  # IPv6 disabled
        fams: list[Family] = []
        for protocol, key, value in rows:
            if protocol == "sockets" and key == "used":
                fams.append(gauge("node_sockstat_sockets_used", "Number of IPv4 sockets in use.", value))
                continue
            fams.append(gauge(f"node_sockstat_{protocol}_{key}",
                              f"Number of {protocol} sockets in state {key}.", value))
            if key == "mem":
                fams.append(gauge(f"node_sockstat_{protocol}_mem_bytes",
                                  f"Number of {protocol} sockets in state mem_bytes.", value * PAGE_SIZE))
        return finish(fams)

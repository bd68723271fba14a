"""`netstat`: selected /proc/net/{netstat,snmp,snmp6} counters, node_exporter's default set."""

from __future__ import annotations

import re

from prometheus_client.core import Metric

from .base import PROC, Family, finish, read_text

DEFAULT_FIELDS = (
    r"^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)"
    r"|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)"
    r"|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)"
    r"|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$"
)


def parse_paired(text: str) -> dict[tuple[str, str], str]:
    """/proc/net/netstat and /proc/net/snmp: a header line and a value line per protocol."""
    out: dict[tuple[str, str], str] = {}
    lines = text.splitlines()
    for header, values in zip(lines[::2], lines[1::2]):
        names, nums = header.split(), values.split()
        protocol = names[0].rstrip(":")
        for name, num in zip(names[1:], nums[1:]):
            out[(protocol, name)] = num
    return out


def parse_snmp6(text: str) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and "6" in parts[0]:
            cut = parts[0].index("6") + 1
            out[(parts[0][:cut], parts[0][cut:])] = parts[1]
    return out


class NetstatCollector:
    name = "netstat"

    def __init__(self, fields: str = DEFAULT_FIELDS) -> None:
        self.fields = re.compile(fields)

    def collect(self) -> list[Metric]:
        stats = parse_paired(read_text(f"{PROC}/net/netstat"))
        stats.update(parse_paired(read_text(f"{PROC}/net/snmp")))
        try:
            stats.update(parse_snmp6(read_text(f"{PROC}/net/snmp6")))
        except OSError:
            pass  # IPv6 disabled
        fams = []
        for (protocol, name), value in sorted(stats.items()):
            key = f"{protocol}_{name}"
            if self.fields.search(key):
                fams.append(Family(f"node_netstat_{key}", f"Statistic {protocol}{name}.",
                                   "untyped").add(float(value)))
        return finish(fams)

"""`meminfo`: every /proc/meminfo field, named as node_exporter names it."""

from __future__ import annotations

import re

from prometheus_client.core import Metric

from .base import PROC, finish, gauge, read_text

_PAREN = re.compile(r"\((.*)\)")


def parse_meminfo(text: str) -> dict[str, float]:
    """`Active(anon): 12 kB` → `Active_anon_bytes: 12288`; unit-less fields keep their name."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        key = _PAREN.sub(r"_\1", parts[0].rstrip(":"))
        value = float(parts[1])
        if len(parts) == 3 and parts[2] == "kB":
            key += "_bytes"
            value *= 1024
        out[key] = value
    return out


class MeminfoCollector:
    name = "meminfo"

    def collect(self) -> list[Metric]:
        fields = parse_meminfo(read_text(f"{PROC}/meminfo"))
        return finish(
            gauge(f"node_memory_{key}", f"Memory information field {key}.", value)
            for key, value in fields.items()
        )

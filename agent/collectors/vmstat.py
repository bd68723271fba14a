"""`vmstat`: selected /proc/vmstat fields, node_exporter's default set."""

from __future__ import annotations

import re

from prometheus_client.core import Metric

from .base import PROC, Family, finish, read_text

DEFAULT_FIELDS = r"^(oom_kill|pgpg|pswp|pg.*fault).*"


class VmstatCollector:
    name = "vmstat"

    def __init__(self, fields: str = DEFAULT_FIELDS) -> None:
        self.fields = re.compile(fields)

    def collect(self) -> list[Metric]:
        fams = []
        for line in read_text(f"{PROC}/vmstat").splitlines():
            key, _, value = line.partition(" ")
            if self.fields.search(key):
                fams.append(Family(f"node_vmstat_{key}", f"/proc/vmstat information field {key}.",
                                   "untyped").add(float(value)))
        return finish(fams)

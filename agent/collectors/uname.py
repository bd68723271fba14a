"""`uname`: node_uname_info."""

from __future__ import annotations

import os

from prometheus_client.core import Metric

from .base import PROC, finish, gauge, read_optional


class UnameCollector:
    name = "uname"

    def collect(self) -> list[Metric]:
        u = os.uname()
        labels = {
            "sysname": u.sysname, "nodename": u.nodename, "release": u.release,
            "version": u.version, "machine": u.machine,
            "domainname": read_optional(f"{PROC}/sys/kernel/domainname") or "(none)",
        }
        return finish([gauge("node_uname_info",
                             "Labeled system information as provided by the uname system call.",
                             1, labels)])

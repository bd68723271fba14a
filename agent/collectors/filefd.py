"""`filefd`: allocated and maximum file handles from /proc/sys/fs/file-nr."""

from __future__ import annotations

from prometheus_client.core import Metric

from .base import PROC, finish, gauge, read_text


class FilefdCollector:
    name = "filefd"

    def collect(self) -> list[Metric]:
        allocated, _, maximum = read_text(f"{PROC}/sys/fs/file-nr").split()[:3]
        return finish([
            gauge("node_filefd_allocated", "File descriptor statistics: allocated.", float(allocated)),
            gauge("node_filefd_maximum", "File descriptor statistics: maximum.", float(maximum)),
        ])

"""`entropy`: kernel entropy pool from /proc/sys/kernel/random."""

from __future__ import annotations

from prometheus_client.core import Metric

from .base import PROC, finish, gauge, read_text


class EntropyCollector:
    name = "entropy"

    def collect(self) -> list[Metric]:
        base = f"{PROC}/sys/kernel/random"
        return finish([
            gauge("node_entropy_available_bits", "Bits of available entropy.",
                  float(read_text(f"{base}/entropy_avail"))),
            gauge("node_entropy_pool_size_bits", "Bits of entropy pool.",
                  float(read_text(f"{base}/poolsize"))),
        ])

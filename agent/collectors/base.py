"""What a collector is, and small helpers shared by the collectors.

A collector reads one kernel source and returns finished metric families. It raises
`NoDataError` (or any exception) when its source is missing; the runner turns that into
`node_scrape_collector_success{collector} 0`, as node_exporter does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from prometheus_client.core import Metric

PROC = "/proc"
SYS = "/sys"


class NoDataError(Exception):
    """The data source of a collector does not exist on this host."""


class Collector(Protocol):
    """A plug-in: `name` is the `collector` label value, `collect` runs in a worker thread."""

    name: str

    def collect(self) -> list[Metric]: ...


class Family:
    """Builds one metric family with node_exporter's exposed name (counters end in `_total`)."""

    __slots__ = ("metric", "_sample_name")

    def __init__(self, name: str, help_text: str, typ: str) -> None:
        base = name[: -len("_total")] if typ == "counter" and name.endswith("_total") else name
        self.metric = Metric(base, help_text, "unknown" if typ == "untyped" else typ)
        self._sample_name = name if typ != "counter" else base + "_total"

    def add(self, value: float, labels: Mapping[str, str] | None = None) -> Family:
        self.metric.add_sample(self._sample_name, dict(labels or {}), float(value))
        return self


def gauge(name: str, help_text: str, value: float | None = None,
          labels: Mapping[str, str] | None = None) -> Family:
    fam = Family(name, help_text, "gauge")
    return fam.add(value, labels) if value is not None else fam


def counter(name: str, help_text: str, value: float | None = None,
            labels: Mapping[str, str] | None = None) -> Family:
    fam = Family(name, help_text, "counter")
    return fam.add(value, labels) if value is not None else fam


def finish(families: Iterable[Family]) -> list[Metric]:
    """The families that got at least one sample (node_exporter never sends empty ones)."""
    return [f.metric for f in families if f.metric.samples]


def read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def read_optional(path: str) -> str | None:
    try:
        return read_text(path).strip()
    except OSError:
        return None

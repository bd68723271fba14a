"""`textfile`: metrics from a directory of `*.prom` files written by cron jobs and scripts."""

from __future__ import annotations

import os

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from .base import Family, finish, gauge, read_text


class TextfileCollector:
    name = "textfile"

    def __init__(self, directory: str | None = None) -> None:
        self.directory = directory

    def _read(self, path: str, families: dict[str, Metric]) -> None:
        parsed = list(text_string_to_metric_families(read_text(path)))
        for fam in parsed:
            if any(s.timestamp is not None for s in fam.samples):
                raise ValueError(f"{path}: textfile metrics must not carry timestamps")
        for fam in parsed:
            known = families.get(fam.name)
            if known is None:
                if not fam.documentation:
                    fam.documentation = f"Metric read from {path}"
                families[fam.name] = fam
            elif known.type == fam.type:
                known.samples.extend(fam.samples)
            else:
                raise ValueError(f"{path}: {fam.name} has type {fam.type}, elsewhere {known.type}")

    def collect(self) -> list[Metric]:
        error = 0
        families: dict[str, Metric] = {}
        mtimes = Family("node_textfile_mtime_seconds",
                        "Unixtime mtime of textfiles successfully read.", "gauge")
        if self.directory is not None:
            try:
                names = sorted(n for n in os.listdir(self.directory) if n.endswith(".prom"))
            except OSError:
                names, error = [], 1
            for name in names:
                path = os.path.join(self.directory, name)
                try:
                    mtime = os.stat(path).st_mtime
                    staged: dict[str, Metric] = {k: _copy(v) for k, v in families.items()}
                    self._read(path, staged)
                except (OSError, ValueError, UnicodeDecodeError):
                    error = 1
                    continue
                families = staged
                mtimes.add(float(int(mtime)), {"file": path})
        return [*families.values(), *finish([mtimes]), *finish([gauge(
            "node_textfile_scrape_error",
            "1 if there was an error opening or reading a file, 0 otherwise", error)])]


def _copy(fam: Metric) -> Metric:
    out = Metric(fam.name, fam.documentation, fam.type, fam.unit)
    out.samples = list(fam.samples)
    return out

"""Attaching target labels to scraped series, as Prometheus does before metric relabeling."""

from __future__ import annotations

from vigilops.tsdb.model import METRIC_NAME, Labels

EXPORTED_PREFIX = "exported_"


def merge_target_labels(sample: Labels, target: Labels, honor_labels: bool) -> Labels:
    """The series' labels with the target's labels attached.

    With `honor_labels`, labels the series already has win and target labels only fill
    gaps. Otherwise target labels win, and a conflicting series label is kept under
    ``exported_<name>`` (prefixed again while that name is taken, shortest names first).
    """
    merged = sample.to_dict()
    if honor_labels:
        for name, value in target.pairs():
            if name not in merged:
                merged[name] = value
        return Labels(merged)
    conflicts: list[tuple[str, str]] = []
    for name, value in target.pairs():
        existing = merged.get(name, "")
        if existing:
            conflicts.append((name, existing))
        merged[name] = value
    if conflicts:
        conflicts.sort(key=lambda c: len(c[0]))
        taken = set(sample.names()) | set(target.names())
        for name, value in conflicts:
            new = name
            while True:
                new = EXPORTED_PREFIX + new
                if new not in taken:
                    break
            taken.add(new)
            merged[new] = value
    return Labels(merged)


def report_labels(name: str, target: Labels) -> Labels:
    """Labels of a scrape report series (`up`, `scrape_duration_seconds`, …)."""
    merged = target.to_dict()
    merged[METRIC_NAME] = name
    return Labels(merged)

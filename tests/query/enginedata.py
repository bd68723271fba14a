"""Test data for the engine tests: series written as PromQL selectors, appended to a DB."""

from __future__ import annotations

import numpy as np

from vigilops.tsdb.db import DB
from vigilops.tsdb.model import Labels, parse_selector


def series(text: str) -> Labels:
    """``'foo{a="1"}'`` → its label set."""
    name, _, rest = text.partition("{")
    pairs = {m.name: m.value for m in parse_selector("{" + rest)} if rest else {}
    return Labels({"__name__": name, **pairs})


def load(db: DB, data: dict[str, list[tuple[int, float]]]) -> None:
    """Append ``{series: [(t_ms, value), …]}``, one commit per timestamp."""
    by_t: dict[int, list[tuple[Labels, float]]] = {}
    for text, points in data.items():
        for t, v in points:
            by_t.setdefault(t, []).append((series(text), v))
    for t in sorted(by_t):
        app = db.appender()
        refs = app.refs([ls for ls, _ in by_t[t]])
        app.append(refs, t, np.array([v for _, v in by_t[t]], dtype=np.float64))
        app.commit()

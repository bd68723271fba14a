"""Fixtures and helpers for storage-engine tests."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from vigilops.tsdb.db import DB, DBOptions
from vigilops.tsdb.model import MAX_TIME, METRIC_NAME, MIN_TIME, Labels, Matcher, MatchType

HOUR = 3_600_000
T0 = 1_795_305_600_000  # an aligned 2 h boundary


def series_labels(n: int, metric: str = "m") -> list[Labels]:
    return [
        Labels({METRIC_NAME: f"{metric}{i % 7}", "instance": f"host-{i % 5}", "id": str(i)})
        for i in range(n)
    ]


def read_all(db: DB, mint: int = MIN_TIME, maxt: int = MAX_TIME) -> dict[Labels, tuple[np.ndarray, np.ndarray]]:
    """Every series in [mint, maxt] through `select`; checks on the way that the flat
    `select_columns` returns exactly the same samples (bit for bit, in label order)."""
    everything = [Matcher(MatchType.REGEX, METRIC_NAME, ".+")]
    with db.querier(mint, maxt) as q:
        out = {s.labels: (s.timestamps.copy(), s.values.copy()) for s in q.select(everything, sort=True)}
        labels, cols = q.select_columns(everything)
    assert labels == list(out), "select_columns: other series or order than select(sort=True)"
    refs, starts = cols.series_bounds()
    assert refs.tolist() == list(range(len(labels)))
    for i, ls in enumerate(labels):
        ts, vs = out[ls]
        a, b = int(starts[i]), int(starts[i + 1])
        assert cols.timestamps[a:b].tolist() == ts.tolist(), ls
        assert bits(cols.values[a:b]) == bits(vs), ls
    return out


def bits(a: np.ndarray) -> list[int]:
    return np.asarray(a, dtype=np.float64).view(np.uint64).tolist()


@pytest.fixture
def db_path(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return str(tmp_path / "data")


@pytest.fixture
def db(db_path: str) -> Iterator[DB]:
    d = DB.open(db_path, DBOptions(verify_blocks_on_open=True))
    yield d
    d.close()

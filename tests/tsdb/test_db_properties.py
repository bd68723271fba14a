"""Property: any sequence of batch appends reads back exactly — from the head, after WAL
replay, from blocks, and after compaction — with float64 values bit for bit."""

from __future__ import annotations

import shutil
import tempfile

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from vigilops.tsdb.db import DB, DBOptions
from vigilops.tsdb.model import STALE_NAN_BITS, Labels

from .conftest import HOUR, T0, bits, read_all

# Bit patterns that trip codecs: NaN payloads, the stale marker, signed zeros, infinities,
# subnormals, integers beyond 2**53, decimals that are and are not exact.
SPECIAL_BITS = [
    STALE_NAN_BITS,
    0x7FF8000000000001,
    0xFFF8000000000000,
    0x7FF0000000000001,
    0x8000000000000000,
    0x0000000000000001,
    0x7FF0000000000000,
    0xFFF0000000000000,
    np.float64(2.0**60 + 1).view(np.uint64).item(),
    np.float64(0.1).view(np.uint64).item(),
    np.float64(1e-7).view(np.uint64).item(),
]

values_strategy = st.one_of(
    st.sampled_from(SPECIAL_BITS).map(lambda b: np.uint64(b).view(np.float64).item()),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**40), 2**40).map(float),
    st.integers(0, 10**6).map(lambda i: i / 100),
)

batch_strategy = st.tuples(
    st.integers(1, 45 * 60_000),  # time step before this batch, up to 45 min
    st.lists(st.integers(0, 7), min_size=1, max_size=8, unique=True),  # series in the batch
    st.lists(values_strategy, min_size=8, max_size=8),
)


def _labels(i: int) -> Labels:
    return Labels({"__name__": f"metric_{i % 3}", "series": str(i), "odd": "ü\n\"q" if i % 2 else ""})


@given(st.lists(batch_strategy, min_size=1, max_size=60))
def test_appends_read_back_through_every_stage(batches: list[tuple[int, list[int], list[float]]]) -> None:
    path = tempfile.mkdtemp(prefix="vigilops-prop-")
    try:
        expect: dict[Labels, tuple[list[int], list[float]]] = {}
        opts = DBOptions(compaction_ranges_ms=(2 * HOUR, 6 * HOUR))
        db = DB.open(path, opts)
        all_labels = [_labels(i) for i in range(8)]
        app = db.appender()
        refs = app.refs(all_labels)
        app.commit()
        t = T0
        for step, members, vals in batches:
            t += step
            idx = np.array(members)
            v = np.array([vals[i] for i in members], dtype=np.float64)
            a = db.appender()
            result = a.append(refs[idx], t, v)
            assert result.appended == len(members) and not result.rejected
            a.commit()
            for i, x in zip(members, v.tolist()):
                ts, xs = expect.setdefault(all_labels[i], ([], []))
                ts.append(t)
                xs.append(x)

        def check(d: DB, stage: str) -> None:
            got = read_all(d)
            assert set(got) == set(expect), stage
            for ls, (ts, xs) in expect.items():
                assert got[ls][0].tolist() == ts, stage
                assert bits(got[ls][1]) == bits(np.array(xs)), stage
            # A window inside the data: series with no sample in it are not returned.
            lo, hi = T0 + (t - T0) // 3, T0 + 2 * (t - T0) // 3
            part = read_all(d, lo, hi)
            for ls, (ts, xs) in expect.items():
                inside = [i for i, x in enumerate(ts) if lo <= x <= hi]
                if not inside:
                    assert ls not in part, stage
                    continue
                assert part[ls][0].tolist() == [ts[i] for i in inside], stage
                assert bits(part[ls][1]) == bits(np.array([xs[i] for i in inside])), stage

        check(db, "head")
        db.close()
        db = DB.open(path, opts)
        check(db, "after WAL replay")
        db.flush_head()
        check(db, "head cut into blocks")
        db.maintain()
        check(db, "after compaction")
        db.close()
        db = DB.open(path, opts)
        check(db, "blocks reopened")
        db.close()
    finally:
        shutil.rmtree(path, ignore_errors=True)

"""The head's sample store against a plain model: any interleaving of appends, seals,
merges, head cuts and reads gives back exactly the samples appended (the last value of a
repeated (series, t) wins), whatever the shard size."""

from __future__ import annotations

from unittest import mock

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vigilops.tsdb.head import store as store_mod
from vigilops.tsdb.head.store import SampleStore

Model = dict[tuple[int, int], float]

_op = st.one_of(
    st.tuples(
        st.just("add"),
        st.lists(st.integers(0, 40), min_size=1, max_size=30),  # refs
        st.sampled_from([0, 0, 1, 2, 5, 50]),  # time step before the batch (0: rewrites)
        st.integers(0, 3),  # spread of timestamps inside the batch
    ),
    st.tuples(st.just("seal")),
    st.tuples(st.just("detach_then_seal")),
    st.tuples(st.just("cut"), st.integers(0, 60)),
    st.tuples(st.just("read"), st.lists(st.integers(0, 40), max_size=12), st.integers(0, 40), st.integers(0, 80)),
)


def _rows(cols) -> list[tuple[int, int, int]]:
    return list(zip(cols.refs.tolist(), cols.timestamps.tolist(), cols.values.view(np.uint64).tolist()))


def _model_rows(model: Model, keep=lambda r, t: True) -> list[tuple[int, int, int]]:
    return sorted(
        (r, t, int(np.float64(v).view(np.uint64))) for (r, t), v in model.items() if keep(r, t)
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(_op, max_size=40), st.sampled_from([0, 1, 2, 3, 11]), st.integers(0, 2**32 - 1))
def test_store_agrees_with_a_model(ops, shard_bits: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with mock.patch.object(store_mod, "SHARD_BITS", shard_bits):
        store = SampleStore(seal_samples_per_series=1)
        model: Model = {}
        now = 0
        counter = 0
        for op in ops:
            if op[0] == "add":
                _, refs, step, spread = op
                now += step
                ts = now + rng.integers(-spread, spread + 1, len(refs))
                vals = np.arange(counter, counter + len(refs), dtype=np.float64) / 4
                counter += len(refs)
                # The head validates before the store; here: nothing older than a cut.
                for r, t, v in zip(refs, ts.tolist(), vals.tolist()):
                    model[(r, t)] = v
                store.add(np.array(refs, dtype=np.int64), ts.astype(np.int64), vals)
            elif op[0] == "seal":
                store.seal()
            elif op[0] == "detach_then_seal":
                part = store.detach_log()
                if part is not None:
                    # A second detached part may queue behind it before the sealer runs.
                    store.publish_sealed(part, store.encode_part(part))
                while (group := store.merge_candidates()) is not None:
                    store.publish_merge(group, store.encode_merge(group))
            elif op[0] == "cut":
                cut_t = op[1] + now - 60
                taken = store.split_before(cut_t)
                assert _rows(taken) == _model_rows(model, lambda r, t: t < cut_t)
                model = {k: v for k, v in model.items() if k[1] >= cut_t}
                now = max(now, cut_t)
            else:
                _, wanted, lo, width = op
                w = np.unique(np.array(wanted, dtype=np.int64))
                mint, maxt = now - lo, now - lo + width
                got = store.snapshot().gather(w, mint, maxt)
                want = set(w.tolist())
                assert _rows(got) == _model_rows(model, lambda r, t: r in want and mint <= t <= maxt)
        snap = store.snapshot()
        assert _rows(snap.all_samples()) == _model_rows(model)
        shards = [_rows(c) for c in snap.by_shard()]
        assert [row for s in shards for row in s] == _model_rows(model)
        for s in shards:  # one shard each, ascending
            assert len({r >> shard_bits for r, _, _ in s}) == 1
        assert store.num_samples() >= len(model)
        for frames in store.shards.values():
            assert all(f.shard == frames[0].shard for f in frames)
            assert all(a.level >= b.level for a, b in zip(frames, frames[1:]))


def test_rewritten_timestamps_keep_the_last_value_through_every_merge_level() -> None:
    # 70 seals of the same three timestamps: frames of every level hold each (ref, t), and
    # only the newest value may come back, so frames must stay in arrival order per shard.
    with mock.patch.object(store_mod, "SHARD_BITS", 1):
        store = SampleStore(seal_samples_per_series=1)
        refs = np.arange(6, dtype=np.int64)
        last: Model = {}
        for k in range(70):
            ts = np.full(6, k % 3, dtype=np.int64)
            vals = np.full(6, float(k))
            store.add(refs, ts, vals)
            last.update({(r, k % 3): float(k) for r in range(6)})
            store.seal()
        assert max(f.level for fs in store.shards.values() for f in fs) >= 2
        assert _rows(store.snapshot().all_samples()) == _model_rows(last)
        assert _rows(store.snapshot().gather(refs, 0, 2)) == _model_rows(last)

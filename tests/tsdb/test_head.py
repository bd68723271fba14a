"""The head through the Appender seam: batches, validation by reason, visibility, rollback."""

from __future__ import annotations

import threading

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from vigilops.tsdb.db import DB, DBOptions
from vigilops.tsdb.errors import RejectReason
from vigilops.tsdb.head.head import HeadOptions
from vigilops.tsdb.model import STALE_NAN, Labels, Matcher, MatchType

from .conftest import T0, bits, read_all, series_labels


def test_batch_append_reads_back_bit_exact(db: DB) -> None:
    labels = series_labels(50)
    app = db.appender()
    refs = app.refs(labels)
    assert len(set(refs.tolist())) == 50
    odd = np.array([1.5, -0.0, np.inf, -np.inf, STALE_NAN, np.nan, 1e300, 5e-324], dtype=np.float64)
    for k in range(40):
        vals = np.arange(50, dtype=np.float64) * k
        vals[:8] = odd
        r = app.append(refs, T0 + k * 15_000, vals)
        assert r.appended == 50 and not r.rejected
    assert app.commit().appended == 2000
    got = read_all(db)
    assert len(got) == 50
    for i, ls in enumerate(labels):
        ts, vs = got[ls]
        assert ts.tolist() == [T0 + k * 15_000 for k in range(40)]
        if i < 8:
            assert bits(vs) == bits(np.full(40, odd[i]))
        else:
            assert vs.tolist() == [float(i * k) for k in range(40)]


def test_refs_are_stable_and_cached(db: DB) -> None:
    labels = series_labels(10)
    r1 = db.appender().refs(labels)
    r2 = db.appender().refs(list(reversed(labels)))
    assert r1.tolist() == list(reversed(r2.tolist()))


def test_nothing_visible_before_commit_and_rollback_drops(db: DB) -> None:
    labels = series_labels(3)
    app = db.appender()
    refs = app.refs(labels)
    app.append(refs, T0, np.ones(3))
    assert read_all(db) == {}
    app.rollback()
    assert read_all(db) == {}
    app = db.appender()
    app.append(refs, T0, np.ones(3))
    app.commit()
    assert len(read_all(db)) == 3


def test_rejections_are_counted_by_reason(db: DB) -> None:
    labels = series_labels(4)
    app = db.appender()
    refs = app.refs(labels)
    app.append(refs, T0 + 10_000, np.array([1.0, 2.0, 3.0, 4.0]))
    app.commit()

    app = db.appender()
    # Series 0: same timestamp, same value (ignored silently); 1: same timestamp, other
    # value (duplicate); 2: older (out of order); 3: newer (accepted).
    r = app.append(
        refs,
        np.array([T0 + 10_000, T0 + 10_000, T0 + 5_000, T0 + 20_000]),
        np.array([1.0, 9.0, 3.0, 4.0]),
    )
    assert r.appended == 1
    assert r.rejected == {RejectReason.DUPLICATE: 1, RejectReason.OUT_OF_ORDER: 1}
    total = app.commit()
    assert total.appended == 1
    assert total.rejected == {RejectReason.DUPLICATE: 1, RejectReason.OUT_OF_ORDER: 1}
    assert db.metrics.samples_rejected.labels("out_of_order")._value.get() == 1

    unknown = db.appender()
    r = unknown.append(np.array([999_999], dtype=np.int64), T0 + 30_000, np.array([1.0]))
    assert r.rejected == {RejectReason.UNKNOWN_SERIES: 1}


def test_duplicates_inside_one_batch(db: DB) -> None:
    ls = series_labels(2)
    app = db.appender()
    refs = app.refs(ls)
    r = app.append(np.array([refs[0], refs[0], refs[1]]), T0, np.array([1.0, 2.0, 3.0]))
    assert r.rejected == {RejectReason.DUPLICATE: 1}
    assert r.appended == 2
    app.commit()
    got = read_all(db)
    assert got[ls[0]][1].tolist() == [2.0]  # the last write of a conflicting pair wins


def test_array_timestamps_any_order(db: DB) -> None:
    ls = series_labels(2)
    app = db.appender()
    refs = app.refs(ls)
    r = app.append(
        np.array([refs[1], refs[0], refs[1], refs[0]]),
        np.array([T0 + 2, T0 + 2, T0 + 1, T0 + 1]),
        np.array([12.0, 2.0, 11.0, 1.0]),
    )
    assert r.appended == 4 and not r.rejected
    app.commit()
    got = read_all(db)
    assert got[ls[0]][0].tolist() == [T0 + 1, T0 + 2]
    assert got[ls[1]][1].tolist() == [11.0, 12.0]


def test_out_of_order_window(db_path: str) -> None:
    opts = DBOptions(head=HeadOptions(out_of_order_window_ms=60_000))
    with DB.open(db_path, opts) as db:
        ls = series_labels(1)
        app = db.appender()
        ref = app.refs(ls)
        app.append(ref, T0 + 600_000, np.array([10.0]))
        app.commit()
        app = db.appender()
        r1 = app.append(ref, T0 + 570_000, np.array([9.0]))  # 30 s late: inside the window
        r2 = app.append(ref, T0 + 500_000, np.array([8.0]))  # 100 s late: too old
        assert r1.appended == 1 and not r1.rejected
        assert r2.rejected == {RejectReason.TOO_OLD: 1}
        app.commit()
        ts, vs = read_all(db)[ls[0]]
        assert ts.tolist() == [T0 + 570_000, T0 + 600_000]
        assert vs.tolist() == [9.0, 10.0]
        db.flush_head()
    with DB.open(db_path, opts) as db:
        assert read_all(db)[ls[0]][1].tolist() == [9.0, 10.0]


def test_commit_revalidates_against_concurrent_commits(db: DB) -> None:
    ls = series_labels(1)
    a = db.appender()
    ref = a.refs(ls)
    b = db.appender()
    a.append(ref, T0 + 20_000, np.array([2.0]))
    b.append(ref, T0 + 10_000, np.array([1.0]))  # valid when staged…
    assert a.commit().appended == 1
    result = b.commit()  # …but older than what `a` committed meanwhile
    assert result.appended == 0
    assert result.rejected == {RejectReason.OUT_OF_ORDER: 1}
    assert read_all(db)[ls[0]][1].tolist() == [2.0]


def test_out_of_bounds_after_head_cut(db: DB) -> None:
    ls = series_labels(3)
    app = db.appender()
    refs = app.refs(ls)
    app.commit()
    for k in range(4 * 60):  # 4 h at one-minute steps
        a = db.appender()
        a.append(refs, T0 + k * 60_000, np.full(3, float(k)))
        a.commit()
    db.maintain()
    assert db.block_list(), "a block should have been cut"
    a = db.appender()
    r = a.append(refs[:1], T0 + 1_000, np.array([1.0]))
    assert r.rejected == {RejectReason.OUT_OF_BOUNDS: 1}


def test_many_scrapes_seal_frames_and_stay_exact(db: DB) -> None:
    labels = series_labels(300)
    app = db.appender()
    refs = app.refs(labels)
    app.commit()
    rng = np.random.default_rng(7)
    expect = np.zeros((200, 300))
    counters = np.zeros(300)
    for k in range(200):
        counters += rng.integers(0, 5, 300)
        vals = counters.copy()
        vals[::3] = np.round(rng.random(100) * 100, 2)
        vals[1::7] = rng.random(len(vals[1::7]))
        expect[k] = vals
        a = db.appender()
        a.append(refs, T0 + k * 15_000, vals)
        a.commit()
    db.head.drain_seals()
    assert db.head.store.frame_count() > 0, "the log should have been sealed into frames"
    got = read_all(db)
    for i, ls in enumerate(labels):
        assert bits(got[ls][1]) == bits(expect[:, i])


def test_concurrent_appends_and_queries(db: DB) -> None:
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            ls = series_labels(100, metric=f"w{offset}_")
            app = db.appender()
            refs = app.refs(ls)
            app.commit()
            for k in range(150):
                a = db.appender()
                a.append(refs, T0 + k * 1000, np.full(100, float(k)))
                a.commit()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(30):
                with db.querier(T0, T0 + 10**7) as q:
                    for s in q.select([Matcher(MatchType.REGEX, "__name__", "w.*")]):
                        assert (np.diff(s.timestamps) > 0).all()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    got = read_all(db)
    assert len(got) == 300
    assert all(len(ts) == 150 for ts, _ in got.values())


def test_label_queries_honour_matchers_and_limits(db: DB) -> None:
    labels = series_labels(35)
    app = db.appender()
    refs = app.refs(labels)
    app.append(refs, T0, np.ones(35))
    app.commit()
    with db.querier(T0, T0) as q:
        names, warnings = q.label_names()
        assert names == ["__name__", "id", "instance"] and warnings == []
        values, _ = q.label_values("instance", [Matcher(MatchType.EQUAL, "__name__", "m1")])
        assert values == sorted({f"host-{i % 5}" for i in range(35) if i % 7 == 1})
        limited, _ = q.label_values("id", limit=3)
        assert len(limited) == 3
        sel = q.series([Matcher(MatchType.REGEX, "instance", "host-(1|2)"),
                        Matcher(MatchType.NOT_EQUAL, "__name__", "m0")])
        assert sel == sorted(
            ls for ls in labels if ls.get("instance") in ("host-1", "host-2") and ls.name != "m0"
        )
        assert q.series([Matcher(MatchType.EQUAL, "missing", "")], limit=2) == sorted(labels)[:2]
    with db.querier(T0 + 1, T0 + 100) as q:
        assert list(q.select([Matcher(MatchType.EQUAL, "id", "3")])) == []


def test_labels_with_empty_values_are_absent() -> None:
    assert Labels({"a": "1", "b": ""}) == Labels({"a": "1"})


def test_background_sealing_with_concurrent_cuts_and_queries_loses_nothing(db_path: str) -> None:
    from vigilops.tsdb.db import DBOptions

    # Seal often (every 2 samples per series) so the sealer, head cuts and queries interleave.
    opts = DBOptions(head=HeadOptions(seal_samples_per_series=2))
    labels = series_labels(2500)
    n_scrapes = 600  # 600 minutes: several block ranges, so maintain() cuts while sealing
    errors: list[BaseException] = []
    with DB.open(db_path, opts) as db:
        app = db.appender()
        refs = app.refs(labels)
        app.commit()
        done = threading.Event()

        def maintain() -> None:
            try:
                while not done.is_set():
                    db.maintain()
                    with db.querier(T0, T0 + 10**9) as q:
                        for s in q.select([Matcher(MatchType.EQUAL, "id", "7")]):
                            assert (np.diff(s.timestamps) > 0).all()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        worker = threading.Thread(target=maintain)
        worker.start()
        try:
            for k in range(n_scrapes):
                a = db.appender()
                a.append(refs, T0 + k * 60_000, np.arange(2500, dtype=np.float64) + k)
                a.commit()
        finally:
            done.set()
            worker.join()
        assert not errors, errors
        db.head.drain_seals()

        def check(d: DB) -> None:
            got = read_all(d)
            assert len(got) == 2500
            for i, ls in enumerate(labels):
                ts, vs = got[ls]
                assert ts.tolist() == [T0 + k * 60_000 for k in range(n_scrapes)]
                assert vs.tolist() == [float(i + k) for k in range(n_scrapes)]

        check(db)
        assert db.block_list(), "maintain() should have cut blocks while the sealer ran"
    with DB.open(db_path, opts) as db:
        check(db)


def test_one_transaction_checks_its_batches_against_each_other(db: DB) -> None:
    ls = series_labels(2)
    app = db.appender()
    refs = app.refs(ls)
    app.append(refs, T0 + 20_000, np.array([2.0, 2.0]))
    app.append(refs[:1], T0 + 10_000, np.array([1.0]))  # older than the first batch
    app.append(refs[1:], T0 + 30_000, np.array([3.0]))  # newer: fine
    result = app.commit()
    assert result.appended == 3
    assert result.rejected == {RejectReason.OUT_OF_ORDER: 1}
    got = read_all(db)
    assert got[ls[0]][1].tolist() == [2.0] and got[ls[1]][1].tolist() == [2.0, 3.0]


@given(st.lists(st.integers(min_value=1, max_value=40), max_size=60))
def test_registry_duplicate_check_agrees_with_unique(refs: list[int]) -> None:
    from vigilops.tsdb.head.registry import SeriesRegistry

    reg = SeriesRegistry(capacity=8)
    reg.get_or_create([Labels({"__name__": "m", "i": str(i)}) for i in range(1, 41)])
    arr = np.array(refs, dtype=np.int64)
    assert reg.has_duplicates(arr) == (len(np.unique(arr)) != len(arr))
    # The scratch slots keep whatever the last call wrote: a second call is still exact.
    assert reg.has_duplicates(arr[::-1].copy()) == (len(np.unique(arr)) != len(arr))


def test_a_catastrophic_regex_matcher_selects_without_stalling(db: DB) -> None:
    """``{foo=~"(a+)+b"}`` over a long value: linear-time matching (a backtracking engine
    would never return)."""
    long_value = "a" * 5000 + "c"
    labels = [Labels({"__name__": "m", "foo": long_value}), Labels({"__name__": "m", "foo": "aab"})]
    app = db.appender()
    app.append(app.refs(labels), T0, np.ones(2))
    app.commit()
    with db.querier(T0, T0) as q:
        assert q.series([Matcher(MatchType.REGEX, "foo", "(a+)+b")]) == [labels[1]]
        assert q.series([Matcher(MatchType.NOT_REGEX, "foo", "(a+)+b")]) == [labels[0]]


def test_appends_and_reads_go_on_while_a_cut_decodes(db: DB, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The cut works out its split outside the head's lock: held in that phase, the head
    takes an append (and refuses one older than the cut), answers a read, and the sealer
    publishes nothing; afterwards the cut took exactly the older samples and the head
    keeps the rest, the append made during the cut included."""
    from vigilops.tsdb.head import head as head_module

    ls = series_labels(300)
    refs = db.appender().refs(ls)
    for k in range(3 * 60):  # 3 h at one-minute steps: frames sealed and merged
        a = db.appender()
        a.append(refs, T0 + k * 60_000, np.full(300, float(k)))
        a.commit()
    head = db.head
    head.drain_seals()
    cut_t = T0 + 2 * 3_600_000
    planning, release = threading.Event(), threading.Event()
    real_plan = head_module.plan_cut

    def held_plan(*args, **kwargs):  # type: ignore[no-untyped-def]
        planning.set()
        assert release.wait(60)
        return real_plan(*args, **kwargs)

    monkeypatch.setattr(head_module, "plan_cut", held_plan)
    result: list[object] = []
    cutter = threading.Thread(target=lambda: result.append(head.cut(cut_t)))
    cutter.start()
    try:
        assert planning.wait(60)
        frames_before = head.store.frame_count()
        a = db.appender()
        assert a.append(refs[:1], T0 + 3 * 3_600_000, np.array([-1.0])).appended == 1
        assert a.append(refs[1:2], T0 + 1_000, np.array([-2.0])).rejected == {RejectReason.OUT_OF_BOUNDS: 1}
        assert a.commit().appended == 1
        assert len(read_all(db)) == 300  # reads see the pre-cut head meanwhile
        head.drain_seals()  # what the sealer thread does: it must not publish now
        assert head.store.frame_count() == frames_before
    finally:
        release.set()
        cutter.join(60)
    labels, cols = result[0].columns()  # type: ignore[attr-defined]
    assert len(labels) == 300 and len(cols) == 300 * 120
    assert int(cols.timestamps.max()) < cut_t
    rest = read_all(db)
    assert rest[ls[0]][0].tolist() == [T0 + k * 60_000 for k in range(120, 180)] + [T0 + 3 * 3_600_000]
    assert rest[ls[0]][1].tolist()[-1] == -1.0
    assert rest[ls[1]][0].tolist() == [T0 + k * 60_000 for k in range(120, 180)]


def test_reads_see_a_cut_range_at_every_step_of_its_persisting(db: DB, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The head keeps the cut samples until their block is written and opened: a read
    before the block is written, and one after it is opened (block and head both hold
    them), return every sample once."""
    from vigilops.tsdb import db as db_module

    ls = series_labels(20)
    refs = db.appender().refs(ls)
    for k in range(4 * 60):  # 4 h: maintenance cuts the first 2 h
        a = db.appender()
        a.append(refs, T0 + k * 60_000, np.full(20, float(k)))
        a.commit()
    expected = {l: [T0 + k * 60_000 for k in range(240)] for l in ls}
    seen: list[dict[Labels, list[int]]] = []

    def snapshot() -> None:
        seen.append({l: ts.tolist() for l, (ts, _) in read_all(db).items()})

    real_write, real_add = db_module.write_block_slices, db_module.DB._add_block

    def write_block(*args, **kwargs):  # type: ignore[no-untyped-def]
        snapshot()
        return real_write(*args, **kwargs)

    def add_block(self, block):  # type: ignore[no-untyped-def]
        real_add(self, block)
        snapshot()

    monkeypatch.setattr(db_module, "write_block_slices", write_block)
    monkeypatch.setattr(db_module.DB, "_add_block", add_block)
    db.maintain()
    assert len(seen) == 2 and db.block_list()
    assert all(s == expected for s in seen)
    assert {l: ts.tolist() for l, (ts, _) in read_all(db).items()} == expected


def test_a_failed_persist_leaves_the_samples_in_the_head(db: DB) -> None:
    ls = series_labels(5)
    refs = db.appender().refs(ls)
    for k in range(3 * 60):
        a = db.appender()
        a.append(refs, T0 + k * 60_000, np.full(5, float(k)))
        a.commit()

    def fail(spool) -> None:  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    cut_t = T0 + 2 * 3_600_000
    try:
        db.head.cut(cut_t, fail)
    except OSError:
        pass
    else:
        raise AssertionError("the persist error should propagate")
    assert all(len(ts) == 180 for ts, _ in read_all(db).values())
    labels, cols = db.head.cut(cut_t).columns()  # the next attempt takes them
    assert len(labels) == 5 and len(cols) == 5 * 120


def test_the_sealer_releases_memory_after_its_rounds_and_a_cut_after_each_shard(db_path: str) -> None:
    """`DBOptions.release_memory` reaches the head's sealer (called once a round of seals
    is done, before the sealer reports idle) and the cut (once per shard spooled)."""
    calls: list[str] = []
    db = DB.open(db_path, DBOptions(release_memory=lambda: calls.append(threading.current_thread().name)))
    try:
        ls = series_labels(3_000)  # two shards
        refs = db.appender().refs(ls)
        for k in range(40):  # 16 samples a series make a seal
            a = db.appender()
            a.append(refs, T0 + k * 60_000, np.full(len(ls), float(k)))
            a.commit()
            assert db.head.wait_sealer_idle(60)
        assert db.head.store.frame_count() > 0 and not db.head.store.pending
        sealer_calls = calls.count("head-sealer")
        assert sealer_calls >= 2
        calls.clear()
        db.head.cut(T0 + 20 * 60_000, release_memory=lambda: calls.append("cut"))
        assert calls == ["cut", "cut"]
    finally:
        db.close()

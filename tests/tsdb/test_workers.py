"""`ordered_map`: results in item order, the calling thread working alongside the pool,
and the first failure (in item order) raised only once every call begun has ended."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

from vigilops.tsdb import workers


@pytest.fixture
def two_workers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(workers, "_WORKERS", 2)
    monkeypatch.setattr(workers, "_pool", None)  # a pool of exactly two threads
    yield
    if workers._pool is not None:
        workers._pool.shutdown()


def test_results_in_item_order_whatever_finishes_first(two_workers: None) -> None:
    def slow_first(k: int) -> int:
        time.sleep(0.002 * (20 - k) if k % 3 == 0 else 0)
        return k * k

    assert workers.ordered_map(slow_first, list(range(20))) == [k * k for k in range(20)]
    assert workers.ordered_map(slow_first, [7]) == [49]
    assert workers.ordered_map(slow_first, []) == []


def test_the_calling_thread_takes_items_too(two_workers: None) -> None:
    # Two items that can only finish together: with one pool thread to help, they do only
    # if the caller runs one of them.
    meet = threading.Barrier(2, timeout=10)
    ran_on: list[int] = []

    def together(k: int) -> int:
        ran_on.append(threading.get_ident())
        meet.wait()
        return k

    assert workers.ordered_map(together, [0, 1]) == [0, 1]
    assert threading.get_ident() in ran_on and len(set(ran_on)) == 2


def test_first_failure_in_item_order_after_the_calls_begun_end(two_workers: None) -> None:
    finished: list[int] = []
    second_started = threading.Event()

    def work(k: int) -> int:
        if k == 0:
            second_started.wait(10)
            raise ValueError("item 0")
        if k == 1:
            second_started.set()
            time.sleep(0.05)
            finished.append(k)
            raise KeyError("item 1")
        finished.append(k)
        return k

    with pytest.raises(ValueError, match="item 0"):
        workers.ordered_map(work, list(range(6)))
    assert 1 in finished  # item 1 had begun: it ended before ordered_map raised
    assert not set(finished) - {1, 2, 3, 4, 5}


def test_a_call_does_not_wait_for_helpers_stuck_behind_other_work(two_workers: None) -> None:
    # Both pool threads are busy elsewhere: the caller does every item itself and returns
    # without waiting for its helper to get a thread.
    release = threading.Event()
    busy = [workers._shared_pool().submit(release.wait, 30) for _ in range(2)]
    try:
        assert workers.ordered_map(lambda k: k + 1, [1, 2, 3]) == [2, 3, 4]
        assert not any(b.done() for b in busy)  # waiting for the helper would outlast them
    finally:
        release.set()
        for b in busy:
            b.result()


def test_piece_count_gives_several_pieces_a_thread_and_none_smaller_than_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(workers, "_WORKERS", 2)
    per = workers.PIECES_PER_THREAD
    assert per > 1
    assert workers.piece_count(10**9, 1000) == 2 * per  # large work: several a thread
    assert workers.piece_count(5_000, 1000) == min(5, 2 * per)  # each piece >= 1000 units
    assert workers.piece_count(999, 1000) == 1  # too small to split
    monkeypatch.setattr(workers, "_WORKERS", 1)
    assert workers.piece_count(10**9, 1000) == 1  # no threads to share it with


needs_two_cpus = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="threads are placed on CPUs only with two CPUs or more, on Linux",
)


def _affinities_while_working() -> tuple[dict[str, set[int]], int]:
    """Each thread's CPUs while it runs an item of a call whose first two items meet (so
    the caller and a pool thread both work), by role; and the caller's thread id."""
    meet = threading.Barrier(2, timeout=10)
    caller = threading.get_ident()
    seen: dict[str, set[int]] = {}

    def record(k: int) -> int:
        seen.setdefault("caller" if threading.get_ident() == caller else "helper", os.sched_getaffinity(0))
        if k < 2:
            meet.wait()
        return k

    items = list(range(workers.PIN_LEAST_ITEMS))
    assert workers.ordered_map(record, items) == items
    return seen, caller


@pytest.fixture
def pinning(two_workers: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "PIN_THREADS", True)  # whatever VIGILOPS_PIN_WORKERS says


@needs_two_cpus
def test_a_caller_working_alone_stays_on_its_cpu_and_its_helpers_keep_off_it(pinning: None) -> None:
    before = os.sched_getaffinity(0)
    seen, _ = _affinities_while_working()
    assert len(seen["caller"]) == 1
    assert seen["helper"] == before - seen["caller"]
    assert os.sched_getaffinity(0) == before  # given back


@needs_two_cpus
def test_concurrent_callers_after_the_first_are_left_where_they_are(pinning: None) -> None:
    first_working = threading.Barrier(3, timeout=10)  # its caller, its helper, this test
    release = threading.Event()

    def hold(k: int) -> int:
        if k < 2:
            first_working.wait()
            release.wait(10)
        return k

    before = os.sched_getaffinity(0)
    items = list(range(workers.PIN_LEAST_ITEMS))
    first = threading.Thread(target=workers.ordered_map, args=(hold, items))
    first.start()
    first_working.wait()  # the first call's caller (held) and a pool thread are working
    try:
        seen, _ = _affinities_while_working()  # the pool's second thread helps
    finally:
        release.set()
        first.join(10)
    assert seen["caller"] == before and seen["helper"] == before


@needs_two_cpus
def test_a_call_of_a_few_items_leaves_its_threads_where_they_are(pinning: None) -> None:
    before = os.sched_getaffinity(0)
    seen: list[set[int]] = []
    workers.ordered_map(lambda k: seen.append(os.sched_getaffinity(0)), range(workers.PIN_LEAST_ITEMS - 1))
    assert seen and all(cpus == before for cpus in seen)

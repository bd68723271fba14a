"""A few threads shared by the loops that release the GIL (frame decoding, JSON layout),
so that one large read or answer uses every core.

`ordered_map` runs a function over items on the pool and the calling thread and returns
the results in order; with one core, or fewer than two items, all in the calling thread. A
function run here must not itself call `ordered_map` (the pool is small: nested waits could
take every thread).

On Linux the pool's threads each keep to a CPU other than the first, and a caller working
alone keeps to the first while it works (`PIN_THREADS`; ``VIGILOPS_PIN_WORKERS=0`` turns
it off): otherwise a scheduler that packs threads onto few CPUs may run them in turns.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: At most this many threads, whatever the machine: the work split is coarse (frames,
#: runs of series) and the event loop and scrapes need their share.
MAX_WORKERS = 4

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


_WORKERS = max(1, min(os.cpu_count() or 1, MAX_WORKERS))

#: The CPUs this process may run on, when the platform lets threads choose (Linux).
_CPUS: list[int] = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
#: Whether `ordered_map` puts the caller and each pool thread on CPUs of their own (below).
PIN_THREADS = len(_CPUS) >= 2 and os.environ.get("VIGILOPS_PIN_WORKERS", "1") != "0"
_helpers_started = itertools.count()


def workers() -> int:
    """How many threads `ordered_map` spreads work over."""
    return _WORKERS


#: Pieces per thread that `piece_count` cuts work into: `ordered_map` hands pieces out in
#: turn, so a thread that starts late or shares its core with another process leaves the
#: rest of its share to the others instead of making them wait for its half.
PIECES_PER_THREAD = 4


def piece_count(size: int, least: int) -> int:
    """How many pieces to cut work of `size` units into for `ordered_map`, each of `least`
    units at least: one without worker threads, else up to `PIECES_PER_THREAD` a thread."""
    if workers() < 2:
        return 1
    return max(1, min(workers() * PIECES_PER_THREAD, size // least))


def _pin_helper() -> None:
    """A pool thread's start: its own CPU, never the first (the callers' while they wait)."""
    k = next(_helpers_started)
    os.sched_setaffinity(0, {_CPUS[1 + k % (len(_CPUS) - 1)]})


_working_callers = 0  # callers of `ordered_map` working now, under `_lock`


def _pin_caller() -> set[int]:
    """Put the calling thread on the first CPU if no other caller is working; return the
    CPUs to give it back (empty if it was left where it was)."""
    global _working_callers
    with _lock:
        _working_callers += 1
        if _working_callers > 1:
            return set()
    restore = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {_CPUS[0]})
    return restore


def _unpin_caller(restore: set[int]) -> None:
    global _working_callers
    if restore:
        os.sched_setaffinity(0, restore)
    with _lock:
        _working_callers -= 1


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                workers(), thread_name_prefix="vigilops-worker",
                initializer=_pin_helper if PIN_THREADS else None,
            )
        return _pool


def ordered_map(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[fn(x) for x in items]``, on the shared threads when that can help. The first
    exception raised by `fn` (in item order) propagates, once every call begun has ended.

    The calling thread works too: it and the pool's threads take the next item in turn
    until none is left, so a thread that is free early takes more, and a call with two
    items waits for one hand-over, not two."""
    n = len(items)
    if n < 2 or workers() < 2:
        return [fn(x) for x in items]
    results: list[R | None] = [None] * n
    failures: dict[int, BaseException] = {}
    taken = itertools.count()  # next() on it is atomic under the GIL

    def work() -> None:
        for k in taken:
            if k >= n or failures:
                return
            try:
                results[k] = fn(items[k])
            except BaseException as exc:  # noqa: BLE001 (re-raised by the caller)
                failures[k] = exc
                return

    helpers = [_shared_pool().submit(work) for _ in range(min(workers(), n) - 1)]
    # The caller works on the first CPU meanwhile, the pool threads each on another. Left
    # to itself, a scheduler that packs threads onto few CPUs (as on VMs whose idle vCPUs
    # halt) runs a caller and a helper woken after an idle moment on one CPU, in turns:
    # the histogram query took 18.9 ms instead of 14.3. Only a call running alone pins
    # its caller: the callers of concurrent calls stay free to spread.
    restore = _pin_caller() if PIN_THREADS else None
    try:
        work()
    finally:
        if restore is not None:
            _unpin_caller(restore)
    # A helper still queued behind other work would find nothing left: it is called off
    # (a cancelled future counts as done only once a thread has dequeued it).
    wait([helper for helper in helpers if not helper.cancel()])
    if failures:
        raise failures[min(failures)]
    return results  # type: ignore[return-value]  # every slot filled

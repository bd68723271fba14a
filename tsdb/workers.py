"""A few threads shared by the loops that release the GIL (frame decoding, JSON layout),
so that one large read or answer uses every core.

`ordered_map` runs a function over items on the pool and the calling thread and returns
the results in order; with one core, or fewer than two items, all in the calling thread. A
function run here must not itself call `ordered_map` (the pool is small: nested waits could
take every thread).

On Linux a caller working alone stays on its CPU while it works and the pool threads
helping it keep off that CPU (`PIN_THREADS`): otherwise a scheduler that packs threads
onto few CPUs may run them in turns.
"""

from __future__ import annotations

import ctypes
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
_CPUS: frozenset[int] = (
    frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else frozenset()
)


def _libc_sched_getcpu() -> Callable[[], int] | None:
    try:
        fn = ctypes.CDLL(None, use_errno=True).sched_getcpu
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = []
    return fn


#: The CPU the calling thread is on (glibc's, a vDSO read).
_sched_getcpu = _libc_sched_getcpu() if _CPUS else None
#: Whether `ordered_map` keeps a caller and its helpers on different CPUs (below);
#: ``VIGILOPS_PIN_WORKERS=0`` turns it off.
PIN_THREADS = (
    len(_CPUS) >= 2 and _sched_getcpu is not None
    and os.environ.get("VIGILOPS_PIN_WORKERS", "1") != "0"
)


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


#: Calls of fewer items leave their threads where the scheduler put them. (`piece_count`
#: cuts work into this many pieces only when there is enough of it.)
PIN_LEAST_ITEMS = 8
_working_callers = 0  # callers of `ordered_map` working now, under `_lock`
_held = threading.local()  # a pool thread's CPUs, as it last set them


def _hold_caller() -> tuple[set[int], int] | None:
    """Keep the calling thread on the CPU it is on, if no other caller is working; return
    the CPUs to give it back and that CPU (None if it was left free)."""
    global _working_callers
    with _lock:
        _working_callers += 1
        if _working_callers > 1:
            return None
    assert _sched_getcpu is not None
    cpu = _sched_getcpu()
    if cpu not in _CPUS:
        return None
    try:
        restore = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {cpu})
    except OSError:  # the CPUs allowed changed under us (a cgroup): work unplaced
        return None
    return restore, cpu


def _release_caller(held: tuple[set[int], int] | None) -> None:
    global _working_callers
    try:
        if held is not None:
            try:
                os.sched_setaffinity(0, held[0])
            except OSError:  # the CPUs allowed changed under us: the process's, then
                os.sched_setaffinity(0, os.sched_getaffinity(os.getpid()))
    finally:
        with _lock:
            _working_callers -= 1


def _keep_off(cpu: int | None) -> None:
    """Keep the calling pool thread off `cpu` (on any CPU if None)."""
    wanted = _CPUS - {cpu} if cpu is not None else _CPUS
    if getattr(_held, "cpus", _CPUS) != wanted:
        try:
            os.sched_setaffinity(0, wanted)
        except OSError:  # the CPUs allowed changed under us: left where it is
            return
        _held.cpus = wanted


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(workers(), thread_name_prefix="vigilops-worker")
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
    # While it works, a caller working alone stays on the CPU it is on, and the pool
    # threads helping it keep off that CPU. Left to itself, a scheduler that packs threads
    # onto few CPUs (as on VMs whose idle vCPUs halt) ran a caller and a helper woken after
    # an idle moment on one CPU, in turns: the histogram query took as long as with one
    # thread. The callers of concurrent calls stay free to spread, and so do calls of a
    # few items (small work: the system calls and a helper's move cost more than they save).
    pin = PIN_THREADS and n >= PIN_LEAST_ITEMS
    held = _hold_caller() if pin else None
    avoid = held[1] if held is not None else None

    def work(helper: bool) -> None:
        if helper and pin:
            _keep_off(avoid)
        for k in taken:
            if k >= n or failures:
                return
            try:
                results[k] = fn(items[k])
            except BaseException as exc:  # noqa: BLE001 (re-raised by the caller)
                failures[k] = exc
                return

    try:
        helpers = [_shared_pool().submit(work, True) for _ in range(min(workers(), n) - 1)]
        work(False)
    finally:
        if pin:
            _release_caller(held)
    # A helper still queued behind other work would find nothing left: it is called off
    # (a cancelled future counts as done only once a thread has dequeued it).
    wait([helper for helper in helpers if not helper.cancel()])
    if failures:
        raise failures[min(failures)]
    return results  # type: ignore[return-value]  # every slot filled

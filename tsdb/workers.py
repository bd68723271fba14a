"""A few threads shared by the loops that release the GIL (frame decoding, JSON layout),
so that one large read or answer uses every core.

`ordered_map` runs a function over items on the pool and returns the results in order;
with one core, or fewer than two items, it runs them in the calling thread. A function run
here must not itself call `ordered_map` (the pool is small: nested waits could take every
thread).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: At most this many threads, whatever the machine: the work split is coarse (frames,
#: runs of series) and the event loop and scrapes need their share.
MAX_WORKERS = 4

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


_WORKERS = max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def workers() -> int:
    """How many threads `ordered_map` spreads work over."""
    return _WORKERS


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(workers(), thread_name_prefix="vigilops-worker")
        return _pool


def ordered_map(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[fn(x) for x in items]``, on the shared threads when that can help. The first
    exception raised by `fn` (in item order) propagates."""
    if len(items) < 2 or workers() < 2:
        return [fn(x) for x in items]
    return list(_shared_pool().map(fn, items))

"""Process-wide allocator settings for a long-running server.

glibc raises its mmap threshold dynamically after large blocks are freed, after which the
head's large, short-lived numpy buffers (the open log, frames being sealed or merged) come
from the heap and their pages are never returned to the OS: RSS creeps (measured: 4.9 KB
per active series after an hour of 15 s samples with glibc's defaults).

The opposite extreme, every buffer above 128 KiB in its own mapping, keeps RSS lowest
(~1 KB per series) but makes every query pay a page fault per 4 KiB of every temporary
array: dashboard queries ran twice as slow. So the threshold is pinned high (32 MiB, which
stops the dynamic increase while query temporaries are reused from the heap), and the
server hands freed heap pages back to the OS with `trim` once a minute.

All threads share the main arena. glibc gives other threads (the head's sealer, the query
executor) arenas of their own, made of 64 MiB heaps whose free top is returned only when it
exceeds the trim threshold, which `malloc_trim` does not touch either: the sealer's
temporaries stayed resident in new heaps run after run (measured: 0.7 to 6.3 KB per series
for the same hour of samples, depending on the run and the series count). With one arena the
minute's `trim` reaches all freed memory. Contention is low: most allocations happen under
the GIL, and numpy allocates once per array.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from collections.abc import Callable

log = logging.getLogger("vigilops")

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
#: Fixing the threshold disables glibc's dynamic increase (32 MiB is its largest value).
MMAP_THRESHOLD_BYTES = 32 << 20
TRIM_THRESHOLD_BYTES = 64 << 20


def _mallopt() -> Callable[[int, int], int] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    typed: Callable[[int, int], int] = mallopt
    return typed


def tune_malloc_for_batch() -> bool:
    """For a short batch command that works on arrays of hundreds of megabytes (the
    backfill importer): every allocation from the heap and none returned before exit.

    By default each array above 32 MiB gets fresh pages from the kernel, which zeroes them:
    half of an import's CPU time went to zeroing pages of temporaries just freed. Kept in
    the heap, they are reused instead; peak RSS stays about the same (measured: 26.6 instead
    of 32.7 CPU-s for 61.6 M samples, 6.7 instead of 6.4 GiB peak). Not for the server,
    whose memory must go back to the OS. False (nothing done) on another libc.
    """
    mallopt = _mallopt()
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


def tune_malloc() -> bool:
    """Pin glibc's mmap and trim thresholds; False (and nothing done) on another libc."""
    mallopt = _mallopt()
    if mallopt is None:
        return False
    ok = (
        bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
        and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
        and bool(mallopt(_M_ARENA_MAX, 1))
    )
    if not ok:
        log.debug("mallopt refused the allocator settings")
    # Arrow (result formatting, the importer's parser) allocates through its own jemalloc by
    # default, whose purging makes each query's buffers fault in again; glibc's heap, tuned
    # above and trimmed on schedule, serves it faster (query encoding 150 -> 100 ms).
    import pyarrow

    pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    return ok


def trim() -> bool:
    """Return the free pages of every heap to the OS (glibc's ``malloc_trim(0)``)."""
    malloc_trim = _malloc_trim()
    return malloc_trim is not None and bool(malloc_trim(0))


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    # Looked up once: find_library runs ldconfig, and trim() runs at every step of a cut.
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        malloc_trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    malloc_trim.argtypes = [ctypes.c_size_t]
    malloc_trim.restype = ctypes.c_int
    typed: Callable[[int], int] = malloc_trim
    return typed

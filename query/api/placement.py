"""Where the API runs a query: on the event loop, or on a worker thread.

Handing a query to the executor and its answer back takes two thread wake-ups. On a host
whose cores idle between requests that is 0.2-0.3 ms, and the worker thread starts with
cold caches: as much as evaluating a small query. Dashboards send the same queries at
every refresh, so the time the last run of a query took is a good guess of the next one.
A query whose last run took at most `INLINE_BUDGET_S` runs on the event loop, which it
then holds no longer than that (scrapes and other requests wait that long at most); any
other query, and one not seen yet, runs in the executor. A query that has grown slower is
measured on the loop once, and goes back to the executor from then on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")

#: The longest a query's last run may have taken for it to run on the event loop.
INLINE_BUDGET_S = 0.005
#: Queries remembered; the memory is emptied when it is full (a dashboard's queries come
#: back within a refresh).
REMEMBERED = 4096


class QueryPlacement:
    """The last run time of each query (by a key the caller chooses: its text and shape),
    and the choice it implies. Thread-safe: single dict operations under the GIL."""

    def __init__(self, budget_s: float = INLINE_BUDGET_S, remembered: int = REMEMBERED) -> None:
        self.budget_s = budget_s
        self.remembered = remembered
        self._last_s: dict[Hashable, float] = {}

    def on_loop(self, key: Hashable) -> bool:
        """Whether the query `key` may run on the event loop."""
        last = self._last_s.get(key)
        return last is not None and last <= self.budget_s

    def timed(self, key: Hashable, run: Callable[[], T]) -> T:
        """`run()`, its wall time remembered for `key` if it returns (a failed run leaves
        the last time as it was)."""
        start = time.perf_counter()
        out = run()
        if len(self._last_s) >= self.remembered:
            self._last_s.clear()
        self._last_s[key] = time.perf_counter() - start
        return out

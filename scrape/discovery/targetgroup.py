"""The unit of service discovery: a target group, and the one-method discoverer contract."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

ADDRESS_LABEL = "__address__"


@dataclass(frozen=True)
class TargetGroup:
    """Targets that share a set of labels, as one discovery source reports them.

    `source` identifies the group within its discoverer ("0" for the first static config,
    ``"<file>:<index>"`` for file_sd, ``"<url>:<index>"`` for http_sd, as in Prometheus).
    Every target has at least ``__address__``. A target's own labels win over the group's
    `labels` of the same name. Label values may be empty; an empty value means "absent".

    The mappings are owned by the group once it is built: nobody mutates them afterwards.
    """

    source: str
    targets: tuple[Mapping[str, str], ...]
    labels: Mapping[str, str]


#: Receives the complete, current list of one discoverer's groups. It is called from the
#: discoverer's task on the event loop and must not block; it may keep the list.
UpdateFunc = Callable[[Sequence[TargetGroup]], None]


class Discoverer(Protocol):
    """A source of target groups (Prometheus's `discovery.Discoverer`, as a coroutine).

    `run` calls `updates` once as soon as it knows its initial groups (possibly none, e.g.
    when the first HTTP refresh fails), then again with the complete list whenever the list
    changes. A failed refresh keeps the last good groups. `run` returns only by being
    cancelled, and releases everything it opened (sessions, threads) when it is.
    """

    async def run(self, updates: UpdateFunc) -> None: ...

"""static_configs as a discoverer that reports its groups once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .targetgroup import ADDRESS_LABEL, TargetGroup, UpdateFunc

if TYPE_CHECKING:
    from ..config import StaticConfig


class StaticDiscoverer:
    """The target groups written in a job's `static_configs`.

    All static configs of a job form one discoverer; group `i` has source ``str(i)``, as
    Prometheus numbers them.
    """

    def __init__(self, configs: Sequence[StaticConfig], job: str) -> None:
        self.job = job
        self.groups: tuple[TargetGroup, ...] = tuple(
            TargetGroup(
                source=str(i),
                targets=tuple({ADDRESS_LABEL: t} for t in cfg.targets),
                labels=dict(cfg.labels),
            )
            for i, cfg in enumerate(configs)
        )

    async def run(self, updates: UpdateFunc) -> None:
        updates(list(self.groups))
        await asyncio.Event().wait()  # Until cancelled.

    def __repr__(self) -> str:
        return f"StaticDiscoverer(job={self.job!r}, groups={len(self.groups)})"

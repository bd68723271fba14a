"""Registered VigilOps agents as a discoverer: the built-in ``agents`` job's targets.

The registry of agents belongs to the server's wiring (`vigilops.agents`); discovery only
sees it through `AgentSource`, a snapshot plus a change notification. Each agent is one
group (source: its host name) with one target, its announced address, and the labels
``hostname`` and the agent's tags. The same groups, as JSON, are what
``/api/v1/agents/sd`` serves to an external Prometheus (`sd_json`).

An agent that stops announcing stays a target (its scrapes then show ``up`` 0): the
registry only marks it stale, and discovery reports what the registry holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..duration import format_duration_ms
from .targetgroup import ADDRESS_LABEL, TargetGroup, UpdateFunc

HOSTNAME_LABEL = "hostname"
META_VERSION = "__meta_vigilops_agent_version"
SCRAPE_INTERVAL_LABEL = "__scrape_interval__"
SCRAPE_TIMEOUT_LABEL = "__scrape_timeout__"
#: Prometheus's default scrape timeout; see `agent_group`.
DEFAULT_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class AgentTarget:
    """What discovery needs of one registered agent."""

    hostname: str
    address: str
    tags: Mapping[str, str] = field(default_factory=dict)
    version: str = ""
    #: The scrape interval the agent asked for, in seconds (None: the job's).
    scrape_interval_s: float | None = None


class AgentSource(Protocol):
    """The registry as discovery sees it. Both methods are called on the event loop."""

    def agent_targets(self) -> Sequence[AgentTarget]:
        """The registered agents now, in a stable order."""
        ...

    async def wait_changed(self) -> None:
        """Return after the next change of `agent_targets` (not a time-based staleness)."""
        ...


def agent_group(agent: AgentTarget) -> TargetGroup:
    """The group of one agent; its tags never override ``hostname``."""
    labels = {**agent.tags, HOSTNAME_LABEL: agent.hostname}
    if agent.version:
        labels[META_VERSION] = agent.version
    if agent.scrape_interval_s is not None:
        # Prometheus's per-target interval labels; the timeout may not exceed the interval,
        # so a hint below the usual 10 s timeout brings the timeout down with it.
        interval_ms = int(agent.scrape_interval_s * 1000)
        labels[SCRAPE_INTERVAL_LABEL] = format_duration_ms(interval_ms)
        if interval_ms < DEFAULT_TIMEOUT_MS:
            labels[SCRAPE_TIMEOUT_LABEL] = format_duration_ms(interval_ms)
    return TargetGroup(source=agent.hostname, targets=({ADDRESS_LABEL: agent.address},),
                       labels=labels)


def agent_groups(agents: Sequence[AgentTarget]) -> list[TargetGroup]:
    return [agent_group(a) for a in agents]


def sd_json(agents: Sequence[AgentTarget]) -> list[dict[str, Any]]:
    """The groups in the http_sd_configs format: ``[{"targets": [...], "labels": {...}}]``."""
    return [
        {"targets": [t[ADDRESS_LABEL] for t in g.targets], "labels": dict(sorted(g.labels.items()))}
        for g in agent_groups(agents)
    ]


class AgentDiscoverer:
    """Target groups of the agents in `source`, re-reported on every registry change."""

    def __init__(self, source: AgentSource) -> None:
        self.source = source

    async def run(self, updates: UpdateFunc) -> None:
        published: list[TargetGroup] | None = None
        while True:
            # No await between the snapshot and the wait: no change can slip in between.
            groups = agent_groups(self.source.agent_targets())
            if groups != published:
                published = groups
                updates(groups)
            await self.source.wait_changed()

    def __repr__(self) -> str:
        return "AgentDiscoverer()"

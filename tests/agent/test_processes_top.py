"""The optional top-N process collector: off by default, at most N series, aggregated by name."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from vigilops.agent.collectors import processes_top
from vigilops.agent.collectors.processes_top import TopProcessesCollector
from vigilops.agent.config import AgentConfig, ConfigError, TopProcessesConfig, parse_config
from vigilops.agent.server import build_registry

Times = namedtuple("Times", "user system")
Mem = namedtuple("Mem", "rss")


def by_family(collector: TopProcessesCollector) -> dict[str, dict[str, float]]:
    return {m.name: {s.labels["name"]: s.value for s in m.samples} for m in collector.collect()}


def test_disabled_by_default() -> None:
    config = parse_config("")
    assert config.top_processes == TopProcessesConfig(enabled=False, count=10, by="cpu")
    registry, runner = build_registry(config, "test")
    try:
        assert "top_processes" not in {c.name for c in runner.collectors}
    finally:
        runner.close()


@pytest.mark.parametrize("by", ["cpu", "memory"])
def test_enabled_exports_at_most_count_names(by: str) -> None:
    config = parse_config(f"top_processes: {{enabled: true, count: 3, by: {by}}}\n")
    registry, runner = build_registry(config, "test")
    try:
        assert "top_processes" in {c.name for c in runner.collectors}
        got: dict[str, list[dict[str, str]]] = {}
        for fam in registry.collect():
            if fam.name.startswith("vigilops_process_"):
                got[fam.name] = [s.labels for s in fam.samples]
        success = {s.labels["collector"]: s.value for fam in registry.collect()
                   if fam.name == "node_scrape_collector_success" for s in fam.samples}
    finally:
        runner.close()
    assert success["top_processes"] == 1
    assert set(got) == {"vigilops_process_cpu_seconds", "vigilops_process_resident_memory_bytes",
                        "vigilops_process_count"}
    for labels in got.values():
        assert 0 < len(labels) <= 3
        assert all(set(l) == {"name"} for l in labels)


def test_real_processes_cpu_counter_does_not_go_down() -> None:
    collector = TopProcessesCollector(count=50, by="cpu")
    first = by_family(collector)["vigilops_process_cpu_seconds"]
    second = by_family(collector)["vigilops_process_cpu_seconds"]
    assert len(first) <= 50 and len(second) <= 50
    for name in set(first) & set(second):
        assert second[name] >= first[name]


class FakeProcs:
    def __init__(self) -> None:
        self.procs: dict[int, tuple[str, float, float]] = {}  # pid -> (name, cpu, rss)

    def __call__(self, attrs: list[str], ad_value: Any = None) -> Iterator[SimpleNamespace]:
        for pid, (name, cpu, rss) in self.procs.items():
            yield SimpleNamespace(pid=pid, info={"name": name, "cpu_times": Times(cpu, 0.0),
                                                 "memory_info": Mem(rss), "create_time": 1.0})


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeProcs:
    procs = FakeProcs()
    monkeypatch.setattr(processes_top.psutil, "process_iter", procs)
    return procs


def test_aggregates_by_name_and_ranks(fake: FakeProcs) -> None:
    fake.procs = {1: ("nginx", 10.0, 100.0), 2: ("nginx", 5.0, 100.0), 3: ("postgres", 50.0, 150.0),
                  4: ("bash", 1.0, 10.0)}
    memory = TopProcessesCollector(count=2, by="memory")
    got = by_family(memory)
    assert got["vigilops_process_resident_memory_bytes"] == {"nginx": 200.0, "postgres": 150.0}
    assert got["vigilops_process_count"] == {"nginx": 2, "postgres": 1}
    cpu = TopProcessesCollector(count=1, by="cpu")
    assert by_family(cpu)["vigilops_process_cpu_seconds"] == {"postgres": 50.0}  # cumulative first
    fake.procs[4] = ("bash", 31.0, 10.0)  # busiest since the last scrape
    assert by_family(cpu)["vigilops_process_cpu_seconds"] == {"bash": 31.0}


def test_cpu_counter_survives_a_process_exit(fake: FakeProcs) -> None:
    fake.procs = {1: ("worker", 10.0, 1.0), 2: ("worker", 20.0, 1.0)}
    collector = TopProcessesCollector(count=5)
    assert by_family(collector)["vigilops_process_cpu_seconds"] == {"worker": 30.0}
    fake.procs = {1: ("worker", 12.0, 1.0), 3: ("worker", 1.0, 1.0)}  # 2 exited, 3 started
    assert by_family(collector)["vigilops_process_cpu_seconds"] == {"worker": 33.0}


@pytest.mark.parametrize(("text", "key"), [
    ("top_processes: {enabled: true, count: 51}\n", "top_processes.count:"),
    ("top_processes: {count: 0}\n", "top_processes.count:"),
    ("top_processes: {by: disk}\n", "top_processes.by:"),
    ("top_processes: {enabled: yes please}\n", "top_processes.enabled:"),
    ("top_processes: {limit: 5}\n", "top_processes.limit:"),
])
def test_invalid_top_processes_names_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert str(err.value).startswith(key)


def test_agent_config_default() -> None:
    assert AgentConfig().top_processes.enabled is False

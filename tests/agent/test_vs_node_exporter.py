"""Side by side with the real node_exporter (Debian's prometheus-node-exporter 1.5)."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
from pathlib import Path
from typing import NamedTuple

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .procs import agent_command, free_port, get, process, wait_http

NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"
COMPATIBILITY = Path(__file__).resolve().parents[2] / "agent" / "COMPATIBILITY.md"
# Process self-metrics differ by nature (Go vs Python runtime, two processes).
IGNORED_PREFIXES = ("go_", "process_", "promhttp_", "python_", "vigilops_agent_")
# Compared for type, HELP and label names only: they describe the exporter itself.
NO_VALUES = ("node_scrape_collector_*",)
# (pattern, absolute, relative) tolerance around the [first, second] scrape of the agent;
# first match wins. Values that do not move between scrapes must be exactly equal.
TOLERANCES: tuple[tuple[str, float, float], ...] = (
    ("node_memory_MemTotal_bytes", 0, 0), ("node_memory_SwapTotal_bytes", 0, 0),
    ("node_memory_VmallocTotal_bytes", 0, 0), ("node_memory_Hugepagesize_bytes", 0, 0),
    ("node_memory_HugePages_Total", 0, 0), ("node_filesystem_size_bytes", 0, 0),
    ("node_filesystem_files", 0, 0), ("node_filesystem_readonly", 0, 0),
    ("node_filesystem_device_error", 0, 0), ("node_boot_time_seconds", 0, 0),
    ("node_uname_info", 0, 0), ("node_disk_info", 0, 0), ("node_filefd_maximum", 0, 0),
    ("node_time_clocksource_*", 0, 0), ("node_time_zone_offset_seconds", 0, 0),
    ("node_entropy_pool_size_bits", 0, 0), ("node_textfile_*", 0, 0), ("agent_test_*", 0, 0),
    ("node_memory_*", 256 * 2**20, 0.05),
    ("node_filesystem_*", 2**30, 0.01),
    ("node_cpu_*", 5, 0),
    ("node_load*", 1.0, 0),
    ("node_time_seconds", 30, 0),
    ("node_procs_*", 10, 0),
    ("node_filefd_allocated", 500, 0),
    ("node_entropy_available_bits", 256, 0),
    ("node_pressure_*", 5, 0),
    ("node_sockstat_*", 50, 0.5),
    ("node_disk_io_now", 50, 0),
    ("node_disk_*", 1e7, 0.05),
    ("node_network_*", 1e6, 0.05),
    ("node_netstat_*", 1000, 0.05),
    ("node_vmstat_*", 1e5, 0.05),
    ("node_context_switches_total", 1e5, 0.05),
    ("node_intr_total", 1e5, 0.05),
    ("node_forks_total", 1000, 0.05),
)
TEXTFILE = """# HELP agent_test_jobs Jobs run by cron.
# TYPE agent_test_jobs gauge
agent_test_jobs{job="backup"} 3
agent_test_jobs{job="rotate"} 1
agent_test_untyped 7
"""


class Family(NamedTuple):
    type: str
    help: str
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(body: bytes) -> dict[str, Family]:
    out: dict[str, Family] = {}
    for fam in text_string_to_metric_families(body.decode()):
        if fam.name.startswith(IGNORED_PREFIXES):
            continue
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in fam.samples}
        out[fam.name] = Family(fam.type, fam.documentation, samples)
    return out


def tolerance(name: str) -> tuple[float, float]:
    for pattern, absolute, relative in TOLERANCES:
        if fnmatch.fnmatchcase(name, pattern):
            return absolute, relative
    raise AssertionError(f"no tolerance defined for {name}: add one to TOLERANCES")


def documented_missing() -> list[str]:
    return re.findall(r"^- `([^`]+)`", COMPATIBILITY.read_text(encoding="utf-8"), flags=re.M)


@pytest.mark.peer
def test_agent_matches_node_exporter(tmp_path: Path) -> None:
    if not os.path.exists(NODE_EXPORTER):
        pytest.fail("prometheus-node-exporter is not installed (Debian package)")
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    (textfiles / "cron.prom").write_text(TEXTFILE)
    config = tmp_path / "agent.yaml"
    config.write_text(f"textfile_directory: {textfiles}\ncollector_timeout: 20s\n")
    ne_port, our_port = free_port(), free_port()
    ne_args = [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{ne_port}",
               f"--collector.textfile.directory={textfiles}"]
    with process(ne_args, str(tmp_path / "ne.log")) as ne, \
            process(agent_command(str(config), our_port), str(tmp_path / "agent.log")) as agent:
        wait_http(f"http://127.0.0.1:{ne_port}/metrics", ne)
        wait_http(f"http://127.0.0.1:{our_port}/metrics", agent)
        first = parse(get(f"http://127.0.0.1:{our_port}/metrics"))
        theirs = parse(get(f"http://127.0.0.1:{ne_port}/metrics"))
        second = parse(get(f"http://127.0.0.1:{our_port}/metrics"))

    invented = sorted(set(first) - set(theirs))
    assert not invented, f"families node_exporter does not expose: {invented}"
    patterns = documented_missing()
    undocumented = [n for n in sorted(set(theirs) - set(first))
                    if not any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    assert not undocumented, f"missing families not listed in COMPATIBILITY.md: {undocumented}"
    assert "agent_test_jobs" in first and "node_cpu_seconds" in first

    problems: list[str] = []
    for name in sorted(set(first) & set(theirs)):
        ref, a, b = theirs[name], first[name], second[name]
        if (a.type, a.help) != (ref.type, ref.help):
            problems.append(f"{name}: type/help {(a.type, a.help)} != {(ref.type, ref.help)}")
        ref_labels = {frozenset(k for k, _ in labels) for _, labels in ref.samples}
        our_labels = {frozenset(k for k, _ in labels) for _, labels in a.samples}
        if ref_labels != our_labels:
            problems.append(f"{name}: label names {our_labels} != {ref_labels}")
        if any(fnmatch.fnmatchcase(name, p) for p in NO_VALUES):
            continue
        for key, value in ref.samples.items():
            if key not in a.samples or key not in b.samples:
                problems.append(f"{name}: series {key} missing from the agent")
                continue
            absolute, relative = tolerance(key[0])
            low, high = sorted((a.samples[key], b.samples[key]))
            slack = max(absolute, relative * abs(value))
            if not low - slack <= value <= high + slack:
                problems.append(f"{key}: node_exporter {value}, agent {low}..{high} (±{slack})")
        extra = set(a.samples) - set(ref.samples)
        if extra:
            problems.append(f"{name}: series node_exporter does not have: {sorted(extra)[:3]}")
    assert not problems, "\n".join(problems)
    compared = sum(len(theirs[n].samples) for n in set(first) & set(theirs))
    assert compared > 200, compared

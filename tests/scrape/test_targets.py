"""Turning discovered target groups into scrape targets, against Prometheus 2.42's rules and
against the real Prometheus."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from peerprocs import free_port
from aiohttp import web
from aiohttp.test_utils import TestServer

from vigilops.scrape.config import RelabelConfig, ScrapeConfig, load_config
from vigilops.scrape.discovery import (
    Discoverer,
    FileDiscoverer,
    HTTPDiscoverer,
    StaticDiscoverer,
    TargetGroup,
)
from vigilops.scrape.duration import format_duration_ms
from vigilops.scrape.targets import (
    DroppedTarget,
    Target,
    build_targets,
    build_targets_detailed,
    encode_query,
    go_url,
    split_host_port,
)
from vigilops.tsdb.model import Labels

PROMETHEUS = "/usr/bin/prometheus"


def scrape_config(**kw: Any) -> ScrapeConfig:
    kw.setdefault("job_name", "job")
    kw.setdefault("scrape_interval_ms", 15_000)
    kw.setdefault("scrape_timeout_ms", 10_000)
    return ScrapeConfig(**kw)


def rule(**kw: Any) -> RelabelConfig:
    return RelabelConfig(**kw)


def group(*targets: dict[str, str], labels: dict[str, str] | None = None, source: str = "0") -> TargetGroup:
    return TargetGroup(source, tuple(targets), labels or {})


def defaults(address: str, **extra: str) -> dict[str, str]:
    """The discovered labels of a target of `scrape_config()` with no other labels."""
    d = {
        "__address__": address,
        "__metrics_path__": "/metrics",
        "__scheme__": "http",
        "__scrape_interval__": "15s",
        "__scrape_timeout__": "10s",
        "job": "job",
    }
    d.update(extra)
    return {k: v for k, v in d.items() if v != ""}


@dataclass
class Case:
    name: str
    target: dict[str, str]
    group_labels: dict[str, str] = field(default_factory=dict)
    cfg: dict[str, Any] = field(default_factory=dict)
    rules: list[RelabelConfig] = field(default_factory=list)
    # Exactly one of the three outcomes.
    labels: dict[str, str] | None = None  # active target: its public labels
    discovered: dict[str, str] | None = None  # active or dropped: labels before relabeling
    url: str | None = None
    interval_ms: int = 15_000
    timeout_ms: int = 10_000
    dropped: bool = False
    error: str | None = None


CASES = [
    # --- defaults and precedence -----------------------------------------------------------
    Case(
        "defaults",
        {"__address__": "10.0.0.1:9100"},
        labels={"instance": "10.0.0.1:9100", "job": "job"},
        discovered=defaults("10.0.0.1:9100"),
        url="http://10.0.0.1:9100/metrics",
    ),
    Case(
        "target labels override group labels",
        {"__address__": "a:1", "team": "b"},
        group_labels={"team": "a", "env": "prod"},
        labels={"env": "prod", "team": "b", "instance": "a:1", "job": "job"},
        discovered=defaults("a:1", env="prod", team="b"),
        url="http://a:1/metrics",
    ),
    Case(
        "discovered job, scheme, path and interval win over the config",
        {
            "__address__": "a:1",
            "__scheme__": "https",
            "__metrics_path__": "/m",
            "__scrape_interval__": "30s",
        },
        group_labels={"job": "other", "__scrape_timeout__": "20s"},
        labels={"instance": "a:1", "job": "other"},
        discovered=defaults(
            "a:1", __scheme__="https", __metrics_path__="/m", __scrape_interval__="30s",
            __scrape_timeout__="20s", job="other",
        ),
        url="https://a:1/m",
        interval_ms=30_000,
        timeout_ms=20_000,
    ),
    Case(
        "empty values are absent",
        {"__address__": "a:1", "job": ""},
        group_labels={"env": ""},
        labels={"instance": "a:1", "job": "job"},
        discovered=defaults("a:1"),
        url="http://a:1/metrics",
    ),
    Case(
        "config durations as Prometheus prints them",
        {"__address__": "a:1"},
        cfg={
            "scrape_interval_ms": 90_000,
            "scrape_timeout_ms": 1_500,
            "metrics_path": "/x",
            "scheme": "https",
        },
        labels={"instance": "a:1", "job": "job"},
        discovered=defaults(
            "a:1", __scrape_interval__="1m30s", __scrape_timeout__="1s500ms", __metrics_path__="/x",
            __scheme__="https",
        ),
        url="https://a:1/x",
        interval_ms=90_000,
        timeout_ms=1_500,
    ),
    # --- addresses and default ports -------------------------------------------------------
    Case(
        "http gets port 80",
        {"__address__": "host"},
        labels={"instance": "host:80", "job": "job"},
        discovered=defaults("host"),
        url="http://host:80/metrics",
    ),
    Case(
        "https gets port 443",
        {"__address__": "host"},
        cfg={"scheme": "https"},
        labels={"instance": "host:443", "job": "job"},
        discovered=defaults("host", __scheme__="https"),
        url="https://host:443/metrics",
    ),
    Case(
        "bracketed IPv6 gets a port",
        {"__address__": "[::1]"},
        labels={"instance": "[::1]:80", "job": "job"},
        discovered=defaults("[::1]"),
        url="http://[::1]:80/metrics",
    ),
    Case(
        "bare IPv6 cannot take a port and is left alone",
        {"__address__": "::1"},
        labels={"instance": "::1", "job": "job"},
        discovered=defaults("::1"),
        url="http://::1/metrics",
    ),
    Case(
        "an empty port is a port",
        {"__address__": "h:"},
        labels={"instance": "h:", "job": "job"},
        discovered=defaults("h:"),
        url="http://h:/metrics",
    ),
    Case(
        "relabeled scheme decides the port",
        {"__address__": "host"},
        rules=[rule(target_label="__scheme__", replacement="https")],
        labels={"instance": "host:443", "job": "job"},
        discovered=defaults("host"),
        url="https://host:443/metrics",
    ),
    Case(
        "another scheme with a port is fine",
        {"__address__": "host:21"},
        rules=[rule(target_label="__scheme__", replacement="ftp")],
        labels={"instance": "host:21", "job": "job"},
        discovered=defaults("host:21"),
        url="ftp://host:21/metrics",
    ),
    Case(
        "another scheme without a port is an error quoting the job's scheme",
        {"__address__": "host"},
        rules=[rule(target_label="__scheme__", replacement="ftp")],
        error='invalid scheme: "http"',
    ),
    Case(
        "no scheme means http",
        {"__address__": "host"},
        rules=[rule(action="labeldrop", regex="__scheme__")],
        labels={"instance": "host:80", "job": "job"},
        discovered=defaults("host"),
        url="//host:80/metrics",
    ),
    Case("a slash is not a hostname", {"__address__": "a/b"}, error='"a/b:80" is not a valid hostname'),
    Case("a slash after the port", {"__address__": "a:1/b"}, error='"a:1/b" is not a valid hostname'),
    Case("empty address", {"__address__": ""}, error="no address"),
    Case(
        "address removed by relabeling",
        {"__address__": "a:1"},
        rules=[rule(source_labels=["__address__"], target_label="__address__", replacement="")],
        error="no address",
    ),
    Case(
        "address built from meta labels",
        {"__address__": "", "__meta_host": "h", "__meta_port": "7"},
        rules=[
            rule(
                source_labels=["__meta_host", "__meta_port"], separator=":", regex="(.+)",
                target_label="__address__",
            )
        ],
        labels={"instance": "h:7", "job": "job"},
        discovered=defaults("", __meta_host="h", __meta_port="7"),
        url="http://h:7/metrics",
    ),
    # --- relabeling ------------------------------------------------------------------------
    Case(
        "dropped by drop",
        {"__address__": "a:1", "__meta_x": "y"},
        rules=[rule(source_labels=["__address__"], regex="a:.*", action="drop")],
        dropped=True,
        discovered=defaults("a:1", __meta_x="y"),
    ),
    Case(
        "dropped by keep",
        {"__address__": "a:1"},
        group_labels={"env": "dev"},
        rules=[rule(source_labels=["env"], regex="prod", action="keep")],
        dropped=True,
        discovered=defaults("a:1", env="dev"),
    ),
    Case(
        "discovered labels are those before relabeling",
        {"__address__": "a:1", "team": "x"},
        rules=[
            rule(source_labels=["team"], target_label="team", replacement="y"),
            rule(action="labeldrop", regex="job"),
            rule(
                source_labels=["__address__"], regex="(.*):1", target_label="__address__",
                replacement="$1:2",
            ),
        ],
        labels={"instance": "a:2", "team": "y"},
        discovered=defaults("a:1", team="x"),
        url="http://a:2/metrics",
    ),
    Case(
        "meta labels are removed, labelmap copies them",
        {"__address__": "a:1", "__meta_sd_zone": "z1", "__meta_sd_rack": "r"},
        rules=[rule(action="labelmap", regex="__meta_sd_(zone)")],
        labels={"instance": "a:1", "job": "job", "zone": "z1"},
        discovered=defaults("a:1", __meta_sd_zone="z1", __meta_sd_rack="r"),
        url="http://a:1/metrics",
    ),
    Case(
        "other __ labels stay hidden",
        {"__address__": "a:1"},
        rules=[
            rule(target_label="__tmp_x", replacement="1"),
            rule(source_labels=["__tmp_x"], target_label="x"),
        ],
        labels={"instance": "a:1", "job": "job", "x": "1"},
        discovered=defaults("a:1"),
        url="http://a:1/metrics",
    ),
    Case(
        "instance from discovery is kept",
        {"__address__": "a:1", "instance": "my-host"},
        labels={"instance": "my-host", "job": "job"},
        discovered=defaults("a:1", instance="my-host"),
        url="http://a:1/metrics",
    ),
    Case(
        "instance from relabeling is kept",
        {"__address__": "a:1"},
        rules=[
            rule(
                source_labels=["__address__"], regex="(.*):.*", target_label="instance",
                replacement="$1",
            )
        ],
        labels={"instance": "a", "job": "job"},
        discovered=defaults("a:1"),
        url="http://a:1/metrics",
    ),
    Case(
        "hashmod sharding",
        {"__address__": "a:1"},
        rules=[
            rule(source_labels=["__address__"], modulus=1, target_label="__tmp_hash", action="hashmod"),
            rule(source_labels=["__tmp_hash"], regex="0", action="keep"),
        ],
        labels={"instance": "a:1", "job": "job"},
        discovered=defaults("a:1"),
        url="http://a:1/metrics",
    ),
    # --- URL parameters --------------------------------------------------------------------
    Case(
        "config params: first value as a label, all in the URL",
        {"__address__": "a:1"},
        cfg={"params": {"module": ["m1", "m2"], "target": ["x y&z"], "none": []}},
        labels={"instance": "a:1", "job": "job"},
        discovered=defaults("a:1", __param_module="m1", __param_target="x y&z"),
        url="http://a:1/metrics?module=m1&module=m2&target=x+y%26z",
    ),
    Case(
        "config params override discovered ones",
        {"__address__": "a:1", "__param_module": "disc", "__param_extra": "e"},
        cfg={"params": {"module": ["m1"]}},
        labels={"instance": "a:1", "job": "job"},
        discovered=defaults("a:1", __param_module="m1", __param_extra="e"),
        url="http://a:1/metrics?extra=e&module=m1",
    ),
    Case(
        "relabeled params replace the first value or add one",
        {"__address__": "a:1"},
        cfg={"params": {"module": ["m1", "m2"]}},
        rules=[
            rule(target_label="__param_module", replacement="r1"),
            rule(target_label="__param_new", replacement="n"),
        ],
        labels={"instance": "a:1", "job": "job"},
        discovered=defaults("a:1", __param_module="m1"),
        url="http://a:1/metrics?module=r1&module=m2&new=n",
    ),
    Case(
        "a param label removed by relabeling leaves the config's values",
        {"__address__": "a:1"},
        cfg={"params": {"module": ["m1", "m2"]}},
        rules=[rule(action="labeldrop", regex="__param_module")],
        labels={"instance": "a:1", "job": "job"},
        discovered=defaults("a:1", __param_module="m1"),
        url="http://a:1/metrics?module=m1&module=m2",
    ),
    Case(
        "path escaping",
        {"__address__": "a:1", "__metrics_path__": "/a b?c/é;x=1"},
        labels={"instance": "a:1", "job": "job"},
        discovered=defaults("a:1", __metrics_path__="/a b?c/é;x=1"),
        url="http://a:1/a%20b%3Fc/%C3%A9;x=1",
    ),
    Case(
        "a relative path gets its slash",
        {"__address__": "a:1", "__metrics_path__": "metrics"},
        labels={"instance": "a:1", "job": "job"},
        discovered=defaults("a:1", __metrics_path__="metrics"),
        url="http://a:1/metrics",
    ),
    # --- interval and timeout --------------------------------------------------------------
    Case(
        "interval and timeout from relabeling",
        {"__address__": "a:1"},
        rules=[rule(target_label="__scrape_interval__", replacement="1m"),
               rule(target_label="__scrape_timeout__", replacement="1m")],
        labels={"instance": "a:1", "job": "job"},
        discovered=defaults("a:1"),
        url="http://a:1/metrics",
        interval_ms=60_000,
        timeout_ms=60_000,
    ),
    Case(
        "interval that is not a duration",
        {"__address__": "a:1"},
        rules=[rule(target_label="__scrape_interval__", replacement="fast")],
        error='error parsing scrape interval: not a valid duration string: "fast"',
    ),
    Case(
        "interval removed",
        {"__address__": "a:1"},
        rules=[rule(action="labeldrop", regex="__scrape_interval__")],
        error="error parsing scrape interval: empty duration string",
    ),
    Case(
        "zero interval",
        {"__address__": "a:1"},
        rules=[rule(target_label="__scrape_interval__", replacement="0")],
        error="scrape interval cannot be 0",
    ),
    Case(
        "timeout that is not a duration",
        {"__address__": "a:1", "__scrape_timeout__": "1.5s"},
        error='error parsing scrape timeout: not a valid duration string: "1.5s"',
    ),
    Case(
        "zero timeout",
        {"__address__": "a:1", "__scrape_timeout__": "0s"},
        error="scrape timeout cannot be 0",
    ),
    Case(
        "timeout above interval",
        {"__address__": "a:1", "__scrape_timeout__": "2m"},
        cfg={"scrape_interval_ms": 90_000},
        error='scrape timeout cannot be greater than scrape interval ("2m" > "1m30s")',
    ),
    Case(
        "duration out of range",
        {"__address__": "a:1", "__scrape_interval__": "300y"},
        error="error parsing scrape interval: duration out of range",
    ),
    # --- label values ----------------------------------------------------------------------
    Case(
        "label value that is not UTF-8",
        {"__address__": "a:1", "bad": "\ud800"},
        error='invalid label value for "bad"',
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_build_targets(case: Case) -> None:
    cfg = scrape_config(relabel_configs=case.rules, **case.cfg)
    result = build_targets_detailed([group(case.target, labels=case.group_labels, source="src")], cfg)
    if case.error is not None:
        assert result.targets == [] and result.dropped == []
        assert len(result.failures) == 1
        assert result.failures[0].startswith("instance 0 in group src: ")
        assert case.error in result.failures[0]
        return
    assert result.failures == []
    assert case.discovered is not None
    if case.dropped:
        assert result.targets == []
        assert result.dropped == [DroppedTarget(Labels(case.discovered))]
        return
    assert result.dropped == []
    [t] = result.targets
    assert t.labels.to_dict() == case.labels
    assert t.discovered_labels.to_dict() == case.discovered
    assert t.url == case.url
    assert (t.interval_ms, t.timeout_ms) == (case.interval_ms, case.timeout_ms)
    assert all(name.startswith("__") or name in t.labels.names() for name in t.all_labels.names())


def test_failures_are_per_target_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    groups = [
        group({"__address__": "a:1"}, {"__address__": ""}, {"__address__": "b:2"}, source="g1"),
        group({"__address__": "x/y"}, source="g2"),
    ]
    with caplog.at_level(logging.ERROR, logger="vigilops.scrape.targets"):
        targets, dropped = build_targets(groups, scrape_config())
    assert [t.labels.get("instance") for t in targets] == ["a:1", "b:2"]
    assert dropped == []
    assert [r.getMessage() for r in caplog.records] == [
        "job job: creating target failed: instance 1 in group g1: no address",
        'job job: creating target failed: instance 0 in group g2: "x/y:80" is not a valid hostname',
    ]


def test_duplicates_are_scraped_once() -> None:
    cfg = scrape_config(
        relabel_configs=[
            rule(action="labeldrop", regex="origin"),
            rule(source_labels=["__address__"], regex="drop:.*", action="drop"),
        ]
    )
    groups = [
        group(
            {"__address__": "a:1"},
            {"__address__": "a:1"},
            {"__address__": "drop:1"},
            {"__address__": "drop:1"},
            labels={"origin": "g1"},
            source="g1",
        ),
        group({"__address__": "a:1"}, {"__address__": "b:1"}, labels={"origin": "g2"}, source="g2"),
    ]
    targets, dropped = build_targets(groups, cfg)
    assert [t.labels.get("instance") for t in targets] == ["a:1", "b:1"]
    # The kept duplicate shows the discovered labels of the last one, as Prometheus does.
    assert targets[0].discovered_labels.get("origin") == "g2"
    # Dropped targets are all listed.
    assert len(dropped) == 2


def test_hidden_labels_and_timing_make_different_targets() -> None:
    cfg = scrape_config(
        relabel_configs=[
            rule(source_labels=["shard"], target_label="__tmp_shard"),
            rule(action="labeldrop", regex="shard"),
            rule(source_labels=["slow"], regex="yes", target_label="__scrape_interval__", replacement="1m"),
            rule(action="labeldrop", regex="slow"),
        ]
    )
    targets, _ = build_targets(
        [
            group({"__address__": "a:1", "shard": "1"}, {"__address__": "a:1", "shard": "2"}),
            group({"__address__": "a:1", "shard": "1", "slow": "yes"}),
        ],
        cfg,
    )
    assert len(targets) == 3
    assert len({t.labels for t in targets}) == 1
    assert len({t.url for t in targets}) == 1
    assert len({t.key() for t in targets}) == 3
    assert sorted(t.interval_ms for t in targets) == [15_000, 15_000, 60_000]


def test_key_is_stable_across_rebuilds() -> None:
    cfg = scrape_config(params={"m": ["1"]})
    groups = [group({"__address__": "a:1"}, {"__address__": "b:1"})]
    first, _ = build_targets(groups, cfg)
    again, _ = build_targets(list(reversed(groups)), cfg)
    assert {t.key() for t in first} == {t.key() for t in again}
    assert first == again


def test_target_without_all_labels_still_has_a_key() -> None:
    t = Target(Labels({"job": "j"}), Labels({"__address__": "a"}), "http://a/metrics", 1000, 1000)
    assert t.key() == (Labels({"job": "j"}), "http://a/metrics", 1000, 1000)


@pytest.mark.parametrize(
    ("hostport", "expected"),
    [
        ("a:1", ("a", "1")),
        ("a:", ("a", "")),
        (":1", ("", "1")),
        ("a", None),
        ("::1", None),
        ("[::1]:80", ("::1", "80")),
        ("[::1]", None),
        ("[::1]x:80", None),
        ("[::1]:80:90", None),
        ("a]:80", None),
        ("[a:80", None),
        ("a[b:80", None),
        ("a:b:c", None),
    ],
)
def test_split_host_port_like_go(hostport: str, expected: tuple[str, str] | None) -> None:
    assert split_host_port(hostport) == expected


def test_go_url_and_query() -> None:
    query = encode_query({"b": ["2", "1"], "a": ["x y", "ü/&="], "c": []})
    assert query == "a=x+y&a=%C3%BC%2F%26%3D&b=2&b=1"
    assert go_url("http", "h:1", "/metrics", "") == "http://h:1/metrics"
    assert go_url("http", "h:1", "", "a=1") == "http://h:1?a=1"
    assert go_url("http", "h:1", "*", "") == "http://h:1/*"
    assert go_url("http", "h h:1", "/!*'()", "") == "http://h%20h:1/%21%2A%27%28%29"
    assert go_url("", "h:1", "/m", "") == "//h:1/m"


# --- side by side with the real Prometheus 2.42 -----------------------------------------------
#
# Prometheus 2.42 relabels in place in the memory of the discovered label set, so
# /api/v1/targets shows corrupted "discoveredLabels" for some targets whose relabeling
# rewrites or removes labels (see vigilops.scrape.targets). The corruption cannot happen when
# the first rule that changes anything adds a new label and the discovered set was allocated
# exactly full, i.e. when the defaults filled in (job, scheme, path, interval, timeout and
# the params) outnumber the discovered labels. Every job below starts with such a rule and
# keeps its groups small; the rules after it are free to do anything.

PEER_CONFIG = """
global:
  scrape_interval: 1m
  scrape_timeout: 10s
scrape_configs:
  - job_name: static
    scrape_interval: 90s
    scrape_timeout: 1500ms
    params:
      module: [m1, "m 2"]
      empty: []
    static_configs:
      - targets: ["127.0.0.1:{p1}", "127.0.0.1:{p1}", "127.0.0.1", "[::1]", "127.0.0.9:{p2}"]
        labels: {{env: prod}}
      - targets: ["127.0.0.2:{p2}", "127.0.0.3:{p2}", "127.0.0.4:{p2}"]
        labels: {{env: dev, team: "a b"}}
    relabel_configs:
      - target_label: __tmp_seen
        replacement: "1"
      - source_labels: [__address__]
        regex: "127.0.0.3:.*"
        action: drop
      - source_labels: [env, team]
        separator: "/"
        regex: "dev/(.*)"
        target_label: __param_module
        replacement: "dev-$1"
      - source_labels: [__address__]
        regex: "127.0.0.1"
        target_label: __scheme__
        replacement: https
      - source_labels: [__address__]
        regex: "127.0.0.4:.*"
        target_label: __metrics_path__
        replacement: "/probe me?x"
      - source_labels: [__address__]
        regex: "127.0.0.9:.*"
        target_label: __scheme__
        replacement: ftp
      - source_labels: [__address__]
        modulus: 8
        target_label: __tmp_hash
        action: hashmod
      - source_labels: [__tmp_hash]
        target_label: shard
      - source_labels: [__address__]
        regex: "(.*):.*"
        target_label: host
        replacement: "$1"
  - job_name: files
    file_sd_configs:
      - files: ["sd/*.json", "sd/extra.yml"]
    relabel_configs:
      - target_label: __tmp_seen
        replacement: "1"
      - action: labelmap
        regex: "__meta_(filepath)"
        replacement: "sd_$1"
      - source_labels: [role]
        regex: skip
        action: drop
      - source_labels: [role]
        regex: "web|db|skip|bad|empty|slow"
        action: keep
      - action: labeldrop
        regex: "secret_.*"
      - source_labels: [__meta_port]
        target_label: __tmp_port
      - source_labels: [__address__, __tmp_port]
        separator: ":"
        regex: "([^:]+)(?::[0-9]+)?:([0-9]+)"
        target_label: __address__
        replacement: "$1:$2"
      - source_labels: [role]
        regex: slow
        target_label: __scrape_interval__
        replacement: 5m
      - source_labels: [role]
        regex: slow
        target_label: __scrape_timeout__
        replacement: 1m
      - source_labels: [role]
        regex: bad
        target_label: __scrape_interval__
        replacement: forever
      - source_labels: [role]
        regex: empty
        target_label: __address__
        replacement: ""
      - source_labels: [__address__]
        regex: "127.0.0.5:.*"
        target_label: instance
        replacement: my-instance
"""

PEER_HTTP_SD_JOB = """
  - job_name: http
    http_sd_configs:
      - url: "http://127.0.0.1:{sd}/sd"
        refresh_interval: 30s
    relabel_configs:
      - target_label: __tmp_seen
        replacement: "1"
      - action: labelmap
        regex: "__meta_(url)"
        replacement: "sd_$1"
      - source_labels: [dc]
        regex: eu
        action: drop
"""

PEER_HTTP_SD = [
    {"targets": ["127.0.0.16:{p1}", "127.0.0.17"], "labels": {"dc": "us"}},
    {"targets": ["127.0.0.18:{p1}"], "labels": {"dc": "eu"}},
]

PEER_SD_JSON = [
    {"targets": ["127.0.0.5", "127.0.0.6:{p1}"], "labels": {"role": "web", "secret_token": "x"}},
    {"targets": ["127.0.0.7"], "labels": {"role": "db", "__meta_port": "{p2}"}},
    {"targets": ["127.0.0.8:{p1}"], "labels": {"role": "skip"}},
    {"targets": ["127.0.0.10:{p1}"], "labels": {"role": "other"}},
]
PEER_SD_JSON_2 = [
    {"targets": ["127.0.0.11:{p1}"], "labels": {"role": "bad"}},
    {"targets": ["127.0.0.12:{p1}"], "labels": {"role": "empty"}},
    {"targets": ["x/y"], "labels": {"role": "web"}},
]
PEER_SD_YAML = """
- targets: ["127.0.0.13:{p2}", "127.0.0.14"]
  labels:
    role: slow
    port: 8080
- targets: ["127.0.0.15:{p2}"]
  labels: {{role: web}}
"""


async def _serve_json(body: bytes) -> TestServer:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/sd", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


def _fill(obj: Any, ports: dict[str, int]) -> Any:
    return json.loads(json.dumps(obj).replace("{p1}", str(ports["p1"])).replace("{p2}", str(ports["p2"])))


async def _our_targets(config_path: Path) -> dict[str, Any]:
    """Load the config, run our discoverers to their first answer, build the targets."""
    cfg = load_config(str(config_path))
    active: list[dict[str, Any]] = []
    dropped: list[dict[str, str]] = []
    failures: set[str] = set()
    for sc in cfg.scrape_configs:
        discoverers: list[Discoverer] = []
        if sc.static_configs:
            discoverers.append(StaticDiscoverer(sc.static_configs, sc.job_name))
        discoverers += [FileDiscoverer(f, cfg.directory) for f in sc.file_sd_configs]
        discoverers += [HTTPDiscoverer(h) for h in sc.http_sd_configs]
        groups: list[TargetGroup] = []
        for d in discoverers:
            first: asyncio.Future[list[TargetGroup]] = asyncio.get_running_loop().create_future()

            def on_update(update: Sequence[TargetGroup], first: asyncio.Future[Any] = first) -> None:
                if not first.done():
                    first.set_result(list(update))

            task = asyncio.create_task(d.run(on_update))
            groups += await asyncio.wait_for(first, 30)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        result = build_targets_detailed(groups, sc)
        failures.update(result.failures)
        for t in result.targets:
            active.append(
                {
                    "scrapePool": sc.job_name,
                    "labels": t.labels.to_dict(),
                    "discoveredLabels": t.discovered_labels.to_dict(),
                    "scrapeUrl": t.url,
                    "scrapeInterval": format_duration_ms(t.interval_ms),
                    "scrapeTimeout": format_duration_ms(t.timeout_ms),
                }
            )
        dropped += [d.discovered_labels.to_dict() for d in result.dropped]
    return {"active": active, "dropped": dropped, "failures": failures}


def _canonical(items: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(i, sort_keys=True) for i in items)


_LOG_ERR = re.compile(r'msg="Creating target failed" err="((?:[^"\\]|\\.)*)"')


@pytest.mark.peer
@pytest.mark.skipif(not os.access(PROMETHEUS, os.X_OK), reason="Prometheus is not installed")
async def test_targets_match_prometheus(tmp_path: Path) -> None:
    ports = {"p1": free_port(), "p2": free_port()}
    sd_server = await _serve_json(json.dumps(_fill(PEER_HTTP_SD, ports)).encode())
    try:
        await _compare_with_prometheus(tmp_path, {**ports, "sd": sd_server.port})
    finally:
        await sd_server.close()


async def _compare_with_prometheus(tmp_path: Path, ports: dict[str, Any]) -> None:
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text((PEER_CONFIG + PEER_HTTP_SD_JOB).format(**ports))
    (tmp_path / "sd").mkdir()
    (tmp_path / "sd" / "a.json").write_text(json.dumps(_fill(PEER_SD_JSON, ports)))
    (tmp_path / "sd" / "b.json").write_text(json.dumps(_fill(PEER_SD_JSON_2, ports)))
    (tmp_path / "sd" / "extra.yml").write_text(PEER_SD_YAML.format(**ports))

    ours = await _our_targets(config_path)
    # The config exercises every outcome.
    assert {t["scrapePool"] for t in ours["active"]} == {"static", "files", "http"}
    assert len(ours["active"]) >= 12 and len(ours["dropped"]) >= 4 and len(ours["failures"]) >= 3

    web_port = free_port()
    log_path = tmp_path / "prometheus.log"
    with open(log_path, "wb") as log:
        proc = await asyncio.create_subprocess_exec(
            PROMETHEUS,
            f"--config.file={config_path}",
            f"--web.listen-address=127.0.0.1:{web_port}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            stdout=log,
            stderr=log,
        )
    try:
        data: dict[str, Any] = {}
        async with aiohttp.ClientSession() as session:

            async def settled() -> None:
                nonlocal data
                want = (len(ours["active"]), len(ours["dropped"]))
                while True:
                    if proc.returncode is not None:
                        pytest.fail(f"prometheus exited: {log_path.read_text()[-2000:]}")
                    try:
                        async with session.get(f"http://127.0.0.1:{web_port}/api/v1/targets") as resp:
                            if resp.status == 200:
                                data = (await resp.json())["data"]
                                got = (len(data["activeTargets"]), len(data["droppedTargets"]))
                                if got == want:
                                    return
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.25)

            # Prometheus applies discovered targets every 5 s; this only guards against a hang.
            try:
                await asyncio.wait_for(settled(), 90)
            except TimeoutError:
                pass  # compare what is there, for a useful diff
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    fields = ("scrapePool", "labels", "discoveredLabels", "scrapeUrl", "scrapeInterval", "scrapeTimeout")
    theirs_active = [{k: t[k] for k in fields} for t in data.get("activeTargets", [])]
    assert _canonical(ours["active"]) == _canonical(theirs_active)
    theirs_dropped = [t["discoveredLabels"] for t in data.get("droppedTargets", [])]
    assert Counter(_canonical(ours["dropped"])) == Counter(_canonical(theirs_dropped))

    theirs_failures = {
        json.loads(f'"{m}"') for m in _LOG_ERR.findall(log_path.read_text())
    }
    assert ours["failures"] == theirs_failures

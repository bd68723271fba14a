"""Agent self-registration: agent.yaml `server:`, the announcement, the server's registry,
the built-in `agents` job and /api/v1/agents*, end to end with real processes on loopback."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import pytest

from vigilops.agent.collectors import COLLECTORS
from vigilops.agent.config import ConfigError, ServerConfig, parse_config
from vigilops.agent.registration import advertise_address
from vigilops.agents import (
    AgentEntry,
    AgentRegistry,
    Agents,
    AnnouncementError,
    parse_announcement,
)
from vigilops.scrape.config import parse_config as parse_server_config
from vigilops.scrape.discovery import TargetGroup
from vigilops.scrape.discovery.agents import AgentDiscoverer
from vigilops.scrape.discovery.decode import decode_json

from peerprocs import fetch

from .procs import free_port, get, process, wait_http

VIGILOPS = [sys.executable, "-m", "vigilops.cli"]
T = TypeVar("T")


def poll(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """`check()` once it is truthy; fails after `timeout` seconds with the last value."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"{what} not within {timeout}s; last: {last!r}")


# --- agent.yaml `server:` ------------------------------------------------------------------


def test_server_config() -> None:
    config = parse_config("listen_address: 127.0.0.1:9200\nserver:\n  url: http://mon:9090/\n"
                          "  token: ' vgo_x '\n  announce_interval: 1s\n")
    assert config.server == ServerConfig("http://mon:9090", "vgo_x", 1.0, None)
    assert parse_config("").server is None


def test_server_token_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("vgo_secret\n")
    config = parse_config(f"server: {{url: https://mon, token_file: {tmp_path / 'token'}}}\n")
    assert config.server is not None and config.server.token == "vgo_secret"


@pytest.mark.parametrize(("text", "key"), [
    ("server: {url: http://mon, token: t, tokn: x}\n", "server.tokn:"),
    ("server: {token: t}\n", "server.url:"),
    ("server: {url: ftp://mon, token: t}\n", "server.url:"),
    ("server: {url: http://mon}\n", "server.token:"),
    ("server: {url: http://mon, token: t, token_file: /x}\n", "server.token:"),
    ("server: {url: http://mon, token_file: /nonexistent/token}\n", "server.token_file:"),
    ("server: {url: http://mon, token: t, announce_interval: often}\n", "server.announce_interval:"),
    ("server: {url: http://mon, token: t, advertise_address: web-1}\n", "server.advertise_address:"),
    ("server: [http://mon]\n", "server:"),
])
def test_invalid_server_config_names_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert str(err.value).startswith(key)


@pytest.mark.parametrize(("listen", "advertise", "expected"), [
    (":9100", None, "web-1:9100"),
    ("0.0.0.0:9100", None, "web-1:9100"),
    ("10.0.0.7:9100", None, "10.0.0.7:9100"),
    ("[::1]:9100", None, "[::1]:9100"),
    (":9100", "web-1.example:9100", "web-1.example:9100"),
])
def test_advertise_address(listen: str, advertise: str | None, expected: str) -> None:
    extra = f", advertise_address: '{advertise}'" if advertise else ""
    config = parse_config(f"listen_address: '{listen}'\nhostname: web-1\n"
                          f"server: {{url: http://mon, token: t{extra}}}\n")
    assert advertise_address(config) == expected


# --- the server side, in process -----------------------------------------------------------


def announcement(**fields: Any) -> bytes:
    return json.dumps({"hostname": "web-1", "address": "10.0.0.1:9100", **fields}).encode()


def test_announcement_parsed() -> None:
    agent = parse_announcement(announcement(tags={"env": "prod"}, version="0.1.0",
                                            announceInterval=1.5))
    assert (agent.hostname, agent.address, agent.tags, agent.version, agent.announce_interval_s) \
        == ("web-1", "10.0.0.1:9100", {"env": "prod"}, "0.1.0", 1.5)


@pytest.mark.parametrize(("body", "field"), [
    (b"{not json", "body"),
    (b"[]", "body"),
    (announcement(hostname=""), "hostname"),
    (announcement(address="10.0.0.1"), "address"),
    (announcement(address="10.0.0.1:99999"), "address"),
    (announcement(address="10.0.0.1:80/x"), "address"),
    (announcement(address=[]), "address"),
    (announcement(tags={"bad-name": "x"}), "tags.bad-name"),
    (announcement(tags={"job": "x"}), "tags.job"),
    (announcement(tags={"env": 1}), "tags.env"),
    (announcement(announceInterval=0), "announceInterval"),
    (announcement(extra=1), "extra"),
])
def test_malformed_announcement_names_the_field(body: bytes, field: str) -> None:
    with pytest.raises(AnnouncementError) as err:
        parse_announcement(body)
    assert str(err.value).startswith(f"{field}:")


def test_stale_after_three_missed_intervals() -> None:
    agent = AgentEntry("web-1", "10.0.0.1:9100", announce_interval_s=10, last_seen=1000.0)
    assert not agent.stale(1029.0)
    assert agent.stale(1031.0)


def test_agents_job_added_unless_the_config_has_one(tmp_path: Path) -> None:
    agents = Agents(str(tmp_path))
    cfg = parse_server_config("global: {scrape_interval: 7s, scrape_timeout: 3s}\n")
    with_job, builtin = agents.with_agents_job(cfg)
    job = with_job.scrape_config("agents")
    assert job is not None and (job.scrape_interval_ms, job.scrape_timeout_ms) == (7000, 3000)
    assert set(builtin) == {"agents"}
    assert cfg.scrape_config("agents") is None  # the loaded config itself is left alone
    # Same factory each time, so a reload does not restart the job's discovery.
    assert agents.with_agents_job(cfg)[1]["agents"] is builtin["agents"]
    user = parse_server_config(
        "scrape_configs:\n  - job_name: agents\n    static_configs: [{targets: ['h:1']}]\n")
    assert agents.with_agents_job(user) == (user, {})


async def test_discoverer_follows_the_registry(tmp_path: Path) -> None:
    registry = AgentRegistry(str(tmp_path))
    seen: list[Sequence[TargetGroup]] = []
    task = asyncio.create_task(AgentDiscoverer(registry).run(seen.append))
    try:
        await asyncio.sleep(0)
        assert seen == [[]]
        registry.announce(parse_announcement(announcement(tags={"env": "prod"})), 1000.0)
        await asyncio.sleep(0)
        assert len(seen) == 2
        (group,) = seen[-1]
        assert group.targets == ({"__address__": "10.0.0.1:9100"},)
        assert group.labels["hostname"] == "web-1" and group.labels["env"] == "prod"
        # A re-announcement that changes nothing but lastSeen is not a discovery change.
        registry.announce(parse_announcement(announcement(tags={"env": "prod"})), 1001.0)
        await asyncio.sleep(0)
        assert len(seen) == 2
        registry.announce(parse_announcement(announcement(address="10.0.0.2:9100")), 1002.0)
        await asyncio.sleep(0)
        assert seen[-1][0].targets == ({"__address__": "10.0.0.2:9100"},)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await registry.flush()
    reloaded = AgentRegistry(str(tmp_path))
    reloaded.load()
    assert reloaded.agents["web-1"].address == "10.0.0.2:9100"
    assert reloaded.agents["web-1"].first_seen == 1000.0


async def test_builtin_job_in_the_scrape_manager_across_reloads(tmp_path: Path) -> None:
    """Registered agents become targets of `agents`; a reload keeps them; a user job of that
    name replaces the built-in one (and its discoverer), and removing it brings it back."""
    from vigilops.scrape.manager import ScrapeManager
    from vigilops.scrape.metrics import ScrapeMetrics
    from vigilops.tsdb.db import DB

    def hosts() -> list[str]:
        return sorted(loop.target.labels.to_dict().get("hostname", "-")
                      for loop in manager.pools["agents"].loops.values())

    async def until(cond: Callable[[], bool]) -> None:
        for _ in range(400):
            if cond():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("condition not reached")

    db = DB.open(str(tmp_path / "data"))
    agents = Agents(str(tmp_path / "data"))
    manager = ScrapeManager(db, ScrapeMetrics(None))
    plain = parse_server_config("global: {scrape_interval: 1h, scrape_timeout: 10s}\n")
    user = parse_server_config(
        "global: {scrape_interval: 1h, scrape_timeout: 10s}\nscrape_configs:\n"
        "  - job_name: agents\n    static_configs: [{targets: ['127.0.0.1:2']}]\n")
    try:
        await manager.apply_config(*agents.with_agents_job(plain))
        agents.registry.announce(parse_announcement(announcement(address="127.0.0.1:1")), 1.0)
        await until(lambda: hosts() == ["web-1"])
        loop = next(iter(manager.pools["agents"].loops.values()))
        await manager.apply_config(*agents.with_agents_job(plain))
        assert next(iter(manager.pools["agents"].loops.values())) is loop  # untouched
        await manager.apply_config(*agents.with_agents_job(user))
        await until(lambda: hosts() == ["-"])
        await manager.apply_config(*agents.with_agents_job(plain))
        await until(lambda: hosts() == ["web-1"])
    finally:
        await manager.stop()
        db.close()


def test_corrupt_registry_is_moved_aside(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "registry.json").write_text("{torn")
    registry = AgentRegistry(str(tmp_path))
    registry.load()
    assert registry.agents == {}
    assert (tmp_path / "agents" / "registry.json.corrupt").exists()


# --- end to end: `vigilops server` + `vigilops agent` ---------------------------------------

#: The collectors the test agents run: cheap ones, the scrape is what matters here.
CHEAP_COLLECTORS = {name: name in ("loadavg", "time") for name in COLLECTORS}


class Stack:
    def __init__(self, tmp: Path, stack: ExitStack) -> None:
        self.tmp, self.stack = tmp, stack
        self.data = tmp / "data"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = tmp / "prometheus.yml"
        config.write_text("global: {scrape_interval: 1s, scrape_timeout: 1s}\n")
        self.server = stack.enter_context(process(
            [*VIGILOPS, "server", "--config.file", str(config), "--storage.tsdb.path",
             str(self.data), "--web.listen-address", f"127.0.0.1:{self.port}"],
            str(tmp / "server.log")))
        wait_http(f"{self.base}/-/ready", self.server)
        # Created while the server runs: the server picks new tokens up without a reload.
        out = subprocess.run([*VIGILOPS, "agent-token", "create", "--data-dir", str(self.data),
                              "--name", "e2e"], capture_output=True, text=True, timeout=60,
                             check=True)
        self.token = out.stdout.strip()
        self.agent_port = free_port()
        self.agent = self.start_agent("e2e-agent", self.agent_port, self.token)

    def start_agent(self, hostname: str, port: int, token: str) -> subprocess.Popen[bytes]:
        path = self.tmp / f"{hostname}.yaml"
        path.write_text(json.dumps({
            "listen_address": f"127.0.0.1:{port}",
            "hostname": hostname,
            "tags": {"env": "test", "role": "web"},
            "collectors": CHEAP_COLLECTORS,
            "server": {"url": self.base, "token": token, "announce_interval": "1s"},
        }))
        proc = self.stack.enter_context(process(
            [*VIGILOPS, "agent", "--config", str(path)], str(self.tmp / f"{hostname}.log")))
        wait_http(f"http://127.0.0.1:{port}/metrics", proc)
        return proc

    def api(self, path: str) -> Any:
        return json.loads(get(self.base + path))["data"]

    def agents(self) -> dict[str, dict[str, Any]]:
        return {a["hostname"]: a for a in self.api("/api/v1/agents")}

    def agent_targets(self) -> list[dict[str, Any]]:
        return [t for t in self.api("/api/v1/targets?state=active")["activeTargets"]
                if t["scrapePool"] == "agents"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with ExitStack() as es:  # Every process is stopped, whatever fails.
        yield Stack(tmp_path_factory.mktemp("registration"), es)


def post(url: str, body: bytes, token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    status, _, body = fetch(req)
    return status, json.loads(body)


def test_registered_agent_is_listed_and_scraped(stack: Stack) -> None:
    address = f"127.0.0.1:{stack.agent_port}"
    agent = poll(lambda: stack.agents().get("e2e-agent"), 60, "agent registered")
    assert agent["address"] == address
    assert agent["tags"] == {"env": "test", "role": "web"}
    assert agent["stale"] is False and agent["announceInterval"] == 1.0
    assert agent["lastSeen"].endswith("Z") and agent["version"]

    def scraped() -> dict[str, Any] | None:
        targets = stack.agent_targets()
        return targets[0] if targets and targets[0]["health"] == "up" else None

    target = poll(scraped, 60, "agent target up")
    assert target["labels"] == {"env": "test", "hostname": "e2e-agent", "instance": address,
                                "job": "agents", "role": "web"}
    assert target["scrapeUrl"] == f"http://{address}/metrics"
    metrics = get(f"{stack.base}/metrics").decode()
    assert 'vigilops_agents{state="active"} 1.0' in metrics
    assert 'vigilops_agent_registrations_total{result="ok"}' in metrics


def test_sd_endpoint_is_http_sd_json(stack: Stack) -> None:
    poll(lambda: stack.agents().get("e2e-agent"), 60, "agent registered")
    with urllib.request.urlopen(f"{stack.base}/api/v1/agents/sd", timeout=30) as resp:
        assert resp.headers.get_content_type() == "application/json"
        body = resp.read()
    groups = decode_json(body)  # The http_sd decoder VigilOps itself uses; it validates.
    assert json.loads(body) == [{
        "targets": [f"127.0.0.1:{stack.agent_port}"],
        "labels": {"__meta_vigilops_agent_version": stack.agents()["e2e-agent"]["version"],
                   "env": "test", "hostname": "e2e-agent", "role": "web"},
    }]
    assert len(groups) == 1


def test_bad_token_is_refused_and_does_not_register(stack: Stack) -> None:
    url = f"{stack.base}/api/v1/agents/register"
    body = announcement(hostname="intruder", address="127.0.0.1:1")
    for token in (None, "", "vgo_wrong", stack.token + "x"):
        status, doc = post(url, body, token)
        assert status == 401, token
        assert doc["status"] == "error" and doc["errorType"] == "unauthorized"
    status, doc = post(url, b'{"hostname": "intruder"}', stack.token)
    assert (status, doc["errorType"]) == (400, "bad_data")
    assert doc["error"].startswith("address:")
    # A real agent with a wrong token keeps being refused, and says why.
    stack.start_agent("intruder-agent", free_port(), "vgo_not-a-token")
    log = stack.tmp / "intruder-agent.log"
    poll(lambda: "answered 401" in log.read_text(), 60, "refusal logged by the agent")
    assert "intruder" not in "".join(stack.agents())
    assert all(t["labels"]["hostname"] == "e2e-agent" for t in stack.agent_targets())
    assert 'vigilops_agent_registrations_total{result="unauthorized"}' in get(
        f"{stack.base}/metrics").decode()


def test_revoked_token_is_refused(stack: Stack) -> None:
    data = str(stack.data)
    token = subprocess.run([*VIGILOPS, "agent-token", "create", "--data-dir", data, "--name",
                            "short-lived"], capture_output=True, text=True, timeout=60,
                           check=True).stdout.strip()
    url = f"{stack.base}/api/v1/agents/register"
    body = announcement(hostname="short-lived", address="127.0.0.1:1")
    assert post(url, body, token)[0] == 200
    subprocess.run([*VIGILOPS, "agent-token", "revoke", "--data-dir", data, "short-lived"],
                   capture_output=True, timeout=60, check=True)
    assert post(url, body, token)[0] == 401


def test_agents_job_survives_a_reload(stack: Stack) -> None:
    poll(stack.agent_targets, 60, "agent target")
    reloads = 'vigilops_config_reloads_total{result="success"}'

    def reload_count() -> float:
        for line in get(f"{stack.base}/metrics").decode().splitlines():
            if line.startswith(reloads):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = reload_count()
    stack.server.send_signal(signal.SIGHUP)
    poll(lambda: reload_count() > before or None, 60, "reload counted")
    assert "e2e-agent" in [t["labels"]["hostname"] for t in stack.agent_targets()]
    assert "job_name: agents" in stack.api("/api/v1/status/config")["yaml"]


def test_registry_is_persisted(stack: Stack) -> None:
    path = stack.data / "agents" / "registry.json"

    def persisted() -> dict[str, Any] | None:
        if not path.exists():
            return None
        doc = json.loads(path.read_text())
        return next((a for a in doc["agents"] if a["hostname"] == "e2e-agent"), None)

    agent = poll(persisted, 60, "registry.json written")
    assert agent["address"] == f"127.0.0.1:{stack.agent_port}"
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_stopped_agent_is_marked_stale_and_stays_a_target(stack: Stack) -> None:
    # Runs last in this module: it stops the agent.
    poll(lambda: stack.agents().get("e2e-agent"), 60, "agent registered")
    stack.agent.send_signal(signal.SIGTERM)
    assert stack.agent.wait(timeout=30) == 0
    poll(lambda: stack.agents()["e2e-agent"]["stale"], 60, "agent marked stale")

    def down() -> dict[str, Any] | None:
        targets = [t for t in stack.agent_targets() if t["labels"]["hostname"] == "e2e-agent"]
        return targets[0] if targets and targets[0]["health"] == "down" else None

    poll(down, 60, "agent target down")
    metrics = get(f"{stack.base}/metrics").decode().splitlines()
    assert any(line.startswith('vigilops_agents{state="stale"} ') and float(line.split()[-1]) >= 1
               for line in metrics)


def test_scrape_interval_hint_becomes_the_target_interval() -> None:
    from vigilops.agents import parse_announcement
    from vigilops.scrape.config import parse_config
    from vigilops.scrape.discovery.agents import agent_group
    from vigilops.scrape.targets import build_targets

    cfg = parse_config("scrape_configs: [{job_name: agents, scrape_interval: 30s}]").scrape_configs[0]
    import json

    def announce(doc: dict[str, object]):  # type: ignore[no-untyped-def]
        return parse_announcement(json.dumps(doc).encode())

    fast = announce({"hostname": "h1", "address": "127.0.0.1:9100", "scrapeInterval": 5})
    slow = announce({"hostname": "h2", "address": "127.0.0.1:9101", "scrapeInterval": 60})
    plain = announce({"hostname": "h3", "address": "127.0.0.1:9102"})
    targets, _ = build_targets([agent_group(a.target()) for a in (fast, slow, plain)], cfg)
    by_host = {t.labels.get("hostname"): t for t in targets}
    assert (by_host["h1"].interval_ms, by_host["h1"].timeout_ms) == (5_000, 5_000)
    assert (by_host["h2"].interval_ms, by_host["h2"].timeout_ms) == (60_000, 10_000)
    assert (by_host["h3"].interval_ms, by_host["h3"].timeout_ms) == (30_000, 10_000)
    with pytest.raises(ValueError, match="scrapeInterval"):
        announce({"hostname": "h", "address": "127.0.0.1:1", "scrapeInterval": 0})


def test_agent_config_scrape_interval_hint() -> None:
    from vigilops.agent.config import ConfigError, parse_config

    assert parse_config("scrape_interval: 30s").scrape_interval == 30.0
    assert parse_config("").scrape_interval is None
    with pytest.raises(ConfigError, match="scrape_interval"):
        parse_config("scrape_interval: 0s")

"""Agent registration in the server process: tokens, the registry, its HTTP API, and the
built-in ``agents`` scrape job.

Files, both under ``DATA_DIR/agents/`` and written atomically (temporary file, fsync,
rename, fsync of the directory):

* ``tokens.json`` — the agent tokens, created by ``vigilops agent-token create``. Only a
  salted SHA-256 of each token is stored. A token is 256 random bits, so a slow password
  hash (scrypt) would add nothing against guessing and would cost every announcement one
  KDF run per stored token. A token is checked against every stored hash with
  `hmac.compare_digest`, without stopping at the first match. The server re-reads the file
  when it changes, so tokens created or revoked while it runs take effect at once.
* ``registry.json`` — the registered agents. Announcements only change memory; a
  background task writes the file at most once per `FLUSH_INTERVAL_S`, and once more at
  shutdown.

HTTP (no authentication on the read endpoints, like the rest of the API):

* ``POST /api/v1/agents/register`` with ``Authorization: Bearer <token>`` and a JSON body
  ``{"hostname", "address", "tags", "version", "announceInterval"}`` (the last three
  optional; `announceInterval` in seconds, default 30). 401 without a valid token, 400 on a
  malformed body; an agent is identified by its host name, so a new address replaces the
  old one.
* ``GET /api/v1/agents`` — the registry with ``lastSeen`` and ``stale``: an agent is stale
  when it has missed `STALE_AFTER_INTERVALS` of its announce intervals.
* ``GET /api/v1/agents/sd`` — the same agents in the http_sd_configs format, for an
  external Prometheus.

Decisions:

* A stale agent stays registered and stays a target; its scrapes fail, so ``up`` is 0 and
  the usual ``up == 0`` alert fires. Nothing is forgotten automatically: a host that is
  down is exactly what monitoring must show.
* The built-in ``agents`` job is added to every configuration the server runs (at start
  and on every reload), with the global scrape interval and timeout. A job named
  ``agents`` in prometheus.yml wins: the built-in one is then not added (a warning is
  logged) and registered agents are scraped only if that job says so (e.g. through
  ``http_sd_configs`` on ``/api/v1/agents/sd``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric

from vigilops.scrape.config import Config, ScrapeConfig
from vigilops.scrape.discovery.agents import AgentDiscoverer, AgentTarget, sd_json
from vigilops.scrape.manager import DiscovererFactory
from vigilops.scrape.targets import split_host_port
from vigilops.tsdb.model import valid_label_name

from .http_api import error, success

log = logging.getLogger("vigilops.agents")

AGENTS_DIR = "agents"
TOKENS_FILE = "tokens.json"
REGISTRY_FILE = "registry.json"
JOB_NAME = "agents"
#: An agent that has not announced for this many of its intervals is stale.
STALE_AFTER_INTERVALS = 3
#: The agent's default; used when an announcement does not say.
DEFAULT_ANNOUNCE_INTERVAL_S = 30.0
#: Longest gap between registry writes when only `lastSeen` moves: losing it on a crash
#: costs a few seconds of `lastSeen`, and 50 agents do not cost 50 fsyncs a minute.
FLUSH_INTERVAL_S = 5.0
#: Announcements are a few hundred bytes; anything much larger is not one.
MAX_BODY_BYTES = 64 * 1024
MAX_TAGS = 64
#: Tags that would override labels the server sets on the target.
RESERVED_TAGS = ("job", "instance", "hostname")


def agents_dir(data_dir: str) -> str:
    return os.path.join(data_dir, AGENTS_DIR)


def rfc3339(seconds: float) -> str:
    dt = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_json_atomic(path: str, doc: Any) -> None:
    """Write `doc` to `path` so that a reader sees the old file or the new, never a torn
    one, and the new one survives a crash once this returns. Mode 0600: tokens' hashes and
    the agents' addresses are nobody else's business."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# --- tokens ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenEntry:
    name: str
    salt: str  # hex
    hash: str  # hex sha256(salt || token)
    created: str  # RFC 3339


def _digest(salt: bytes, token: str) -> bytes:
    return hashlib.sha256(salt + token.encode("utf-8")).digest()


class TokenStore:
    """``DATA_DIR/agents/tokens.json``. The CLI changes it under an advisory lock; the server
    only reads it, again whenever the file changes."""

    TOKEN_PREFIX = "vgo_"

    def __init__(self, data_dir: str) -> None:
        self.path = os.path.join(agents_dir(data_dir), TOKENS_FILE)
        self._cached: tuple[tuple[int, int, int], list[TokenEntry]] | None = None

    def entries(self) -> list[TokenEntry]:
        """The stored tokens (none when the file does not exist). Raises ValueError on a
        corrupt file."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return []
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        with open(self.path, "rb") as f:
            raw = f.read()
        try:
            doc = json.loads(raw)
            out = [TokenEntry(str(t["name"]), str(t["salt"]), str(t["hash"]), str(t["created"]))
                   for t in doc["tokens"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.path}: not a token file: {exc}") from None
        self._cached = (key, out)
        return out

    def verify(self, token: str) -> str | None:
        """The name of the stored token equal to `token`, or None. Every stored hash is
        compared, in constant time each, whatever matches."""
        try:
            entries = self.entries()
        except (OSError, ValueError) as exc:
            log.error("cannot read agent tokens, refusing every token: %s", exc)
            return None
        found: str | None = None
        for e in entries:
            if hmac.compare_digest(_digest(bytes.fromhex(e.salt), token), bytes.fromhex(e.hash)):
                found = found or e.name
        return found

    @contextmanager
    def _locked(self) -> Iterator[None]:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        with open(f"{self.path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self, entries: list[TokenEntry]) -> None:
        write_json_atomic(self.path, {"tokens": [dataclasses.asdict(e) for e in entries]})
        self._cached = None

    def create(self, name: str | None = None) -> tuple[str, str]:
        """A new token: returns (name, token). The token itself is stored nowhere."""
        with self._locked():
            entries = self.entries()
            names = {e.name for e in entries}
            if name is None:
                n = len(entries) + 1
                while f"token-{n}" in names:
                    n += 1
                name = f"token-{n}"
            elif name in names:
                raise ValueError(f"a token named {name!r} already exists")
            token = self.TOKEN_PREFIX + secrets.token_urlsafe(32)
            salt = secrets.token_bytes(16)
            entry = TokenEntry(name, salt.hex(), _digest(salt, token).hex(), rfc3339(time.time()))
            self._write([*entries, entry])
        return name, token

    def revoke(self, name: str) -> bool:
        with self._locked():
            entries = self.entries()
            kept = [e for e in entries if e.name != name]
            if len(kept) == len(entries):
                return False
            self._write(kept)
        return True


# --- the registry ----------------------------------------------------------------------------


@dataclass
class AgentEntry:
    hostname: str
    address: str
    tags: dict[str, str] = field(default_factory=dict)
    version: str = ""
    announce_interval_s: float = DEFAULT_ANNOUNCE_INTERVAL_S
    first_seen: float = 0.0  # Unix seconds
    last_seen: float = 0.0
    #: The scrape interval the agent asked for, in seconds (None: the job's).
    scrape_interval_s: float | None = None

    def target(self) -> AgentTarget:
        return AgentTarget(
            self.hostname, self.address, dict(self.tags), self.version, self.scrape_interval_s
        )

    def stale(self, now: float) -> bool:
        return now - self.last_seen > STALE_AFTER_INTERVALS * self.announce_interval_s

    def to_json(self) -> dict[str, Any]:
        return {
            "hostname": self.hostname,
            "address": self.address,
            "tags": self.tags,
            "version": self.version,
            "announceInterval": self.announce_interval_s,
            "firstSeen": self.first_seen,
            "lastSeen": self.last_seen,
            "scrapeInterval": self.scrape_interval_s,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> AgentEntry:
        return cls(
            str(d["hostname"]), str(d["address"]), {str(k): str(v) for k, v in d["tags"].items()},
            str(d.get("version", "")), float(d["announceInterval"]), float(d["firstSeen"]),
            float(d["lastSeen"]),
            float(d["scrapeInterval"]) if d.get("scrapeInterval") is not None else None,
        )


class AnnouncementError(ValueError):
    """A malformed announcement; the message names the field."""


def parse_announcement(body: bytes) -> AgentEntry:
    """The agent an announcement describes (times unset). Raises AnnouncementError."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise AnnouncementError(f"body: not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise AnnouncementError("body: expected a JSON object")
    unknown = set(doc) - {"hostname", "address", "tags", "version", "announceInterval", "scrapeInterval"}
    if unknown:
        raise AnnouncementError(f"{sorted(unknown)[0]}: unknown field")
    hostname = doc.get("hostname")
    if not isinstance(hostname, str) or not 0 < len(hostname) <= 255:
        raise AnnouncementError("hostname: expected a non-empty string")
    raw_address = doc.get("address")
    address = raw_address if isinstance(raw_address, str) else ""
    hp = split_host_port(address) if address else None
    if hp is None or not hp[0] or "/" in address or not hp[1].isdigit() or not 0 < int(hp[1]) < 65536:
        raise AnnouncementError(f"address: expected host:port, got {raw_address!r}")
    tags = doc.get("tags") or {}
    if not isinstance(tags, dict) or len(tags) > MAX_TAGS:
        raise AnnouncementError(f"tags: expected an object of at most {MAX_TAGS} strings")
    for name, value in tags.items():
        if not valid_label_name(name) or name.startswith("__"):
            raise AnnouncementError(f"tags.{name}: not a valid label name")
        if name in RESERVED_TAGS:
            raise AnnouncementError(f"tags.{name}: reserved (the server sets it)")
        if not isinstance(value, str):
            raise AnnouncementError(f"tags.{name}: expected a string")
    version = doc.get("version", "")
    if not isinstance(version, str) or len(version) > 64:
        raise AnnouncementError("version: expected a string")
    interval = doc.get("announceInterval", DEFAULT_ANNOUNCE_INTERVAL_S)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not 0 < interval <= 3600:
        raise AnnouncementError("announceInterval: expected seconds, more than 0 and at most 3600")
    hint = doc.get("scrapeInterval")
    if hint is not None and (
        isinstance(hint, bool) or not isinstance(hint, (int, float)) or not 1 <= hint <= 3600
    ):
        raise AnnouncementError("scrapeInterval: expected seconds, from 1 to 3600")
    entry = AgentEntry(hostname, address, dict(tags), version, float(interval))
    entry.scrape_interval_s = float(hint) if hint is not None else None
    return entry


class AgentRegistry:
    """The registered agents, keyed by host name. Used on the event loop only (the metrics
    collector copies what it reads)."""

    def __init__(self, data_dir: str) -> None:
        self.path = os.path.join(agents_dir(data_dir), REGISTRY_FILE)
        self.agents: dict[str, AgentEntry] = {}
        self._changed = asyncio.Event()
        self._dirty = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()

    def load(self) -> None:
        """Read the file; a corrupt one is moved aside (``.corrupt``) and logged, not fatal."""
        try:
            with open(self.path, "rb") as f:
                doc = json.loads(f.read())
            entries = [AgentEntry.from_json(d) for d in doc["agents"]]
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error("agent registry %s is unreadable, starting empty: %s", self.path, exc)
            with suppress(OSError):
                os.replace(self.path, f"{self.path}.corrupt")
            return
        self.agents = {e.hostname: e for e in entries}

    # -- discovery (AgentSource) ------------------------------------------------------------
    def agent_targets(self) -> list[AgentTarget]:
        return [self.agents[h].target() for h in sorted(self.agents)]

    async def wait_changed(self) -> None:
        await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- updates ----------------------------------------------------------------------------
    def announce(self, agent: AgentEntry, now: float) -> AgentEntry:
        old = self.agents.get(agent.hostname)
        agent.first_seen = old.first_seen if old is not None else now
        agent.last_seen = now
        self.agents[agent.hostname] = agent
        if old is None or old.target() != agent.target():
            log.info("agent %s registered at %s", agent.hostname, agent.address)
            self._notify()
        self._dirty.set()
        return agent

    # -- persistence ------------------------------------------------------------------------
    def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_forever(), name="agent registry flush")

    async def _flush_forever(self) -> None:
        while True:
            await self._dirty.wait()
            await self.flush()
            await asyncio.sleep(FLUSH_INTERVAL_S)

    async def flush(self) -> None:
        self._dirty.clear()
        doc = {"agents": [self.agents[h].to_json() for h in sorted(self.agents)]}
        async with self._write_lock:
            try:
                await asyncio.get_running_loop().run_in_executor(None, write_json_atomic, self.path, doc)
            except OSError as exc:
                log.error("cannot write the agent registry %s: %s", self.path, exc)
                self._dirty.set()

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with suppress(asyncio.CancelledError):
                await self._flusher
        if self._dirty.is_set():
            await self.flush()


# --- the server wiring -----------------------------------------------------------------------


class _AgentsCollector:
    """``vigilops_agents{state}`` and ``vigilops_agent_last_seen_timestamp_seconds{hostname}``."""

    def __init__(self, registry: AgentRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        agents = list(self.registry.agents.values())
        now = time.time()
        count = GaugeMetricFamily("vigilops_agents", "Registered agents by state.", labels=["state"])
        stale = sum(1 for a in agents if a.stale(now))
        count.add_metric(["active"], len(agents) - stale)
        count.add_metric(["stale"], stale)
        yield count
        seen = GaugeMetricFamily("vigilops_agent_last_seen_timestamp_seconds",
                                 "When each registered agent last announced itself.",
                                 labels=["hostname"])
        for a in agents:
            seen.add_metric([a.hostname], a.last_seen)
        yield seen


class Agents:
    """Agent registration as the server process runs it (see the module docstring)."""

    def __init__(self, data_dir: str, metrics: CollectorRegistry | None = None) -> None:
        self.tokens = TokenStore(data_dir)
        self.registry = AgentRegistry(data_dir)
        self.registry.load()
        self._factory: DiscovererFactory = lambda: AgentDiscoverer(self.registry)
        self._warned = False
        self.registrations = Counter(
            "vigilops_agent_registrations", "Agent announcements received, by result.",
            ["result"], registry=metrics,
        )
        if metrics is not None:
            metrics.register(_AgentsCollector(self.registry))

    def with_agents_job(self, config: Config) -> tuple[Config, dict[str, DiscovererFactory]]:
        """`config` plus the built-in ``agents`` job, and the discoverer to attach to it; for
        `ScrapeManager.apply_config`. A user job of that name wins."""
        if config.scrape_config(JOB_NAME) is not None:
            if not self._warned:
                log.warning("%s has its own job %r: registered agents are scraped only if it "
                            "says so (e.g. http_sd_configs on /api/v1/agents/sd)", config.path, JOB_NAME)
                self._warned = True
            return config, {}
        self._warned = False
        g = config.global_config
        job = ScrapeConfig(JOB_NAME, g.scrape_interval_ms, g.scrape_timeout_ms)
        return dataclasses.replace(config, scrape_configs=[*config.scrape_configs, job]), {
            JOB_NAME: self._factory
        }

    def start(self) -> None:
        self.registry.start()

    async def close(self) -> None:
        await self.registry.close()

    # -- HTTP -------------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/agents/register", self.register)
        app.router.add_get("/api/v1/agents", self.list_agents)
        app.router.add_get("/api/v1/agents/sd", self.sd)

    async def register(self, request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip() or self.tokens.verify(token.strip()) is None:
            self.registrations.labels("unauthorized").inc()
            log.warning("agent registration from %s refused: no valid token", request.remote)
            resp = error(401, "unauthorized", "a valid agent token is required "
                         "(Authorization: Bearer <token>, see `vigilops agent-token create`)")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="vigilops"'
            return resp
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            self.registrations.labels("invalid").inc()
            return error(400, "bad_data", f"body larger than {MAX_BODY_BYTES} bytes")
        body = await request.content.read(MAX_BODY_BYTES + 1)
        try:
            if len(body) > MAX_BODY_BYTES:
                raise AnnouncementError(f"body larger than {MAX_BODY_BYTES} bytes")
            agent = parse_announcement(body)
        except AnnouncementError as exc:
            self.registrations.labels("invalid").inc()
            return error(400, "bad_data", str(exc))
        self.registrations.labels("ok").inc()
        entry = self.registry.announce(agent, time.time())
        return success(self._entry_json(entry, time.time()))

    @staticmethod
    def _entry_json(a: AgentEntry, now: float) -> dict[str, Any]:
        return {
            "hostname": a.hostname,
            "address": a.address,
            "tags": a.tags,
            "version": a.version,
            "announceInterval": a.announce_interval_s,
            "firstSeen": rfc3339(a.first_seen),
            "lastSeen": rfc3339(a.last_seen),
            "stale": a.stale(now),
        }

    async def list_agents(self, _: web.Request) -> web.Response:
        now = time.time()
        agents = self.registry.agents
        return success([self._entry_json(agents[h], now) for h in sorted(agents)])

    async def sd(self, _: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(sd_json(self.registry.agent_targets())),
                            content_type="application/json")


__all__ = [
    "AgentEntry",
    "AgentRegistry",
    "Agents",
    "AnnouncementError",
    "TokenEntry",
    "TokenStore",
    "parse_announcement",
    "write_json_atomic",
]

"""`agent.yaml`: what the agent listens on, what it collects, how long a collector may take.

```yaml
listen_address: ":9100"        # host:port; ":9100" means every interface
hostname: web-1                # default: this machine's host name
tags: {env: prod, team: api}   # label names → values, exposed on vigilops_agent_info
scrape_interval: 15s           # hint sent when registering: how often the server scrapes us
collector_timeout: 5s          # a collector past this reports success 0 (the rest answer)
collectors: {hwmon: false}     # enable/disable by node_exporter collector name
textfile_directory: /var/lib/vigilops/textfile
probes:                        # service health checks (blackbox_exporter's job), see probes/
  - {name: web, type: http, target: "https://example.com/health", interval: 30s,
     timeout: 5s, valid_status_codes: [200], body_regex: "ok", follow_redirects: true}
  - {name: db, type: tcp, target: "10.0.0.5:5432"}
top_processes: {enabled: true, count: 10, by: cpu}   # off by default; count at most 50
server:                        # registration with a VigilOps server (see registration.py)
  url: http://vigilops.internal:9090
  token: vgo_…                 # from `vigilops agent-token create`; or token_file: PATH
  announce_interval: 30s
  advertise_address: web-1.internal:9100   # what the server scrapes; see registration.py
```

Unknown keys, unknown collector names and ill-typed values are rejected with an error that
names the key (`collectors.hwm0n: unknown collector …`).
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from .collectors import COLLECTORS

DEFAULT_LISTEN = ":9100"
DEFAULT_TIMEOUT = 5.0
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")
_RESERVED_TAGS = ("hostname", "version")
MAX_TOP_PROCESSES = 50
_PROBE_KEYS = {"name", "type", "target", "interval", "timeout"}
_HTTP_PROBE_KEYS = {"method", "valid_status_codes", "body_regex", "follow_redirects",
                    "insecure_skip_verify", "ca_file"}


class ConfigError(ValueError):
    """An invalid agent.yaml; the message starts with the offending key."""


@dataclass(frozen=True)
class ProbeConfig:
    """One HTTP or TCP probe; `valid_status_codes` empty means any 2xx."""

    name: str
    type: str  # "http" | "tcp"
    target: str  # a URL (http) or host:port (tcp)
    interval: float = 15.0
    timeout: float = 5.0  # at most `interval`
    method: str = "GET"
    valid_status_codes: tuple[int, ...] = ()
    body_regex: str | None = None
    follow_redirects: bool = True
    insecure_skip_verify: bool = False
    ca_file: str | None = None


@dataclass(frozen=True)
class TopProcessesConfig:
    enabled: bool = False
    count: int = 10
    by: str = "cpu"  # "cpu" | "memory"


@dataclass(frozen=True)
class ServerConfig:
    """Where and how the agent announces itself (`registration.py`)."""

    url: str  # http(s)://host[:port], no trailing slash
    token: str
    announce_interval: float = 30.0
    advertise_address: str | None = None  # None: derived from listen_address and hostname


@dataclass(frozen=True)
class AgentConfig:
    listen_address: str = DEFAULT_LISTEN
    hostname: str = field(default_factory=socket.gethostname)
    tags: dict[str, str] = field(default_factory=dict)
    collector_timeout: float = DEFAULT_TIMEOUT
    collectors: dict[str, bool] = field(default_factory=dict)
    textfile_directory: str | None = None
    probes: tuple[ProbeConfig, ...] = ()
    top_processes: TopProcessesConfig = field(default_factory=TopProcessesConfig)
    server: ServerConfig | None = None
    #: Scrape interval the agent asks the server for (sent when it registers); None: the
    #: server's own interval.
    scrape_interval: float | None = None


def parse_duration(key: str, value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value).strip())
        if not m:
            raise ConfigError(f"{key}: {value!r} is not a duration (e.g. 5s, 500ms, 1m)")
        seconds = float(m.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[m.group(2)]
    if not 0 < seconds <= 600:
        raise ConfigError(f"{key}: must be more than 0 and at most 10m, got {value!r}")
    return seconds


def split_listen_address(address: str) -> tuple[str, int]:
    """`:9100` → ("", 9100); `127.0.0.1:9100`; `[::1]:9100` → ("::1", 9100)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"listen_address: {address!r} is not host:port")
    return host.strip("[]"), int(port)


def _str(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: expected a non-empty string, got {value!r}")
    return value


def _mapping(key: str, value: Any) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    return value


def _parse_probe(key: str, raw: Any) -> ProbeConfig:
    raw = _mapping(key, raw)
    kind = raw.get("type")
    if kind not in ("http", "tcp"):
        raise ConfigError(f"{key}.type: expected http or tcp, got {kind!r}")
    known = _PROBE_KEYS | (_HTTP_PROBE_KEYS if kind == "http" else set())
    for name in raw:
        if name not in known:
            extra = " (only for http probes)" if name in _HTTP_PROBE_KEYS else ""
            raise ConfigError(f"{key}.{name}: unknown key{extra} (known: {', '.join(sorted(known))})")
    for name in ("name", "target"):
        if name not in raw:
            raise ConfigError(f"{key}.{name}: required")
    kwargs: dict[str, Any] = {"name": _str(f"{key}.name", raw["name"]), "type": kind,
                              "target": _str(f"{key}.target", raw["target"])}
    if kind == "http":
        url = urlsplit(kwargs["target"])
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"{key}.target: {kwargs['target']!r} is not an http(s) URL")
    else:
        host, _, port = kwargs["target"].rpartition(":")
        if not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{key}.target: {kwargs['target']!r} is not host:port")
    for name in ("interval", "timeout"):
        if name in raw:
            kwargs[name] = parse_duration(f"{key}.{name}", raw[name])
    interval = kwargs.get("interval", ProbeConfig.interval)
    if "timeout" not in kwargs:  # the default timeout never exceeds a short interval
        kwargs["timeout"] = min(ProbeConfig.timeout, interval)
    elif kwargs["timeout"] > interval:
        raise ConfigError(f"{key}.timeout: must not be longer than the interval")
    if "method" in raw:
        if raw["method"] not in ("GET", "HEAD"):
            raise ConfigError(f"{key}.method: expected GET or HEAD, got {raw['method']!r}")
        kwargs["method"] = raw["method"]
    if "valid_status_codes" in raw:
        codes = raw["valid_status_codes"]
        if not isinstance(codes, list) or not codes or not all(
                isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in codes):
            raise ConfigError(f"{key}.valid_status_codes: expected a list of HTTP status codes, "
                              f"got {codes!r}")
        kwargs["valid_status_codes"] = tuple(codes)
    if raw.get("body_regex") is not None:
        kwargs["body_regex"] = _str(f"{key}.body_regex", raw["body_regex"])
        try:
            re.compile(kwargs["body_regex"])
        except re.error as exc:
            raise ConfigError(f"{key}.body_regex: invalid regular expression: {exc}") from None
        if kwargs.get("method") == "HEAD":
            raise ConfigError(f"{key}.body_regex: a HEAD request has no body")
    for name in ("follow_redirects", "insecure_skip_verify"):
        if name in raw:
            kwargs[name] = _bool(f"{key}.{name}", raw[name])
    if raw.get("ca_file") is not None:
        kwargs["ca_file"] = _str(f"{key}.ca_file", raw["ca_file"])
    return ProbeConfig(**kwargs)


def _parse_probes(raw: Any) -> tuple[ProbeConfig, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"probes: expected a list, got {type(raw).__name__}")
    probes = tuple(_parse_probe(f"probes[{i}]", item) for i, item in enumerate(raw))
    seen: set[str] = set()
    for i, probe in enumerate(probes):
        if probe.name in seen:
            raise ConfigError(f"probes[{i}].name: duplicate probe name {probe.name!r}")
        seen.add(probe.name)
    return probes


def _parse_top_processes(raw: Any) -> TopProcessesConfig:
    raw = _mapping("top_processes", raw)
    for name in raw:
        if name not in ("enabled", "count", "by"):
            raise ConfigError(f"top_processes.{name}: unknown key (known: by, count, enabled)")
    kwargs: dict[str, Any] = {}
    if "enabled" in raw:
        kwargs["enabled"] = _bool("top_processes.enabled", raw["enabled"])
    if "count" in raw:
        count = raw["count"]
        if not isinstance(count, int) or isinstance(count, bool) \
                or not 0 < count <= MAX_TOP_PROCESSES:
            raise ConfigError(f"top_processes.count: expected 1 to {MAX_TOP_PROCESSES}, "
                              f"got {count!r}")
        kwargs["count"] = count
    if "by" in raw:
        if raw["by"] not in ("cpu", "memory"):
            raise ConfigError(f"top_processes.by: expected cpu or memory, got {raw['by']!r}")
        kwargs["by"] = raw["by"]
    return TopProcessesConfig(**kwargs)


def _parse_server(raw: Any) -> ServerConfig:
    raw = _mapping("server", raw)
    known = ("url", "token", "token_file", "announce_interval", "advertise_address")
    for name in raw:
        if name not in known:
            raise ConfigError(f"server.{name}: unknown key (known: {', '.join(sorted(known))})")
    if "url" not in raw:
        raise ConfigError("server.url: required")
    url = _str("server.url", raw["url"]).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(f"server.url: {raw['url']!r} is not an http(s) URL of the server")
    if ("token" in raw) == ("token_file" in raw):
        raise ConfigError("server.token: set exactly one of token and token_file")
    if "token" in raw:
        token = _str("server.token", raw["token"]).strip()
    else:
        path = _str("server.token_file", raw["token_file"])
        try:
            with open(path, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as exc:
            raise ConfigError(f"server.token_file: cannot read {path}: {exc.strerror}") from None
        if not token:
            raise ConfigError(f"server.token_file: {path} is empty")
    kwargs: dict[str, Any] = {"url": url, "token": token}
    if "announce_interval" in raw:
        kwargs["announce_interval"] = parse_duration("server.announce_interval",
                                                     raw["announce_interval"])
    if raw.get("advertise_address") is not None:
        address = _str("server.advertise_address", raw["advertise_address"])
        host, _, port = address.rpartition(":")
        if not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"server.advertise_address: {address!r} is not host:port")
        kwargs["advertise_address"] = address
    return ServerConfig(**kwargs)


def parse_config(text: str) -> AgentConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"agent.yaml is not valid YAML: {exc}") from None
    raw = _mapping("agent.yaml", {} if raw is None else raw)
    known = {"listen_address", "hostname", "tags", "collector_timeout", "collectors",
             "textfile_directory", "probes", "top_processes", "server", "scrape_interval"}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{key}: unknown key (known: {', '.join(sorted(known))})")
    kwargs: dict[str, Any] = {}
    if "listen_address" in raw:
        kwargs["listen_address"] = _str("listen_address", raw["listen_address"])
        split_listen_address(kwargs["listen_address"])
    if "hostname" in raw:
        kwargs["hostname"] = _str("hostname", raw["hostname"])
    if "tags" in raw:
        tags: dict[str, str] = {}
        for name, value in _mapping("tags", raw["tags"] or {}).items():
            if not isinstance(name, str) or not _LABEL.match(name) or name.startswith("__"):
                raise ConfigError(f"tags.{name}: not a valid label name")
            if name in _RESERVED_TAGS:
                raise ConfigError(f"tags.{name}: reserved (the agent sets it)")
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ConfigError(f"tags.{name}: expected a string, got {value!r}")
            tags[name] = str(value)
        kwargs["tags"] = tags
    if "scrape_interval" in raw:
        hint = parse_duration("scrape_interval", raw["scrape_interval"])
        if not 1.0 <= hint <= 3600.0:
            raise ConfigError("scrape_interval: must be between 1s and 1h")
        kwargs["scrape_interval"] = hint
    if "collector_timeout" in raw:
        kwargs["collector_timeout"] = parse_duration("collector_timeout", raw["collector_timeout"])
    if "collectors" in raw:
        enabled: dict[str, bool] = {}
        for name, on in _mapping("collectors", raw["collectors"] or {}).items():
            if name not in COLLECTORS:
                raise ConfigError(f"collectors.{name}: unknown collector "
                                  f"(known: {', '.join(sorted(COLLECTORS))})")
            if not isinstance(on, bool):
                raise ConfigError(f"collectors.{name}: expected true or false, got {on!r}")
            enabled[name] = on
        kwargs["collectors"] = enabled
    if raw.get("textfile_directory") is not None:
        kwargs["textfile_directory"] = _str("textfile_directory", raw["textfile_directory"])
    if raw.get("probes") is not None:
        kwargs["probes"] = _parse_probes(raw["probes"])
    if raw.get("top_processes") is not None:
        kwargs["top_processes"] = _parse_top_processes(raw["top_processes"])
    if raw.get("server") is not None:
        kwargs["server"] = _parse_server(raw["server"])
    return AgentConfig(**kwargs)


def load_config(path: str | None) -> AgentConfig:
    if path is None:
        return AgentConfig()
    try:
        with open(path, encoding="utf-8") as f:
            return parse_config(f.read())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None

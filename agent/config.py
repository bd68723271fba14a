"""`agent.yaml`: what the agent listens on, what it collects, how long a collector may take.

```yaml
listen_address: ":9100"        # host:port; ":9100" means every interface
hostname: web-1                # default: this machine's host name
tags: {env: prod, team: api}   # label names → values, exposed on vigilops_agent_info
collector_timeout: 5s          # a collector past this reports success 0 (the rest answer)
collectors: {hwmon: false}     # enable/disable by node_exporter collector name
textfile_directory: /var/lib/vigilops/textfile
```

Unknown keys, unknown collector names and ill-typed values are rejected with an error that
names the key (`collectors.hwm0n: unknown collector …`).
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from typing import Any

import yaml

from .collectors import COLLECTORS

DEFAULT_LISTEN = ":9100"
DEFAULT_TIMEOUT = 5.0
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")
_RESERVED_TAGS = ("hostname", "version")


class ConfigError(ValueError):
    """An invalid agent.yaml; the message starts with the offending key."""


@dataclass(frozen=True)
class AgentConfig:
    listen_address: str = DEFAULT_LISTEN
    hostname: str = field(default_factory=socket.gethostname)
    tags: dict[str, str] = field(default_factory=dict)
    collector_timeout: float = DEFAULT_TIMEOUT
    collectors: dict[str, bool] = field(default_factory=dict)
    textfile_directory: str | None = None


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


def parse_config(text: str) -> AgentConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"agent.yaml is not valid YAML: {exc}") from None
    raw = _mapping("agent.yaml", {} if raw is None else raw)
    known = {"listen_address", "hostname", "tags", "collector_timeout", "collectors",
             "textfile_directory"}
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
    return AgentConfig(**kwargs)


def load_config(path: str | None) -> AgentConfig:
    if path is None:
        return AgentConfig()
    try:
        with open(path, encoding="utf-8") as f:
            return parse_config(f.read())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None

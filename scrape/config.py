"""The `prometheus.yml` subset VigilOps runs, parsed and validated like Prometheus 2.42.

A Prometheus user hands over an existing `prometheus.yml`. Everything VigilOps runs is parsed
with Prometheus's defaults and validation rules (``config/config.go``, ``model/relabel``,
prometheus/common's HTTP client config); everything else Prometheus knows — other service
discoveries, OAuth 2, proxies, `remote_read`, `storage`, `tracing`, newer per-job options —
is rejected with a ``not supported`` message naming the key path and line, never ignored.
Unknown keys are errors too, as in Prometheus's strict decoder.

Differences from Prometheus 2.42, all deliberate, all stricter: `password_file`,
`credentials_file` and `bearer_token_file` are read when the configuration is loaded, and TLS
files must exist then; an http_sd HTTP client is validated at load (Prometheus validates it
when discovery starts); a discovery `refresh_interval` of 0 is refused (Prometheus crashes on
it); integer fields take whole numbers only (go-yaml truncates ``1.5``); `scheme` must be
http or https; RE2 features Python's `re` cannot express (``\\p{…}``, ``[[:^alpha:]]``,
``(?U)``, a group name used twice) and Alertmanager API v1 are "not supported".

Times are int milliseconds (``*_ms`` fields). The paths of secret and TLS files are resolved
against the directory of the configuration file, as Prometheus does; `rule_files` and the
`files` of file discovery are kept as written, relative to `Config.directory` (see
`Config.expand_rule_files`).
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from vigilops.tsdb.model import go_quote, valid_label_name
from vigilops.tsdb.re2 import Regexp, compile_re2

from ._yamlnodes import ConfigError as ConfigError
from ._yamlnodes import NodeReader

__all__ = [
    "Authorization",
    "BasicAuth",
    "Config",
    "ConfigError",
    "FileSDConfig",
    "GlobalConfig",
    "HTTPSDConfig",
    "RelabelConfig",
    "ScrapeConfig",
    "StaticConfig",
    "TLSConfig",
    "config_to_yaml",
    "load_config",
    "parse_config",
]

# --- the configuration model -----------------------------------------------------------------


@dataclass
class BasicAuth:
    """HTTP basic authentication. `password` holds the secret itself, read from
    `password_file` (resolved against the configuration's directory, whitespace trimmed)
    when that was given."""

    username: str
    password: str
    password_file: str = ""


@dataclass
class Authorization:
    """An ``Authorization: <type> <credentials>`` header. `credentials` holds the secret
    itself, read from `credentials_file` (or `bearer_token_file`) when that was given."""

    type: str = "Bearer"
    credentials: str = ""
    credentials_file: str = ""


@dataclass
class TLSConfig:
    """Client TLS settings; file paths are resolved. Versions are ``TLS10`` … ``TLS13``."""

    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    server_name: str = ""
    insecure_skip_verify: bool = False
    min_version: str = ""
    max_version: str = ""


#: Prometheus's defaults for a relabel rule (``relabel.DefaultRelabelConfig``).
DEFAULT_SEPARATOR = ";"
DEFAULT_REGEX = "(.*)"
DEFAULT_REPLACEMENT = "$1"
RELABEL_ACTIONS = (
    "replace",
    "keep",
    "drop",
    "keepequal",
    "dropequal",
    "hashmod",
    "labelmap",
    "labeldrop",
    "labelkeep",
    "lowercase",
    "uppercase",
)
#: A target label or labelmap replacement that may contain ``$1``/``${name}`` templates.
_RELABEL_TARGET = re.compile(r"(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+", re.ASCII)


@dataclass
class RelabelConfig:
    """One relabeling rule, with Prometheus's defaults.

    `compiled` is `regex` compiled as Prometheus 2.x compiles it, ``^(?:regex)$`` with RE2
    syntax and linear-time matching (`vigilops.tsdb.re2`), so one bad regex cannot stall
    the scrape loop.
    `action` is stored in lower case. Construct directly for programmatic rules; `validate`
    applies Prometheus's checks (`parse_config` always does).
    """

    source_labels: list[str] = field(default_factory=list)
    separator: str = DEFAULT_SEPARATOR
    target_label: str = ""
    regex: str = DEFAULT_REGEX
    modulus: int = 0
    replacement: str = DEFAULT_REPLACEMENT
    action: str = "replace"
    compiled: Regexp = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.action = self.action.lower()
        self.compiled = compile_relabel_regex(self.regex)

    def validate(self) -> None:
        """Raise ValueError, with Prometheus's message, if the rule is invalid."""
        err = relabel_error(
            self, regex_is_default=self.regex == DEFAULT_REGEX, has_sources=bool(self.source_labels)
        )
        if err:
            raise ValueError(err[1])


def compile_relabel_regex(regex: str) -> Regexp:
    """Compile an RE2 relabel regex as Prometheus 2.42 does, ``^(?:regex)$`` (the text
    need only be a regex once wrapped). Raises ValueError."""
    _check_repeat_counts(regex)
    return compile_re2(regex, standalone=False)


_REPEAT = re.compile(r"\{([0-9]+)(?:,([0-9]*))?\}")
#: Go rejects ``x{n}`` and ``x{n,m}`` with a count above 1000; checked here first so the
#: error reads as Go's (``invalid repeat count: `{1001}` ``).
_MAX_REPEAT = 1000


def _check_repeat_counts(regex: str) -> None:
    i, in_class = 0, False
    while i < len(regex):
        c = regex[i]
        if c == "\\":
            if regex.startswith("\\Q", i):
                end = regex.find("\\E", i + 2)
                i = len(regex) if end < 0 else end + 2
            else:
                i += 2
            continue
        if in_class:
            if regex.startswith("[:", i) and (end := regex.find(":]", i + 2)) > 0:
                i = end + 2
                continue
            in_class = c != "]"
            i += 1
            continue
        if c == "[":
            in_class = True
            i += 1
            # A ']' first in the class (after an optional '^') is a literal.
            if regex.startswith("^", i):
                i += 1
            if regex.startswith("]", i):
                i += 1
            continue
        m = _REPEAT.match(regex, i) if c == "{" else None
        if m:
            counts = [int(g) for g in m.groups() if g]
            if any(n > _MAX_REPEAT for n in counts):
                raise ValueError(f"invalid repeat count: `{m.group()}`")
            i = m.end()
            continue
        i += 1


@dataclass
class StaticConfig:
    """One target group: ``host:port`` targets and the labels they all get."""

    targets: list[str]
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class FileSDConfig:
    """File-based discovery. `files` are patterns as written (``*`` only in the last
    element); relative ones are relative to `Config.directory`, which file discovery joins."""

    files: list[str]
    refresh_interval_ms: int = 300_000


@dataclass
class HTTPSDConfig:
    """HTTP-based discovery from `url`, with its own HTTP client settings."""

    url: str
    refresh_interval_ms: int = 60_000
    basic_auth: BasicAuth | None = None
    authorization: Authorization | None = None
    tls_config: TLSConfig | None = None
    follow_redirects: bool = True
    enable_http2: bool = True


@dataclass
class ScrapeConfig:
    """One scrape job. Intervals and timeouts are already resolved against `global`.

    A limit of 0 means no limit. `follow_redirects` and `enable_http2` are Prometheus's HTTP
    client options (HTTP/2 is optional for a client, so a scraper speaking HTTP/1.1 obeys
    ``enable_http2: true``).
    """

    job_name: str
    scrape_interval_ms: int
    scrape_timeout_ms: int
    metrics_path: str = "/metrics"
    scheme: str = "http"
    params: dict[str, list[str]] = field(default_factory=dict)
    honor_labels: bool = False
    honor_timestamps: bool = True
    basic_auth: BasicAuth | None = None
    authorization: Authorization | None = None
    tls_config: TLSConfig | None = None
    static_configs: list[StaticConfig] = field(default_factory=list)
    file_sd_configs: list[FileSDConfig] = field(default_factory=list)
    http_sd_configs: list[HTTPSDConfig] = field(default_factory=list)
    relabel_configs: list[RelabelConfig] = field(default_factory=list)
    metric_relabel_configs: list[RelabelConfig] = field(default_factory=list)
    sample_limit: int = 0
    label_limit: int = 0
    label_name_length_limit: int = 0
    label_value_length_limit: int = 0
    body_size_limit: int = 0
    target_limit: int = 0
    follow_redirects: bool = True
    enable_http2: bool = True


@dataclass
class GlobalConfig:
    scrape_interval_ms: int = 60_000
    scrape_timeout_ms: int = 10_000
    evaluation_interval_ms: int = 60_000
    external_labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Config:
    """A whole configuration file.

    `rule_files` are the patterns as written; `expand_rule_files` resolves them. `alerting`
    and `remote_write` are validated and kept, with Prometheus's defaults filled in, as plain
    dicts in Prometheus's key order (durations as Prometheus duration strings, relabel rules
    as `RelabelConfig`), for the subsystems that will use them. `source` is the YAML text as
    loaded; `path` the file it came from.
    """

    global_config: GlobalConfig = field(default_factory=GlobalConfig)
    scrape_configs: list[ScrapeConfig] = field(default_factory=list)
    rule_files: list[str] = field(default_factory=list)
    alerting: dict[str, Any] | None = None
    remote_write: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""
    path: str = "<config>"

    @property
    def directory(self) -> str:
        """The directory relative paths are resolved against (``""`` for the working one)."""
        return _config_dir(self.path)

    def rule_file_patterns(self) -> list[str]:
        """The `rule_files` patterns joined to the configuration's directory."""
        return [join_config_dir(self.directory, p) for p in self.rule_files]

    def expand_rule_files(self) -> list[str]:
        """The rule files the patterns match now, in order, each pattern's matches sorted."""
        out: list[str] = []
        for pattern in self.rule_file_patterns():
            out += sorted(glob.glob(pattern, include_hidden=True))
        return out

    def scrape_config(self, job_name: str) -> ScrapeConfig | None:
        for sc in self.scrape_configs:
            if sc.job_name == job_name:
                return sc
        return None


# --- entry points ----------------------------------------------------------------------------


def load_config(path: str) -> Config:
    """Read and parse a configuration file. Raises ConfigError (also for I/O errors)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(path, None, "", f"cannot read file: {reason}") from None
    return parse_config(text, path)


def parse_config(text: str, path: str = "<config>") -> Config:
    """Parse and validate YAML text. `path` names the file in errors and is the base of
    relative paths (the working directory for ``"<config>"``). Raises ConfigError."""
    r = NodeReader(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if mark is None:
            raise ConfigError(path, None, "", f"yaml: {problem}") from None
        raise ConfigError(path, mark.line + 1, "", f"yaml: {problem}", mark.column + 1) from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, None, "", f"yaml: {exc}") from None
    from ._config_parse import ConfigParser

    return ConfigParser(r, _config_dir(path)).config(root, text, path)


# --- relabel validation ----------------------------------------------------------------------


def relabel_error(
    cfg: RelabelConfig, *, regex_is_default: bool, has_sources: bool
) -> tuple[str, str] | None:
    """Prometheus 2.42's ``relabel.Config`` validation, in its order and words.

    Returns the field at fault and the message, or None. `regex_is_default` says the rule
    left `regex` unset (an explicit ``(.*)`` is not the default for keepequal/dropequal, as in
    Prometheus); `has_sources` that `source_labels` was given, even empty (labeldrop and
    labelkeep reject it).
    """
    action, target = cfg.action, cfg.target_label
    if action not in RELABEL_ACTIONS:
        return "action", f"unknown relabel action {go_quote(action)}"
    if cfg.modulus == 0 and action == "hashmod":
        return "modulus", "relabel configuration for hashmod requires non-zero modulus"
    writes = ("replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal")
    if action in writes and target == "":
        return "target_label", (
            f"relabel configuration for {action} action requires 'target_label' value"
        )
    bad_target = f"{go_quote(target)} is invalid 'target_label' for {action} action"
    if action in writes and action != "hashmod":
        # Prometheus 2.42 accepts ``$`` templates here for every action but hashmod.
        templated = "$" in target
        if (not templated and not valid_label_name(target)) or (
            templated and not _RELABEL_TARGET.fullmatch(target)
        ):
            return "target_label", bad_target
    simple = ("lowercase", "uppercase", "keepequal", "dropequal")
    if action in simple and cfg.replacement != DEFAULT_REPLACEMENT:
        return "replacement", f"'replacement' can not be set for {action} action"
    if action == "labelmap" and not _RELABEL_TARGET.fullmatch(cfg.replacement):
        return "replacement", (
            f"{go_quote(cfg.replacement)} is invalid 'replacement' for {action} action"
        )
    if action == "hashmod" and not valid_label_name(target):
        return "target_label", bad_target
    if action in ("keepequal", "dropequal") and (
        not regex_is_default
        or cfg.modulus != 0
        or cfg.separator != DEFAULT_SEPARATOR
        or cfg.replacement != DEFAULT_REPLACEMENT
    ):
        return "action", (
            f"{action} action requires only 'source_labels' and `target_label`, "
            "and no other fields"
        )
    if action in ("labeldrop", "labelkeep") and (
        has_sources
        or target != ""
        or cfg.modulus != 0
        or cfg.separator != DEFAULT_SEPARATOR
        or cfg.replacement != DEFAULT_REPLACEMENT
    ):
        return "action", f"{action} action requires only 'regex', and no other fields"
    return None


def regex_error_message(err: str) -> str:
    """The message for a regex `compile_relabel_regex` refused, worded as Prometheus's."""
    return f"error parsing regexp: {err}"


# --- paths -----------------------------------------------------------------------------------


def _config_dir(path: str) -> str:
    return "" if path == "<config>" else os.path.dirname(path)


def join_config_dir(directory: str, path: str) -> str:
    """Prometheus's ``config.JoinDir``: relative paths are taken from the config's directory."""
    if not path or os.path.isabs(path) or not directory:
        return path
    return os.path.join(directory, path)



def config_to_yaml(cfg: Config) -> str:
    """The effective configuration as YAML, as Prometheus's ``/api/v1/status/config`` shows
    it: defaults filled in, durations and sizes in Prometheus's notation, keys in Prometheus's
    order, and every secret (password, credentials, bearer token) replaced by ``<secret>``."""
    from ._config_yaml import dump_config

    return dump_config(cfg)

"""The parser behind `parse_config`: walks the composed YAML tree section by section, applies
Prometheus 2.42's defaults and validation, and rejects what VigilOps does not support.

Each method reads one section at a given key path (``scrape_configs[0].tls_config``) and
raises `ConfigError` at the node at fault. Messages use Prometheus's wording where it has one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from yaml.nodes import Node

from vigilops.tsdb.model import go_quote, valid_label_name

from ._yamlnodes import NodeReader
from .config import (
    DEFAULT_REGEX,
    DEFAULT_REPLACEMENT,
    DEFAULT_SEPARATOR,
    RELABEL_ACTIONS,
    Authorization,
    BasicAuth,
    Config,
    FileSDConfig,
    GlobalConfig,
    HTTPSDConfig,
    RelabelConfig,
    ScrapeConfig,
    StaticConfig,
    TLSConfig,
    join_config_dir,
    relabel_error,
    regex_error_message,
)
from .duration import format_duration_ms

# --- what is not supported -------------------------------------------------------------------

_SD_SUPPORTED = "supported service discovery: static_configs, file_sd_configs, http_sd_configs"
_SD_UNSUPPORTED = [
    f"{name}_sd_configs"
    for name in (
        "azure consul digitalocean docker dockerswarm dns ec2 eureka gce hetzner ionos "
        "kubernetes kuma lightsail linode marathon nerve nomad openstack ovhcloud puppetdb "
        "scaleway serverset stackit triton uyuni vultr"
    ).split()
]


def _not_supported(names: list[str], why: str = "") -> dict[str, str]:
    return {n: f"{n} is not supported by VigilOps{f' ({why})' if why else ''}" for n in names}


_UNSUPPORTED_TOP = _not_supported(
    ["remote_read", "storage", "tracing", "scrape_config_files", "runtime", "otlp"]
)
_UNSUPPORTED_GLOBAL = _not_supported(
    [
        "query_log_file",
        "scrape_failure_log_file",
        "rule_query_offset",
        "scrape_protocols",
        "body_size_limit",
        "sample_limit",
        "target_limit",
        "label_limit",
        "label_name_length_limit",
        "label_value_length_limit",
        "keep_dropped_targets",
        "metric_name_validation_scheme",
        "metric_name_escaping_scheme",
        "scrape_native_histograms",
        "convert_classic_histograms_to_nhcb",
        "always_scrape_classic_histograms",
        "extra_scrape_metrics",
    ]
)
_UNSUPPORTED_HTTP = {
    **_not_supported(["oauth2"], "use basic_auth or authorization"),
    **_not_supported(
        ["proxy_url", "no_proxy", "proxy_from_environment", "proxy_connect_header"],
        "VigilOps connects directly",
    ),
    **_not_supported(["http_headers"]),
}
_UNSUPPORTED_SCRAPE = {
    **_UNSUPPORTED_HTTP,
    **_not_supported(_SD_UNSUPPORTED, _SD_SUPPORTED),
    **_not_supported(
        [
            "enable_compression",
            "keep_dropped_targets",
            "native_histogram_bucket_limit",
            "native_histogram_min_bucket_factor",
            "scrape_classic_histograms",
            "always_scrape_classic_histograms",
            "convert_classic_histograms_to_nhcb",
            "scrape_native_histograms",
            "track_timestamps_staleness",
            "scrape_protocols",
            "fallback_scrape_protocol",
            "metric_name_validation_scheme",
            "metric_name_escaping_scheme",
            "scrape_failure_log_file",
            "extra_scrape_metrics",
        ]
    ),
}
_UNSUPPORTED_TLS = _not_supported(
    ["ca", "cert", "key", "ca_ref", "cert_ref", "key_ref"], "use ca_file, cert_file, key_file"
)
_UNSUPPORTED_BASIC_AUTH = _not_supported(
    ["username_file", "username_ref", "password_ref"], "use username, password or password_file"
)
_UNSUPPORTED_AUTHORIZATION = _not_supported(
    ["credentials_ref"], "use credentials or credentials_file"
)
_UNSUPPORTED_AM = {
    **_UNSUPPORTED_HTTP,
    **_not_supported(_SD_UNSUPPORTED, _SD_SUPPORTED),
    **_not_supported(["sigv4"]),
}
_UNSUPPORTED_RW = {
    **_UNSUPPORTED_HTTP,
    **_not_supported(["sigv4", "azuread", "google_iam", "round_robin_dns", "protobuf_message"]),
}

_HTTP_KEYS = (
    "basic_auth",
    "authorization",
    "bearer_token",
    "bearer_token_file",
    "tls_config",
    "follow_redirects",
    "enable_http2",
)
_SCRAPE_KEYS = (
    "job_name",
    "honor_labels",
    "honor_timestamps",
    "params",
    "scrape_interval",
    "scrape_timeout",
    "metrics_path",
    "scheme",
    "body_size_limit",
    "sample_limit",
    "target_limit",
    "label_limit",
    "label_name_length_limit",
    "label_value_length_limit",
    "relabel_configs",
    "metric_relabel_configs",
    "static_configs",
    "file_sd_configs",
    "http_sd_configs",
    *_HTTP_KEYS,
)
_RELABEL_KEYS = (
    "source_labels",
    "separator",
    "regex",
    "modulus",
    "target_label",
    "replacement",
    "action",
)
_TLS_VERSIONS = ("TLS10", "TLS11", "TLS12", "TLS13")
#: `patRulePath` in config.go: a ``*`` only in the last path element.
_RULE_PATH = re.compile(r"[^*]*(\*[^/]*)?", re.DOTALL)
#: `patFileSDName` in discovery/file: the same, plus a JSON or YAML extension.
_FILE_SD_PATH = re.compile(r"[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)", re.DOTALL)
_RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-encoding",
        "content-length",
        "content-type",
        "user-agent",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "www-authenticate",
        "accept-encoding",
        "x-prometheus-remote-write-version",
        "x-prometheus-remote-read-version",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-content-sha256",
    }
)


# --- parsing ---------------------------------------------------------------------------------


@dataclass
class _HTTPClient:
    basic_auth: BasicAuth | None = None
    authorization: Authorization | None = None
    tls_config: TLSConfig | None = None
    follow_redirects: bool = True
    enable_http2: bool = True


_Fields = dict[str, tuple[Node, Node]]


def _val(m: _Fields, name: str) -> Node | None:
    kv = m.get(name)
    return kv[1] if kv else None


class ConfigParser:
    """Builds a `Config` from a composed YAML document; see the module docstring."""

    def __init__(self, r: NodeReader, directory: str) -> None:
        self.r = r
        self.dir = directory

    def config(self, root: Node | None, text: str, path: str) -> Config:
        r = self.r
        allowed = ("global", "rule_files", "scrape_configs", "alerting", "remote_write")
        m = r.mapping(root, "", allowed, _UNSUPPORTED_TOP, what="configuration file")
        cfg = Config(source=text, path=path)
        cfg.global_config = self.global_config(_val(m, "global"))
        for i, node in enumerate(r.sequence(_val(m, "rule_files"), "rule_files")):
            key = f"rule_files[{i}]"
            pattern = r.string(node, key)
            if not _RULE_PATH.fullmatch(pattern):
                r.fail(node, key, f"invalid rule file path {go_quote(pattern)}")
            cfg.rule_files.append(pattern)
        jobs: set[str] = set()
        for i, node in enumerate(r.sequence(_val(m, "scrape_configs"), "scrape_configs")):
            sc, job_node = self.scrape_config(node, f"scrape_configs[{i}]", cfg.global_config)
            if sc.job_name in jobs:
                r.fail(
                    job_node,
                    f"scrape_configs[{i}].job_name",
                    f"found multiple scrape configs with job name {go_quote(sc.job_name)}",
                )
            jobs.add(sc.job_name)
            cfg.scrape_configs.append(sc)
        if "alerting" in m and not r.is_null(_val(m, "alerting")):
            cfg.alerting = self.alerting(_val(m, "alerting"))
        cfg.remote_write = self.remote_writes(_val(m, "remote_write"))
        return cfg

    # --- global --------------------------------------------------------------------------

    def global_config(self, node: Node | None) -> GlobalConfig:
        r = self.r
        allowed = ("scrape_interval", "scrape_timeout", "evaluation_interval", "external_labels")
        m = r.mapping(node, "global", allowed, _UNSUPPORTED_GLOBAL, what="global")
        g = GlobalConfig()
        interval = r.duration_ms(_val(m, "scrape_interval"), "global.scrape_interval")
        timeout = r.duration_ms(_val(m, "scrape_timeout"), "global.scrape_timeout")
        evaluation = r.duration_ms(_val(m, "evaluation_interval"), "global.evaluation_interval")
        g.external_labels = self.label_map(_val(m, "external_labels"), "global.external_labels")
        g.scrape_interval_ms = interval or GlobalConfig.scrape_interval_ms
        if timeout > g.scrape_interval_ms:
            r.fail(
                _val(m, "scrape_timeout"),
                "global.scrape_timeout",
                "global scrape timeout greater than scrape interval",
            )
        g.scrape_timeout_ms = timeout or min(GlobalConfig.scrape_timeout_ms, g.scrape_interval_ms)
        g.evaluation_interval_ms = evaluation or GlobalConfig.evaluation_interval_ms
        return g

    def label_map(self, node: Node | None, key: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, knode, vnode in self.r.keys_and_nodes(node, key):
            if not valid_label_name(name):
                self.r.fail(knode, f"{key}.{name}", f"{go_quote(name)} is not a valid label name")
            out[name] = self.r.string(vnode, f"{key}.{name}")
        return out

    # --- scrape configs ------------------------------------------------------------------

    def scrape_config(
        self, node: Node, key: str, g: GlobalConfig
    ) -> tuple[ScrapeConfig, Node | None]:
        """The scrape config at `node` and the node of its job name."""
        r = self.r
        if r.is_null(node):
            r.fail(node, key, "empty or null scrape config section")
        m = r.mapping(node, key, _SCRAPE_KEYS, _UNSUPPORTED_SCRAPE, what="scrape config")
        job = r.string(_val(m, "job_name"), f"{key}.job_name")
        if not job:
            r.fail(_val(m, "job_name") or node, f"{key}.job_name", "job_name is empty")
        sc = ScrapeConfig(job_name=job, scrape_interval_ms=0, scrape_timeout_ms=0)
        http = self.http_client(m, key, node)
        sc.basic_auth, sc.authorization, sc.tls_config = (
            http.basic_auth,
            http.authorization,
            http.tls_config,
        )
        sc.follow_redirects, sc.enable_http2 = http.follow_redirects, http.enable_http2

        interval = r.duration_ms(_val(m, "scrape_interval"), f"{key}.scrape_interval")
        timeout = r.duration_ms(_val(m, "scrape_timeout"), f"{key}.scrape_timeout")
        sc.scrape_interval_ms = interval or g.scrape_interval_ms
        if timeout > sc.scrape_interval_ms:
            r.fail(
                _val(m, "scrape_timeout") or node,
                f"{key}.scrape_timeout",
                "scrape timeout greater than scrape interval for scrape config with job name "
                + go_quote(job),
            )
        sc.scrape_timeout_ms = timeout or min(g.scrape_timeout_ms, sc.scrape_interval_ms)
        if "metrics_path" in m:
            sc.metrics_path = r.string(_val(m, "metrics_path"), f"{key}.metrics_path")
        if "scheme" in m:
            sc.scheme = r.string(_val(m, "scheme"), f"{key}.scheme")
            if sc.scheme not in ("http", "https"):
                r.fail(
                    _val(m, "scheme"),
                    f"{key}.scheme",
                    f"scheme {go_quote(sc.scheme)} is not supported by VigilOps "
                    "(use http or https)",
                )
        if "params" in m:
            sc.params = {}
            for name, _, vnode in r.keys_and_nodes(_val(m, "params"), f"{key}.params"):
                sc.params[name] = r.string_list(vnode, f"{key}.params.{name}")
        if "honor_labels" in m:
            sc.honor_labels = r.boolean(_val(m, "honor_labels"), f"{key}.honor_labels")
        if "honor_timestamps" in m:
            sc.honor_timestamps = r.boolean(_val(m, "honor_timestamps"), f"{key}.honor_timestamps")
        for name in (
            "sample_limit",
            "target_limit",
            "label_limit",
            "label_name_length_limit",
            "label_value_length_limit",
        ):
            setattr(sc, name, r.uint(_val(m, name), f"{key}.{name}"))
        # A negative size is accepted by Prometheus and means no limit, like 0.
        body_size = r.byte_size(_val(m, "body_size_limit"), f"{key}.body_size_limit")
        sc.body_size_limit = max(0, body_size)

        sc.relabel_configs = self.relabel_list(
            _val(m, "relabel_configs"),
            f"{key}.relabel_configs",
            "empty or null target relabeling rule in scrape config",
        )
        sc.metric_relabel_configs = self.relabel_list(
            _val(m, "metric_relabel_configs"),
            f"{key}.metric_relabel_configs",
            "empty or null metric relabeling rule in scrape config",
        )
        sc.static_configs = self.static_configs(
            _val(m, "static_configs"), f"{key}.static_configs", not sc.relabel_configs
        )
        sc.file_sd_configs = self.file_sd_configs(
            _val(m, "file_sd_configs"), f"{key}.file_sd_configs"
        )
        sc.http_sd_configs = self.http_sd_configs(
            _val(m, "http_sd_configs"), f"{key}.http_sd_configs"
        )
        return sc, _val(m, "job_name")

    # --- HTTP client ---------------------------------------------------------------------

    def http_client(self, m: _Fields, key: str, node: Node) -> _HTTPClient:
        """The HTTP client options inlined in `m`, validated like prometheus/common's
        ``HTTPClientConfig.Validate`` (bearer_token becomes an Authorization)."""
        r = self.r
        out = _HTTPClient()
        if "follow_redirects" in m:
            out.follow_redirects = r.boolean(_val(m, "follow_redirects"), f"{key}.follow_redirects")
        if "enable_http2" in m:
            out.enable_http2 = r.boolean(_val(m, "enable_http2"), f"{key}.enable_http2")
        token = r.string(_val(m, "bearer_token"), f"{key}.bearer_token")
        token_file = r.string(_val(m, "bearer_token_file"), f"{key}.bearer_token_file")
        basic_node = _val(m, "basic_auth")
        auth_node = _val(m, "authorization")
        has_basic = not r.is_null(basic_node)
        has_auth = not r.is_null(auth_node)

        def fail(name: str, msg: str) -> None:
            r.fail(_val(m, name) or node, f"{key}.{name}", msg)

        if token and token_file:
            fail(
                "bearer_token_file",
                "at most one of bearer_token & bearer_token_file must be configured",
            )
        if has_basic and (token or token_file):
            fail(
                "basic_auth",
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be "
                "configured",
            )
        if has_basic:
            out.basic_auth = self.basic_auth(basic_node, f"{key}.basic_auth")
        if has_auth:
            if token or token_file:
                fail(
                    "authorization",
                    "authorization is not compatible with bearer_token & bearer_token_file",
                )
            out.authorization = self.authorization(auth_node, f"{key}.authorization")
            if has_basic:
                fail(
                    "authorization",
                    "at most one of basic_auth, oauth2 & authorization must be configured",
                )
        elif token:
            out.authorization = Authorization("Bearer", token)
        elif token_file:
            path = join_config_dir(self.dir, token_file)
            secret = self.read_secret(
                _val(m, "bearer_token_file"), f"{key}.bearer_token_file", path
            )
            out.authorization = Authorization("Bearer", secret, path)
        if "tls_config" in m:
            out.tls_config = self.tls_config(_val(m, "tls_config"), f"{key}.tls_config")
        return out

    def basic_auth(self, node: Node | None, key: str) -> BasicAuth:
        r = self.r
        allowed = ("username", "password", "password_file")
        m = r.mapping(node, key, allowed, _UNSUPPORTED_BASIC_AUTH, "basic_auth")
        auth = BasicAuth(
            r.string(_val(m, "username"), f"{key}.username"),
            r.string(_val(m, "password"), f"{key}.password"),
        )
        password_file = r.string(_val(m, "password_file"), f"{key}.password_file")
        if auth.password and password_file:
            r.fail(
                _val(m, "password_file"),
                f"{key}.password_file",
                "at most one of basic_auth password & password_file must be configured",
            )
        if password_file:
            auth.password_file = join_config_dir(self.dir, password_file)
            auth.password = self.read_secret(
                _val(m, "password_file"), f"{key}.password_file", auth.password_file
            )
        return auth

    def authorization(self, node: Node | None, key: str) -> Authorization:
        r = self.r
        m = r.mapping(
            node,
            key,
            ("type", "credentials", "credentials_file"),
            _UNSUPPORTED_AUTHORIZATION,
            "authorization",
        )
        auth = Authorization(
            r.string(_val(m, "type"), f"{key}.type").strip() or "Bearer",
            r.string(_val(m, "credentials"), f"{key}.credentials"),
        )
        credentials_file = r.string(_val(m, "credentials_file"), f"{key}.credentials_file")
        if auth.credentials and credentials_file:
            r.fail(
                _val(m, "credentials_file"),
                f"{key}.credentials_file",
                "at most one of authorization credentials & credentials_file must be configured",
            )
        if auth.type.lower() == "basic":
            r.fail(
                _val(m, "type"),
                f"{key}.type",
                'authorization type cannot be set to "basic", use "basic_auth" instead',
            )
        if credentials_file:
            auth.credentials_file = join_config_dir(self.dir, credentials_file)
            auth.credentials = self.read_secret(
                _val(m, "credentials_file"), f"{key}.credentials_file", auth.credentials_file
            )
        return auth

    def tls_config(self, node: Node | None, key: str) -> TLSConfig:
        r = self.r
        allowed = (
            "ca_file",
            "cert_file",
            "key_file",
            "server_name",
            "insecure_skip_verify",
            "min_version",
            "max_version",
        )
        m = r.mapping(node, key, allowed, _UNSUPPORTED_TLS, "tls_config")
        tls = TLSConfig()
        for name in ("ca_file", "cert_file", "key_file"):
            value = r.string(_val(m, name), f"{key}.{name}")
            if value:
                value = join_config_dir(self.dir, value)
                if not os.path.isfile(value):
                    r.fail(
                        _val(m, name),
                        f"{key}.{name}",
                        f"unable to read {name} {go_quote(value)}: no such file",
                    )
            setattr(tls, name, value)
        tls.server_name = r.string(_val(m, "server_name"), f"{key}.server_name")
        tls.insecure_skip_verify = r.boolean(
            _val(m, "insecure_skip_verify"), f"{key}.insecure_skip_verify"
        )
        for name in ("min_version", "max_version"):
            if name in m and not r.is_null(_val(m, name)):
                version = r.string(_val(m, name), f"{key}.{name}")
                if version not in _TLS_VERSIONS:
                    r.fail(_val(m, name), f"{key}.{name}", f"unknown TLS version: {version}")
                setattr(tls, name, version)
        if tls.cert_file and not tls.key_file:
            r.fail(
                _val(m, "cert_file"),
                f"{key}.cert_file",
                f"client cert file {go_quote(tls.cert_file)} specified without client key file",
            )
        if tls.key_file and not tls.cert_file:
            r.fail(
                _val(m, "key_file"),
                f"{key}.key_file",
                f"client key file {go_quote(tls.key_file)} specified without client cert file",
            )
        return tls

    def read_secret(self, node: Node | None, key: str, path: str) -> str:
        try:
            with open(path, encoding="utf-8") as f:
                return f.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.r.fail(node, key, f"unable to read file {go_quote(path)}: {reason}")

    # --- service discovery ---------------------------------------------------------------

    def static_configs(self, node: Node | None, key: str, check_hosts: bool) -> list[StaticConfig]:
        r = self.r
        out = []
        for i, item in enumerate(r.sequence(node, key)):
            k = f"{key}[{i}]"
            if r.is_null(item):
                r.fail(item, k, "empty or null section in static_configs")
            m = r.mapping(item, k, ("targets", "labels"), what="static_config")
            targets = []
            for j, tnode in enumerate(r.sequence(_val(m, "targets"), f"{k}.targets")):
                target = r.string(tnode, f"{k}.targets[{j}]")
                if not target:
                    r.fail(tnode, f"{k}.targets[{j}]", f"instance {j} in group {i}: no address")
                if check_hosts and "/" in target:
                    r.fail(
                        tnode, f"{k}.targets[{j}]", f"{go_quote(target)} is not a valid hostname"
                    )
                targets.append(target)
            out.append(StaticConfig(targets, self.label_map(_val(m, "labels"), f"{k}.labels")))
        return out

    def file_sd_configs(self, node: Node | None, key: str) -> list[FileSDConfig]:
        r = self.r
        out = []
        for i, item in enumerate(r.sequence(node, key)):
            k = f"{key}[{i}]"
            m = r.mapping(item, k, ("files", "refresh_interval"), what="file_sd_config")
            files = r.string_list(_val(m, "files"), f"{k}.files")
            if not files:
                r.fail(
                    _val(m, "files") or item,
                    f"{k}.files",
                    "file service discovery config must contain at least one path name",
                )
            for j, name in enumerate(files):
                if not _FILE_SD_PATH.fullmatch(name):
                    r.fail(
                        r.sequence(_val(m, "files"), k)[j],
                        f"{k}.files[{j}]",
                        f"path name {go_quote(name)} is not valid for file discovery",
                    )
            sd = FileSDConfig(files)
            if "refresh_interval" in m:
                sd.refresh_interval_ms = self.refresh_interval(m, k)
            out.append(sd)
        return out

    def http_sd_configs(self, node: Node | None, key: str) -> list[HTTPSDConfig]:
        r = self.r
        out = []
        for i, item in enumerate(r.sequence(node, key)):
            k = f"{key}[{i}]"
            allowed = ("url", "refresh_interval", *_HTTP_KEYS)
            m = r.mapping(item, k, allowed, _UNSUPPORTED_HTTP, "http_sd_config")
            url = r.string(_val(m, "url"), f"{k}.url")
            if not url:
                r.fail(_val(m, "url") or item, f"{k}.url", "URL is missing")
            parts = urlsplit(url)
            if parts.scheme.lower() not in ("http", "https"):
                r.fail(_val(m, "url"), f"{k}.url", "URL scheme must be 'http' or 'https'")
            if not parts.hostname:
                r.fail(_val(m, "url"), f"{k}.url", "host is missing in URL")
            http = self.http_client(m, k, item)
            sd = HTTPSDConfig(
                url,
                basic_auth=http.basic_auth,
                authorization=http.authorization,
                tls_config=http.tls_config,
                follow_redirects=http.follow_redirects,
                enable_http2=http.enable_http2,
            )
            if "refresh_interval" in m:
                sd.refresh_interval_ms = self.refresh_interval(m, k)
            out.append(sd)
        return out

    def refresh_interval(self, m: _Fields, key: str) -> int:
        ms = self.r.duration_ms(_val(m, "refresh_interval"), f"{key}.refresh_interval")
        if ms <= 0:
            self.r.fail(
                _val(m, "refresh_interval"),
                f"{key}.refresh_interval",
                "a refresh_interval of 0 is not supported (it must be greater than 0)",
            )
        return ms

    # --- relabeling ----------------------------------------------------------------------

    def relabel_list(self, node: Node | None, key: str, null_message: str) -> list[RelabelConfig]:
        out = []
        for i, item in enumerate(self.r.sequence(node, key)):
            if self.r.is_null(item):
                self.r.fail(item, f"{key}[{i}]", null_message)
            out.append(self.relabel_config(item, f"{key}[{i}]"))
        return out

    def relabel_config(self, node: Node, key: str) -> RelabelConfig:
        r = self.r
        m = r.mapping(node, key, _RELABEL_KEYS, what="relabel_config")
        sources = []
        for j, snode in enumerate(r.sequence(_val(m, "source_labels"), f"{key}.source_labels")):
            name = r.string(snode, f"{key}.source_labels[{j}]")
            if not valid_label_name(name):
                r.fail(
                    snode,
                    f"{key}.source_labels[{j}]",
                    f"{go_quote(name)} is not a valid label name",
                )
            sources.append(name)
        action = "replace"
        if "action" in m:
            raw = r.string(_val(m, "action"), f"{key}.action")
            action = raw.lower()
            if action not in RELABEL_ACTIONS:
                r.fail(
                    _val(m, "action"), f"{key}.action", f"unknown relabel action {go_quote(raw)}"
                )
        # Prometheus reads a null regex as the empty regex, not as the default.
        regex = r.string(_val(m, "regex"), f"{key}.regex") if "regex" in m else DEFAULT_REGEX
        try:
            cfg = RelabelConfig(
                source_labels=sources,
                separator=(
                    r.string(_val(m, "separator"), f"{key}.separator")
                    if "separator" in m
                    else DEFAULT_SEPARATOR
                ),
                target_label=r.string(_val(m, "target_label"), f"{key}.target_label"),
                regex=regex,
                modulus=r.uint(_val(m, "modulus"), f"{key}.modulus"),
                replacement=(
                    r.string(_val(m, "replacement"), f"{key}.replacement")
                    if "replacement" in m
                    else DEFAULT_REPLACEMENT
                ),
                action=action,
            )
        except ValueError as exc:
            r.fail(_val(m, "regex"), f"{key}.regex", regex_error_message(str(exc)))
        err = relabel_error(
            cfg,
            regex_is_default="regex" not in m,
            has_sources="source_labels" in m and not r.is_null(_val(m, "source_labels")),
        )
        if err:
            name, message = err
            # Point at the field the message is about when it is written, else at the rule.
            if name in m:
                r.fail(_val(m, name), f"{key}.{name}", message)
            r.fail(node, key, message)
        return cfg

    # --- alerting and remote write (kept for later) --------------------------------------

    def alerting(self, node: Node | None) -> dict[str, Any]:
        r = self.r
        m = r.mapping(node, "alerting", ("alert_relabel_configs", "alertmanagers"), what="alerting")
        out: dict[str, Any] = {}
        out["alert_relabel_configs"] = self.relabel_list(
            _val(m, "alert_relabel_configs"),
            "alerting.alert_relabel_configs",
            "empty or null alert relabeling rule",
        )
        ams = []
        for i, item in enumerate(r.sequence(_val(m, "alertmanagers"), "alerting.alertmanagers")):
            ams.append(self.alertmanager(item, f"alerting.alertmanagers[{i}]"))
        out["alertmanagers"] = ams
        return out

    def alertmanager(self, node: Node, key: str) -> dict[str, Any]:
        r = self.r
        if r.is_null(node):
            r.fail(node, key, "empty or null alertmanager config section")
        allowed = (
            *_HTTP_KEYS,
            "scheme",
            "path_prefix",
            "timeout",
            "api_version",
            "relabel_configs",
            "static_configs",
            "file_sd_configs",
            "http_sd_configs",
        )
        m = r.mapping(node, key, allowed, _UNSUPPORTED_AM, "alertmanager config")
        http = self.http_client(m, key, node)
        scheme = r.string(_val(m, "scheme"), f"{key}.scheme") if "scheme" in m else "http"
        if scheme not in ("http", "https"):
            r.fail(
                _val(m, "scheme"),
                f"{key}.scheme",
                f"scheme {go_quote(scheme)} is not supported by VigilOps (use http or https)",
            )
        timeout = 10_000
        if "timeout" in m:
            timeout = r.duration_ms(_val(m, "timeout"), f"{key}.timeout")
        version = "v2"
        if "api_version" in m and not r.is_null(_val(m, "api_version")):
            version = r.string(_val(m, "api_version"), f"{key}.api_version")
            if version == "v1":
                r.fail(
                    _val(m, "api_version"),
                    f"{key}.api_version",
                    "Alertmanager api_version v1 is not supported by VigilOps (use v2)",
                )
            if version != "v2":
                r.fail(
                    _val(m, "api_version"),
                    f"{key}.api_version",
                    f"expected Alertmanager api version to be one of [v1 v2] but got {version}",
                )
        relabels = self.relabel_list(
            _val(m, "relabel_configs"),
            f"{key}.relabel_configs",
            "empty or null Alertmanager target relabeling rule",
        )
        out: dict[str, Any] = _http_client_dict(http)
        out["scheme"] = scheme
        if "path_prefix" in m:
            out["path_prefix"] = r.string(_val(m, "path_prefix"), f"{key}.path_prefix")
        out["timeout"] = format_duration_ms(timeout)
        out["api_version"] = version
        out["relabel_configs"] = relabels
        out["file_sd_configs"] = self.file_sd_configs(
            _val(m, "file_sd_configs"), f"{key}.file_sd_configs"
        )
        out["http_sd_configs"] = self.http_sd_configs(
            _val(m, "http_sd_configs"), f"{key}.http_sd_configs"
        )
        out["static_configs"] = self.static_configs(
            _val(m, "static_configs"), f"{key}.static_configs", not relabels
        )
        return out

    def remote_writes(self, node: Node | None) -> list[dict[str, Any]]:
        r = self.r
        out = []
        names: set[str] = set()
        for i, item in enumerate(r.sequence(node, "remote_write")):
            key = f"remote_write[{i}]"
            if r.is_null(item):
                r.fail(item, key, "empty or null remote write config section")
            rw, name_node = self.remote_write(item, key)
            name = rw.get("name", "")
            if name and name in names:
                r.fail(
                    name_node,
                    f"{key}.name",
                    f"found multiple remote write configs with job name {go_quote(name)}",
                )
            names.add(name)
            out.append(rw)
        return out

    def remote_write(self, node: Node, key: str) -> tuple[dict[str, Any], Node | None]:
        r = self.r
        m = r.mapping(node, key, _REMOTE_WRITE_KEYS, _UNSUPPORTED_RW, "remote_write config")
        url = r.string(_val(m, "url"), f"{key}.url")
        if not url:
            r.fail(_val(m, "url") or node, f"{key}.url", "url for remote_write is empty")
        try:
            urlsplit(url)
        except ValueError as exc:
            r.fail(_val(m, "url"), f"{key}.url", f"invalid URL {go_quote(url)}: {exc}")
        out: dict[str, Any] = {"url": url}
        timeout = 30_000
        if "remote_timeout" in m:
            timeout = r.duration_ms(_val(m, "remote_timeout"), f"{key}.remote_timeout")
        out["remote_timeout"] = format_duration_ms(timeout)
        headers = r.string_map(_val(m, "headers"), f"{key}.headers")
        for name in headers:
            if name.lower() == "authorization":
                r.fail(
                    _val(m, "headers"),
                    f"{key}.headers.{name}",
                    "authorization header must be changed via the basic_auth, authorization, "
                    "oauth2, or sigv4 parameter",
                )
            if name.lower() in _RESERVED_HEADERS:
                r.fail(
                    _val(m, "headers"),
                    f"{key}.headers.{name}",
                    f"{name} is a reserved header. It must not be changed",
                )
        if headers:
            out["headers"] = headers
        out["write_relabel_configs"] = self.relabel_list(
            _val(m, "write_relabel_configs"),
            f"{key}.write_relabel_configs",
            "empty or null relabeling rule in remote write config",
        )
        if "name" in m:
            out["name"] = r.string(_val(m, "name"), f"{key}.name")
        for flag in ("send_exemplars", "send_native_histograms"):
            out[flag] = r.boolean(_val(m, flag), f"{key}.{flag}")
        out.update(_http_client_dict(self.http_client(m, key, node)))
        out["queue_config"] = self.section(
            _val(m, "queue_config"), f"{key}.queue_config", _QUEUE_DEFAULTS
        )
        out["metadata_config"] = self.section(
            _val(m, "metadata_config"), f"{key}.metadata_config", _METADATA_DEFAULTS
        )
        return out, _val(m, "name")

    def section(self, node: Node | None, key: str, defaults: dict[str, Any]) -> dict[str, Any]:
        """A flat section whose value types are those of `defaults` (a duration is a str)."""
        r = self.r
        m = r.mapping(node, key, tuple(defaults), what=key.rsplit(".", 1)[-1])
        out = dict(defaults)
        for name, (_, vnode) in m.items():
            default = defaults[name]
            if isinstance(default, bool):
                out[name] = r.boolean(vnode, f"{key}.{name}")
            elif isinstance(default, int):
                out[name] = r.integer(vnode, f"{key}.{name}")
            else:
                out[name] = format_duration_ms(r.duration_ms(vnode, f"{key}.{name}"))
        return out


_REMOTE_WRITE_KEYS = (
    "url",
    "remote_timeout",
    "headers",
    "write_relabel_configs",
    "name",
    "send_exemplars",
    "send_native_histograms",
    "queue_config",
    "metadata_config",
    *_HTTP_KEYS,
)
#: Prometheus 2.42's remote-write queue and metadata defaults (``DefaultQueueConfig``).
_QUEUE_DEFAULTS: dict[str, Any] = {
    "capacity": 2500,
    "max_shards": 200,
    "min_shards": 1,
    "max_samples_per_send": 500,
    "batch_send_deadline": "5s",
    "min_backoff": "30ms",
    "max_backoff": "5s",
    "retry_on_http_429": False,
}
_METADATA_DEFAULTS: dict[str, Any] = {
    "send": True,
    "send_interval": "1m",
    "max_samples_per_send": 500,
}


def _http_client_dict(http: _HTTPClient) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if http.basic_auth is not None:
        out["basic_auth"] = http.basic_auth
    if http.authorization is not None:
        out["authorization"] = http.authorization
    if http.tls_config is not None:
        out["tls_config"] = http.tls_config
    out["follow_redirects"] = http.follow_redirects
    out["enable_http2"] = http.enable_http2
    return out



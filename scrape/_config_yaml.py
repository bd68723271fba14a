"""The effective configuration printed as Prometheus 2.42 prints it for ``/api/v1/status/config``.

Keys come in the order of Prometheus's Go structs, optional fields are left out when empty as
its ``omitempty`` tags say, durations and sizes use Prometheus's notation, and secrets are
replaced by ``<secret>``. The YAML layout is go-yaml v2's: two-space indentation, sequences
at their key's indentation, `source_labels` in flow style.
"""

from __future__ import annotations

from typing import Any

import yaml

from .config import (
    DEFAULT_REGEX,
    Authorization,
    BasicAuth,
    Config,
    FileSDConfig,
    HTTPSDConfig,
    RelabelConfig,
    ScrapeConfig,
    StaticConfig,
    TLSConfig,
    join_config_dir,
)
from .duration import format_bytes, format_duration_ms

SECRET = "<secret>"


class _Flow(list[str]):
    """A list printed in flow style, ``[a, b]``."""


def dump_config(cfg: Config) -> str:
    doc: dict[str, Any] = {}
    g = cfg.global_config
    glob: dict[str, Any] = {
        "scrape_interval": format_duration_ms(g.scrape_interval_ms),
        "scrape_timeout": format_duration_ms(g.scrape_timeout_ms),
        "evaluation_interval": format_duration_ms(g.evaluation_interval_ms),
    }
    if g.external_labels:
        glob["external_labels"] = dict(sorted(g.external_labels.items()))
    doc["global"] = glob
    if cfg.alerting and (cfg.alerting["alertmanagers"] or cfg.alerting["alert_relabel_configs"]):
        doc["alerting"] = _alerting(cfg.alerting, cfg.directory)
    if cfg.rule_files:
        doc["rule_files"] = cfg.rule_file_patterns()
    if cfg.scrape_configs:
        doc["scrape_configs"] = [_scrape_config(sc, cfg.directory) for sc in cfg.scrape_configs]
    if cfg.remote_write:
        doc["remote_write"] = [_plain(rw, cfg.directory) for rw in cfg.remote_write]
    return "\n".join(_emit_mapping(doc, 0)) + "\n"


def _scrape_config(sc: ScrapeConfig, directory: str) -> dict[str, Any]:
    out: dict[str, Any] = {"job_name": sc.job_name}
    if sc.honor_labels:
        out["honor_labels"] = True
    out["honor_timestamps"] = sc.honor_timestamps
    if sc.params:
        out["params"] = {k: list(v) for k, v in sorted(sc.params.items())}
    out["scrape_interval"] = format_duration_ms(sc.scrape_interval_ms)
    out["scrape_timeout"] = format_duration_ms(sc.scrape_timeout_ms)
    # Prometheus omits an empty metrics_path; printing it keeps the output reloadable as is.
    out["metrics_path"] = sc.metrics_path
    out["scheme"] = sc.scheme
    if sc.body_size_limit:
        out["body_size_limit"] = format_bytes(sc.body_size_limit)
    for name in (
        "sample_limit",
        "target_limit",
        "label_limit",
        "label_name_length_limit",
        "label_value_length_limit",
    ):
        if getattr(sc, name):
            out[name] = getattr(sc, name)
    out.update(
        _http_client(
            sc.basic_auth, sc.authorization, sc.tls_config, sc.follow_redirects, sc.enable_http2
        )
    )
    if sc.relabel_configs:
        out["relabel_configs"] = [_relabel(rc) for rc in sc.relabel_configs]
    if sc.metric_relabel_configs:
        out["metric_relabel_configs"] = [_relabel(rc) for rc in sc.metric_relabel_configs]
    out.update(_discovery(sc.file_sd_configs, sc.http_sd_configs, sc.static_configs, directory))
    return out


def _discovery(
    files: list[FileSDConfig],
    https: list[HTTPSDConfig],
    statics: list[StaticConfig],
    directory: str,
) -> dict[str, Any]:
    # Prometheus prints discovery configs last, sorted by key, with file paths joined to the
    # configuration's directory.
    out: dict[str, Any] = {}
    if files:
        out["file_sd_configs"] = [
            {
                "files": [join_config_dir(directory, name) for name in f.files],
                "refresh_interval": format_duration_ms(f.refresh_interval_ms),
            }
            for f in files
        ]
    if https:
        out["http_sd_configs"] = [
            {
                **_http_client(
                    h.basic_auth, h.authorization, h.tls_config, h.follow_redirects, h.enable_http2
                ),
                "refresh_interval": format_duration_ms(h.refresh_interval_ms),
                "url": h.url,
            }
            for h in https
        ]
    if statics:
        groups = []
        for s in statics:
            group: dict[str, Any] = {"targets": list(s.targets)}
            if s.labels:
                group["labels"] = dict(sorted(s.labels.items()))
            groups.append(group)
        out["static_configs"] = groups
    return out


def _http_client(
    basic: BasicAuth | None,
    auth: Authorization | None,
    tls: TLSConfig | None,
    follow_redirects: bool,
    enable_http2: bool,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if basic is not None:
        b: dict[str, Any] = {}
        if basic.username:
            b["username"] = basic.username
        if basic.password_file:
            b["password_file"] = basic.password_file
        elif basic.password:
            b["password"] = SECRET
        out["basic_auth"] = b
    if auth is not None:
        a: dict[str, Any] = {}
        if auth.type:
            a["type"] = auth.type
        if auth.credentials_file:
            a["credentials_file"] = auth.credentials_file
        elif auth.credentials:
            a["credentials"] = SECRET
        out["authorization"] = a
    if tls is not None:
        t = {
            name: getattr(tls, name)
            for name in (
                "ca_file",
                "cert_file",
                "key_file",
                "server_name",
                "insecure_skip_verify",
                "min_version",
                "max_version",
            )
            if getattr(tls, name)
        }
        if t:
            out["tls_config"] = t
    out["follow_redirects"] = follow_redirects
    out["enable_http2"] = enable_http2
    return out


def _relabel(rc: RelabelConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rc.source_labels:
        out["source_labels"] = _Flow(rc.source_labels)
    # Unlike Prometheus, an empty separator or replacement is printed: left out, it would
    # read back as the default.
    out["separator"] = rc.separator
    # Prometheus prints keepequal/dropequal's default regex too, and then refuses to load
    # what it printed; leaving it out keeps the output reloadable.
    if rc.action not in ("keepequal", "dropequal") or rc.regex != DEFAULT_REGEX:
        out["regex"] = rc.regex if rc.regex else None
    if rc.modulus:
        out["modulus"] = rc.modulus
    if rc.target_label:
        out["target_label"] = rc.target_label
    out["replacement"] = rc.replacement
    out["action"] = rc.action
    return out


def _alerting(alerting: dict[str, Any], directory: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if alerting["alert_relabel_configs"]:
        out["alert_relabel_configs"] = [_relabel(rc) for rc in alerting["alert_relabel_configs"]]
    if alerting["alertmanagers"]:
        out["alertmanagers"] = [_plain(am, directory) for am in alerting["alertmanagers"]]
    return out


def _plain(section: dict[str, Any], directory: str) -> dict[str, Any]:
    """An alertmanager or remote-write section (see `Config`) made printable."""
    http = _http_client(
        section.get("basic_auth"),
        section.get("authorization"),
        section.get("tls_config"),
        section["follow_redirects"],
        section["enable_http2"],
    )
    out: dict[str, Any] = {}
    for name, value in section.items():
        if name in ("basic_auth", "authorization", "tls_config", "follow_redirects"):
            continue
        if name == "enable_http2":
            out.update(http)
        elif name in ("relabel_configs", "write_relabel_configs"):
            if value:
                out[name] = [_relabel(rc) for rc in value]
        elif name in ("file_sd_configs", "http_sd_configs", "static_configs"):
            continue
        elif name == "headers":
            out[name] = dict(sorted(value.items()))
        elif name in ("send_exemplars", "send_native_histograms") and not value:
            continue
        elif name == "queue_config":
            out[name] = {k: v for k, v in value.items() if k != "retry_on_http_429" or v}
        else:
            out[name] = value
    if "static_configs" in section:
        out.update(
            _discovery(
                section["file_sd_configs"],
                section["http_sd_configs"],
                section["static_configs"],
                directory,
            )
        )
    return out


# --- a small go-yaml-v2-style emitter ---------------------------------------------------------


def _emit_mapping(d: dict[str, Any], indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for key, value in d.items():
        head = f"{pad}{_scalar(key)}:"
        if isinstance(value, _Flow):
            lines.append(f"{head} [{', '.join(_scalar(v) for v in value)}]")
        elif isinstance(value, dict):
            if value:
                lines.append(head)
                lines += _emit_mapping(value, indent + 2)
            else:
                lines.append(f"{head} {{}}")
        elif isinstance(value, list):
            if value:
                lines.append(head)
                lines += _emit_sequence(value, indent)
            else:
                lines.append(f"{head} []")
        else:
            lines.append(f"{head} {_scalar(value)}")
    return lines


def _emit_sequence(items: list[Any], indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for item in items:
        if isinstance(item, dict) and item:
            sub = _emit_mapping(item, indent + 2)
            lines.append(f"{pad}- {sub[0].lstrip()}")
            lines += sub[1:]
        elif isinstance(item, list) and item:
            sub = _emit_sequence(item, indent + 2)
            lines.append(f"{pad}- {sub[0].lstrip()}")
            lines += sub[1:]
        elif isinstance(item, dict):
            lines.append(f"{pad}- {{}}")
        elif isinstance(item, list):
            lines.append(f"{pad}- []")
        else:
            lines.append(f"{pad}- {_scalar(item)}")
    return lines


#: Plain scalars go-yaml v2 reads as booleans although PyYAML does not.
_GO_BOOLISH = frozenset({"y", "Y", "n", "N"})


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    s = str(value)
    if s in _GO_BOOLISH:
        return f'"{s}"'
    text = yaml.safe_dump(s, allow_unicode=True, width=1 << 30, default_flow_style=True)
    text = text.removesuffix("\n").removesuffix("\n...")
    if "\n" in text or (text and text[0] in "|>"):
        return _double_quoted(s)
    return text


def _double_quoted(s: str) -> str:
    out = ['"']
    for ch in s:
        cp = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif cp < 0x20 or 0x7F <= cp <= 0x9F or cp in (0x2028, 0x2029, 0xFEFF):
            out.append(f"\\x{cp:02x}" if cp <= 0xFF else f"\\u{cp:04x}")
        elif 0xD800 <= cp <= 0xDFFF:
            out.append(f"\\u{cp:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)

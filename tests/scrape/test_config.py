"""`prometheus.yml` parsing: Prometheus 2.42's defaults and validation, precise errors, and a
clear rejection of everything VigilOps does not run.

Fixtures in testdata/ say their verdict in their name, as in Prometheus's own testdata:
``*.good.yml`` must load, ``*.bad.yml`` must be rejected, ``*.unsupported.yml`` is valid for
Prometheus but rejected by VigilOps as "not supported". Rejected fixtures start with
``# expect: LINE KEY: MESSAGE`` (the error's line, key path, and a part of its message). The
peer test runs Debian's promtool 2.42 over every fixture and checks it agrees.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from vigilops.scrape.config import (
    Authorization,
    BasicAuth,
    Config,
    ConfigError,
    FileSDConfig,
    GlobalConfig,
    HTTPSDConfig,
    RelabelConfig,
    ScrapeConfig,
    StaticConfig,
    TLSConfig,
    config_to_yaml,
    load_config,
    parse_config,
)
from vigilops.scrape.duration import format_bytes, format_duration_ms, parse_bytes, parse_duration_ms

TESTDATA = Path(__file__).parent / "testdata"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def fixtures(kind: str) -> list[Path]:
    return sorted(TESTDATA.glob(f"*.{kind}.yml"))


@dataclass
class Expect:
    line: int
    key: str
    message: str


def expectation(path: Path) -> Expect:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} must start with '# expect: LINE KEY: MSG'"
    line, rest = first.removeprefix("# expect: ").split(" ", 1)
    key, message = rest.split(": ", 1) if not rest.startswith(": ") else ("", rest[2:])
    return Expect(int(line), key, message)


def load_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    return info.value


@pytest.mark.parametrize("path", fixtures("good"), ids=lambda p: p.name)
def test_good_fixtures_load(path: Path) -> None:
    cfg = load_config(str(path))
    assert cfg.path == str(path)
    assert cfg.source == path.read_text()


@pytest.mark.parametrize("path", fixtures("bad"), ids=lambda p: p.name)
def test_bad_fixtures_are_rejected_precisely(path: Path) -> None:
    want = expectation(path)
    err = load_error(path)
    assert (err.line, err.key) == (want.line, want.key), str(err)
    assert want.message in err.message
    assert "not supported" not in err.message
    assert str(err).startswith(f"{path}:{want.line}:")


@pytest.mark.parametrize("path", fixtures("unsupported"), ids=lambda p: p.name)
def test_unsupported_fixtures_are_rejected_as_not_supported(path: Path) -> None:
    want = expectation(path)
    err = load_error(path)
    assert (err.line, err.key) == (want.line, want.key), str(err)
    assert want.message in err.message
    assert "not supported" in err.message


@pytest.mark.peer
@pytest.mark.parametrize(
    "path", fixtures("good") + fixtures("bad") + fixtures("unsupported"), ids=lambda p: p.name
)
def test_promtool_agrees(path: Path) -> None:
    if not os.access(PROMTOOL, os.X_OK):
        pytest.skip("Debian's promtool is not installed")
    proc = subprocess.run(
        [PROMTOOL, "check", "config", path.name],
        cwd=TESTDATA,
        capture_output=True,
        text=True,
        timeout=60,
    )
    promtool_accepts = proc.returncode == 0
    assert promtool_accepts == (not path.name.endswith(".bad.yml")), proc.stdout + proc.stderr


# --- defaults and inheritance ----------------------------------------------------------------


def test_empty_file_is_all_defaults() -> None:
    cfg = parse_config("")
    assert cfg.global_config == GlobalConfig(60_000, 10_000, 60_000, {})
    assert (cfg.scrape_configs, cfg.rule_files, cfg.alerting, cfg.remote_write) == ([], [], None, [])


@pytest.mark.parametrize(
    ("global_yaml", "job_yaml", "interval", "timeout"),
    [
        ("", "", 60_000, 10_000),
        ("scrape_interval: 15s", "", 15_000, 10_000),
        ("scrape_interval: 5s", "", 5_000, 5_000),  # global timeout = min(10s, interval)
        ("scrape_interval: 1m\n  scrape_timeout: 20s", "", 60_000, 20_000),
        ("scrape_interval: 1m\n  scrape_timeout: 20s", "scrape_interval: 5s", 5_000, 5_000),
        ("scrape_interval: 1m\n  scrape_timeout: 20s", "scrape_interval: 30s", 30_000, 20_000),
        ("", "scrape_timeout: 1m", 60_000, 60_000),
        ("", "scrape_interval: 2m\n    scrape_timeout: 1m30s", 120_000, 90_000),
        ("scrape_interval: 10s", "scrape_interval: 0s", 10_000, 10_000),  # 0 inherits
        ("scrape_timeout: 0s", "", 60_000, 10_000),
        ("evaluation_interval: 0s", "", 60_000, 10_000),
    ],
)
def test_interval_and_timeout_inheritance(
    global_yaml: str, job_yaml: str, interval: int, timeout: int
) -> None:
    text = f"global:\n  {global_yaml}\nscrape_configs:\n  - job_name: j\n    {job_yaml}\n"
    sc = parse_config(text).scrape_configs[0]
    assert (sc.scrape_interval_ms, sc.scrape_timeout_ms) == (interval, timeout)


def test_scrape_config_defaults() -> None:
    sc = parse_config("scrape_configs: [{job_name: j}]").scrape_configs[0]
    assert sc == ScrapeConfig(job_name="j", scrape_interval_ms=60_000, scrape_timeout_ms=10_000)
    assert (sc.metrics_path, sc.scheme, sc.honor_labels, sc.honor_timestamps) == (
        "/metrics",
        "http",
        False,
        True,
    )
    assert sc.basic_auth is None and sc.authorization is None and sc.tls_config is None
    assert (sc.follow_redirects, sc.enable_http2) == (True, True)


def test_nulls_are_go_zero_values() -> None:
    cfg = load_config(str(TESTDATA / "nulls.good.yml"))
    a, b = cfg.scrape_configs
    assert (a.scrape_interval_ms, a.metrics_path, a.basic_auth, a.static_configs) == (60_000, "", None, [])
    assert b.static_configs == [
        StaticConfig([], {}),
        StaticConfig([], {}),
        StaticConfig(["a:1"], {"x": "", "y": "1"}),
    ]
    assert cfg.global_config == GlobalConfig()


def test_yaml_1_1_scalars_like_go_yaml() -> None:
    cfg = load_config(str(TESTDATA / "yaml11.good.yml"))
    jobs = {sc.job_name: sc for sc in cfg.scrape_configs}
    assert (jobs["yes-no"].honor_labels, jobs["yes-no"].honor_timestamps) == (True, False)
    assert (jobs["y-n"].honor_labels, jobs["y-n"].honor_timestamps) == (True, False)
    assert (jobs["123"].sample_limit, jobs["123"].label_limit) == (16, 1000)
    assert jobs["123"].body_size_limit == 1_572_864
    assert jobs["sizes"].body_size_limit == 2049
    assert jobs["negative-size-means-no-limit"].body_size_limit == 0


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("10", 10),
        ("1_000", 1000),
        ("0x1F", 31),
        ("0o17", 15),
        ("017", 15),
        ("0b101", 5),
        ("+5", 5),
        ("1e3", 1000),
        ("1.0", 1),
        ("18446744073709551615", 2**64 - 1),
    ],
)
def test_integers_resolve_like_go_yaml(text: str, value: int) -> None:
    sc = parse_config(f"scrape_configs: [{{job_name: a, sample_limit: {text}}}]").scrape_configs[0]
    assert sc.sample_limit == value


@pytest.mark.parametrize("text", ["'5'", '"5"', "1.5", "-1", "1:30", "0x", "1e999", "18446744073709551616", "x"])
def test_integers_rejected(text: str) -> None:
    with pytest.raises(ConfigError, match="expected a non-negative integer"):
        parse_config(f"scrape_configs: [{{job_name: a, sample_limit: {text}}}]")


def test_anchors_aliases_and_merge_keys() -> None:
    a, b = load_config(str(TESTDATA / "anchors.good.yml")).scrape_configs
    assert b.relabel_configs == a.relabel_configs
    assert b.params == {"module": ["http_2xx"], "target": ["x"]}
    assert b.static_configs == [StaticConfig(["b:1"], {"env": "prod", "rack": "1"})]


# --- the full example ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full() -> Config:
    return load_config(str(TESTDATA / "full.good.yml"))


def test_full_global(full: Config) -> None:
    assert full.global_config == GlobalConfig(15_000, 5_000, 30_000, {"cluster": "eu-1", "replica": "a"})
    assert full.rule_files == ["rules/*.rules.yml"]
    assert full.expand_rule_files() == [str(TESTDATA / "rules" / "node.rules.yml")]


def test_full_scrape_config(full: Config) -> None:
    node = full.scrape_configs[0]
    assert (node.job_name, node.scrape_interval_ms, node.scrape_timeout_ms) == ("node", 30_000, 10_000)
    assert (node.honor_labels, node.honor_timestamps, node.metrics_path, node.scheme) == (
        True,
        False,
        "/probe",
        "https",
    )
    assert node.params == {"module": ["http_2xx"], "target": ["a", "b"]}
    assert (node.body_size_limit, node.sample_limit, node.target_limit) == (10 << 20, 10000, 100)
    assert (node.label_limit, node.label_name_length_limit, node.label_value_length_limit) == (
        64,
        128,
        1024,
    )
    assert (node.follow_redirects, node.enable_http2) == (False, False)
    # Secrets are read at load, whitespace trimmed; paths are resolved like Prometheus's.
    assert node.basic_auth == BasicAuth("scraper", "s3cret", str(TESTDATA / "secrets" / "password"))
    assert node.tls_config == TLSConfig(
        ca_file=str(TESTDATA / "tls" / "ca.pem"),
        cert_file=str(TESTDATA / "tls" / "client.pem"),
        key_file=str(TESTDATA / "tls" / "client-key.pem"),
        server_name="node.internal",
        min_version="TLS12",
        max_version="TLS13",
    )
    assert node.static_configs == [
        StaticConfig(["10.0.0.1:9100", "10.0.0.2:9100"], {"env": "prod", "rack": "7"}),
        StaticConfig(["10.0.0.3"], {}),
    ]
    # File discovery paths stay as written: discovery joins them to Config.directory.
    assert node.file_sd_configs == [FileSDConfig(["targets/*.json", "targets/static.yml"], 60_000)]
    assert full.directory == str(TESTDATA)
    assert node.http_sd_configs == [
        HTTPSDConfig(
            "http://sd.internal:8080/targets",
            30_000,
            authorization=Authorization("Token", "abc"),
            tls_config=TLSConfig(insecure_skip_verify=True),
        )
    ]
    actions = [rc.action for rc in node.relabel_configs]
    assert actions == [
        "replace",
        "hashmod",
        "keep",
        "drop",
        "labelmap",
        "labeldrop",
        "labelkeep",
        "lowercase",
        "uppercase",
        "keepequal",
        "dropequal",
    ]
    assert node.relabel_configs[0] == RelabelConfig(
        ["__address__"], regex="([^:]+):\\d+", target_label="host", replacement="${1}"
    )
    assert node.metric_relabel_configs[1].separator == ":"
    blackbox = full.scrape_configs[1]
    assert blackbox.authorization == Authorization("Bearer", "s3cr3t")
    assert blackbox.scrape_timeout_ms == 5_000


def test_full_alerting_and_remote_write_kept_with_defaults(full: Config) -> None:
    assert full.alerting is not None
    [am] = full.alerting["alertmanagers"]
    assert (am["scheme"], am["path_prefix"], am["timeout"], am["api_version"]) == ("http", "/am", "5s", "v2")
    assert am["basic_auth"].password == "s3cret"
    assert am["static_configs"] == [StaticConfig(["alertmanager:9093"], {})]
    assert [rc.action for rc in full.alerting["alert_relabel_configs"]] == ["labeldrop"]
    [rw] = full.remote_write
    assert rw["url"] == "https://metrics.example.com/api/v1/write"
    assert (rw["name"], rw["remote_timeout"], rw["headers"]) == ("primary", "10s", {"X-Scope-OrgID": "team-a"})
    assert rw["authorization"] == Authorization("Bearer", "tok3n", str(TESTDATA / "secrets" / "token"))
    assert rw["queue_config"] == {
        "capacity": 5000,
        "max_shards": 10,
        "min_shards": 1,
        "max_samples_per_send": 500,
        "batch_send_deadline": "5s",
        "min_backoff": "100ms",
        "max_backoff": "5s",
        "retry_on_http_429": True,
    }
    assert rw["metadata_config"] == {"send": False, "send_interval": "1m", "max_samples_per_send": 500}


def test_alertmanager_null_api_version_is_the_default() -> None:
    cfg = parse_config("alerting: {alertmanagers: [{api_version: ~}]}")
    assert cfg.alerting is not None
    assert cfg.alerting["alertmanagers"][0]["api_version"] == "v2"


def test_bearer_token_forms() -> None:
    cfg = load_config(str(TESTDATA / "bearer-token.good.yml"))
    auths = {sc.job_name: (sc.authorization, sc.basic_auth) for sc in cfg.scrape_configs}
    token_file = str(TESTDATA / "secrets" / "token")
    assert auths == {
        "inline": (Authorization("Bearer", "abc"), None),
        "from-file": (Authorization("Bearer", "tok3n", token_file), None),
        "authorization": (Authorization("Bearer", "tok3n", token_file), None),
        "empty-authorization": (Authorization("Bearer", ""), None),
        "empty-basic-auth": (None, BasicAuth("", "")),
    }


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "formatted"),
    [
        (
            "scrape_configs:\n  - job_name: a\n    scrape_interval: fast\n",
            'prometheus.yml:3:22: scrape_configs[0].scrape_interval: not a valid duration string: "fast"',
        ),
        (
            "scrape_configs:\n  - job_name: a\n    consul_sd_configs: []\n",
            "prometheus.yml:3:5: scrape_configs[0].consul_sd_configs: consul_sd_configs is not "
            "supported by VigilOps (supported service discovery: static_configs, file_sd_configs, "
            "http_sd_configs)",
        ),
        ("global:\n  foo: 1\n", "prometheus.yml:2:3: global.foo: unknown field 'foo' in global"),
        ("a: [\n", "prometheus.yml:2:1: yaml: expected the node content, but found '<stream end>'"),
        ("a: 1\n---\nb: 2\n", "prometheus.yml:2:1: yaml: but found another document"),
    ],
)
def test_error_format(text: str, formatted: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "prometheus.yml")
    assert str(info.value) == formatted


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="nope.yml: cannot read file: No such file"):
        load_config(str(TESTDATA / "nope.yml"))


@pytest.mark.parametrize(
    ("snippet", "key", "message"),
    [
        ("basic_auth: {username: u, password_file: secrets/missing}", "basic_auth.password_file", "unable to read file"),
        ("authorization: {credentials_file: secrets/missing}", "authorization.credentials_file", "unable to read file"),
        ("tls_config: {ca_file: tls/missing.pem}", "tls_config.ca_file", "unable to read ca_file"),
        ("tls_config: {min_version: ''}", "tls_config.min_version", "unknown TLS version: "),
        ("sample_limit: 1.5", "sample_limit", "expected a non-negative integer, got '1.5'"),
        ("http_sd_configs: [{url: 'http://x', refresh_interval: 0s}]", "http_sd_configs[0].refresh_interval", "not supported"),
        ("scheme: ''", "scheme", 'scheme "" is not supported'),
        ("http_headers: {}", "http_headers", "http_headers is not supported"),
        ("tls_config: {ca: x}", "tls_config.ca", "ca is not supported by VigilOps (use ca_file"),
        ("basic_auth: {username_file: x}", "basic_auth.username_file", "username_file is not supported"),
        ("enable_compression: true", "enable_compression", "enable_compression is not supported"),
        ("kubernetes_sd_configs: []", "kubernetes_sd_configs", "kubernetes_sd_configs is not supported"),
    ],
)
def test_job_level_errors(tmp_path: Path, snippet: str, key: str, message: str) -> None:
    # The secrets and TLS fixtures are found relative to the configuration file.
    path = TESTDATA / "x.yml"
    text = f"scrape_configs:\n  - job_name: a\n    {snippet}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, str(path))
    assert info.value.key == f"scrape_configs[0].{key}"
    assert message in info.value.message
    assert info.value.line == 3


def test_duplicate_job_error_points_at_second_job() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("scrape_configs:\n- job_name: a\n- job_name: b\n- job_name: a\n")
    assert (info.value.line, info.value.column, info.value.key) == (4, 13, "scrape_configs[2].job_name")


# --- relabel rules ---------------------------------------------------------------------------


def test_relabel_defaults() -> None:
    rc = parse_config("scrape_configs: [{job_name: a, relabel_configs: [{target_label: x}]}]").scrape_configs[
        0
    ].relabel_configs[0]
    assert rc == RelabelConfig([], ";", "x", "(.*)", 0, "$1", "replace")
    assert rc.compiled.match("anything") is not None


@pytest.mark.parametrize(
    ("regex", "value", "matches"),
    [
        ("foo", "foo", True),
        ("foo", "xfoo", False),
        ("foo", "foox", False),
        ("a|ab", "ab", True),
        ("(?i)foo", "FOO", True),
        (".*", "a\nb", False),
        ("[[:digit:]]+", "123", True),
        ("\\d", "٣", False),
        ("", "", True),
        ("", "x", False),
    ],
)
def test_relabel_regex_is_fully_anchored_re2(regex: str, value: str, matches: bool) -> None:
    pattern = RelabelConfig(regex=regex).compiled
    assert (pattern.match(value) is not None) == matches
    assert pattern.matches(value) == matches


@pytest.mark.parametrize(
    ("regex", "ok"),
    [
        ("a{1000}", True),
        ("a{1001}", False),
        ("a{2,1001}", False),
        ("a{1001,}", False),
        ("a\\{1001}", True),
        ("[{]1001}", True),
        ("\\Qa{1001}\\E", True),
    ],
)
def test_relabel_regex_repeat_counts_limited_like_re2(regex: str, ok: bool) -> None:
    if ok:
        RelabelConfig(regex=regex)
    else:
        with pytest.raises(ValueError, match="invalid repeat count"):
            RelabelConfig(regex=regex)


def test_relabel_null_regex_is_the_empty_regex() -> None:
    text = "scrape_configs: [{job_name: a, relabel_configs: [{regex: null, target_label: x}]}]"
    rc = parse_config(text).scrape_configs[0].relabel_configs[0]
    assert rc.regex == "" and rc.compiled.match("") is not None and rc.compiled.match("a") is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action": "replace"}, "relabel configuration for replace action requires 'target_label' value"),
        ({"action": "hashmod", "target_label": "x"}, "requires non-zero modulus"),
        ({"action": "labelmap", "replacement": "a-b"}, "is invalid 'replacement' for labelmap action"),
        ({"action": "labeldrop", "source_labels": ["a"]}, "labeldrop action requires only 'regex'"),
        ({"action": "keepequal", "target_label": "x", "regex": "a"}, "keepequal action requires only"),
        ({"action": "uppercase", "target_label": "x", "replacement": "y"}, "'replacement' can not be set"),
        ({"action": "nope", "target_label": "x"}, 'unknown relabel action "nope"'),
    ],
)
def test_programmatic_relabel_validation(kwargs: dict[str, object], message: str) -> None:
    rc = RelabelConfig(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message.replace("(", "\\(").replace(")", "\\)")):
        rc.validate()


def test_programmatic_relabel_action_is_case_insensitive() -> None:
    rc = RelabelConfig(action="LabelDrop", regex="a")
    rc.validate()
    assert rc.action == "labeldrop"


# --- durations and sizes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("0", 0),
        ("0s", 0),
        ("15s", 15_000),
        ("1m30s", 90_000),
        ("90s", 90_000),
        ("1h0m", 3_600_000),
        ("500ms", 500),
        ("1s500ms", 1_500),
        ("1d", 86_400_000),
        ("1w", 604_800_000),
        ("1y", 31_536_000_000),
        ("1y2w3d4h5m6s7ms", 31_536_000_000 + 2 * 604_800_000 + 3 * 86_400_000 + 4 * 3_600_000 + 5 * 60_000 + 6_007),
        ("292y", 292 * 31_536_000_000),
    ],
)
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration string"),
        ("15", 'not a valid duration string: "15"'),
        ("-1s", 'not a valid duration string: "-1s"'),
        ("1.5s", 'not a valid duration string: "1.5s"'),
        ("15S", 'not a valid duration string: "15S"'),
        ("2h3d", 'not a valid duration string: "2h3d"'),
        ("1m1m", 'not a valid duration string: "1m1m"'),
        (" 1s", 'not a valid duration string: " 1s"'),
        ("300y", "duration out of range"),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration_ms(text)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0s"),
        (15_000, "15s"),
        (90_000, "1m30s"),
        (1_500, "1s500ms"),
        (86_400_000, "1d"),
        (90 * 86_400_000, "90d"),  # weeks only when exact
        (14 * 86_400_000, "2w"),
        (365 * 86_400_000, "1y"),
        (3_600_000 + 1, "1h1ms"),
    ],
)
def test_format_duration(ms: int, text: str) -> None:
    assert format_duration_ms(ms) == text
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("0", 0),
        ("10B", 10),
        ("1KB", 1024),
        ("1KiB", 1024),
        ("10MB", 10 << 20),
        ("10MiB", 10 << 20),
        ("1GB", 1 << 30),
        ("1.5MB", 1_572_864),
        ("2KB1B", 2049),
        ("1TB", 1 << 40),
        ("1EB", 1 << 60),
        ("+1KB", 1024),
        ("-1KB", -1024),
        (".5KB", 512),
    ],
)
def test_parse_bytes(text: str, n: int) -> None:
    assert parse_bytes(text) == n


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1024", "unknown unit  in 1024"),
        ("10mb", "unknown unit mb in 10mb"),
        ("10M", "unknown unit M in 10M"),
        ("10kB", "unknown unit kB in 10kB"),
        ("10 MB", "unknown unit  MB in 10 MB"),
        ("MB", "units: invalid MB"),
        ("", "units: invalid "),
        ("16EB", "overflow"),
    ],
)
def test_parse_bytes_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_bytes(text)


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0B"), (10, "10B"), (1024, "1KiB"), (1536, "1KiB512B"), (10 << 20, "10MiB"), (1 << 60, "1EiB")],
)
def test_format_bytes(n: int, text: str) -> None:
    assert format_bytes(n) == text
    assert parse_bytes(text) == n


# --- the effective configuration as YAML -----------------------------------------------------


def test_config_to_yaml_fills_defaults_and_hides_secrets(full: Config) -> None:
    text = config_to_yaml(full)
    assert "s3cret" not in text and "s3cr3t" not in text and "tok3n" not in text and "abc" not in text
    doc = yaml.safe_load(text)
    assert doc["global"] == {
        "scrape_interval": "15s",
        "scrape_timeout": "5s",
        "evaluation_interval": "30s",
        "external_labels": {"cluster": "eu-1", "replica": "a"},
    }
    node, blackbox = doc["scrape_configs"]
    assert node["basic_auth"] == {"username": "scraper", "password_file": str(TESTDATA / "secrets" / "password")}
    assert node["body_size_limit"] == "10MiB"
    assert node["http_sd_configs"][0]["authorization"] == {"type": "Token", "credentials": "<secret>"}
    assert blackbox["authorization"] == {"type": "Bearer", "credentials": "<secret>"}
    assert blackbox["scrape_timeout"] == "5s" and blackbox["metrics_path"] == "/metrics"
    assert node["relabel_configs"][0] == {
        "source_labels": ["__address__"],
        "separator": ";",
        "regex": "([^:]+):\\d+",
        "target_label": "host",
        "replacement": "${1}",
        "action": "replace",
    }
    assert doc["remote_write"][0]["queue_config"]["capacity"] == 5000
    assert doc["rule_files"] == [str(TESTDATA / "rules" / "*.rules.yml")]


@pytest.mark.parametrize("path", fixtures("good"), ids=lambda p: p.name)
def test_config_to_yaml_reloads_to_the_same_config(path: Path) -> None:
    cfg = load_config(str(path))
    text = config_to_yaml(cfg)
    # The printed form names secret files by their resolved paths, and secrets as <secret>.
    again = parse_config(text, str(path))
    assert config_to_yaml(again) == text
    assert [sc.job_name for sc in again.scrape_configs] == [sc.job_name for sc in cfg.scrape_configs]
    for ours, theirs in zip(cfg.scrape_configs, again.scrape_configs):
        assert ours.relabel_configs == theirs.relabel_configs
        assert ours.static_configs == theirs.static_configs
        assert (ours.scrape_interval_ms, ours.scrape_timeout_ms) == (
            theirs.scrape_interval_ms,
            theirs.scrape_timeout_ms,
        )


@pytest.mark.parametrize("value", ["y", "N", "yes", "1", "", "a: b", "- x", "*x", "#x", "a\nb", "\t", "ü", "${1}", "'"])
def test_config_to_yaml_quotes_strings_go_yaml_would_misread(value: str) -> None:
    cfg = Config(global_config=GlobalConfig(external_labels={"v": value}))
    doc = yaml.safe_load(config_to_yaml(cfg))
    assert doc["global"]["external_labels"]["v"] == value
    if value in ("y", "N"):
        assert f'v: "{value}"' in config_to_yaml(cfg)


# --- side by side with Prometheus's /api/v1/status/config ------------------------------------

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

STATUS_CONFIG = """
global:
  scrape_interval: 15s
  external_labels: {dc: x, replica: "1"}
rule_files: ['{testdata}/rules/*.rules.yml']
alerting:
  alert_relabel_configs: [{action: labeldrop, regex: replica}]
  alertmanagers:
    - static_configs: [{targets: ['127.0.0.1:1']}]
      path_prefix: /am
      timeout: 5s
      basic_auth: {username: u, password: p}
      relabel_configs: [{source_labels: [__address__], target_label: instance}]
remote_write:
  - url: http://127.0.0.1:1/write
    name: rw
    headers: {X-A: b}
    authorization: {credentials: x}
    write_relabel_configs: [{source_labels: [__name__], regex: 'go_.*', action: drop}]
    queue_config: {capacity: 100, retry_on_http_429: true}
    metadata_config: {send: false}
scrape_configs:
  - job_name: a
    honor_labels: true
    honor_timestamps: false
    params: {m: [x, y], a: [b]}
    scrape_interval: 1m30s
    scrape_timeout: 20s
    metrics_path: /probe
    body_size_limit: 1.5MB
    sample_limit: 5
    target_limit: 6
    label_limit: 7
    label_name_length_limit: 8
    label_value_length_limit: 9
    follow_redirects: false
    basic_auth: {username: u, password_file: '{testdata}/secrets/password'}
    tls_config: {insecure_skip_verify: true, min_version: TLS12, server_name: s}
    static_configs:
      - targets: ['127.0.0.1:1', '127.0.0.1:2']
        labels: {x: "y", n: "1"}
      - targets: ['127.0.0.1:3']
    file_sd_configs: [{files: ['{testdata}/targets/*.json'], refresh_interval: 1m}]
    http_sd_configs: [{url: 'http://127.0.0.1:1/sd', bearer_token: t, refresh_interval: 2m}]
    relabel_configs:
      - {source_labels: [x, n], separator: '-', regex: '(.*)-(.*)', target_label: '${2}_x', replacement: '$1'}
      - {source_labels: [x], modulus: 8, target_label: h, action: hashmod}
      - {source_labels: [x], regex: 'y|z', action: keep}
      - {source_labels: [x], regex: 'q', action: drop}
      - {regex: '__meta_(.*)', action: labelmap}
      - {regex: 'tmp_.*', action: labeldrop}
      - {regex: '.+', action: labelkeep}
      - {source_labels: [x], target_label: up, action: uppercase}
      - {source_labels: [x], target_label: low, action: lowercase}
    metric_relabel_configs:
      - {source_labels: [__name__], regex: 'x_.*', action: drop}
  - job_name: b
    scheme: https
    bearer_token_file: '{testdata}/secrets/token'
  - job_name: c
    authorization: {type: Token, credentials_file: '{testdata}/secrets/token'}
"""


_TLS_VERSIONS = {769: "TLS10", 770: "TLS11", 771: "TLS12", 772: "TLS13"}


def _ordered(value: object) -> object:
    """A YAML document as nested lists, so that key order counts in comparisons.

    Two quirks of Prometheus 2.42's printing are normalised to what we print: TLS versions
    as numbers (``771``, which it cannot read back) and an http_sd `bearer_token` left
    unconverted (it is converted to `authorization` everywhere else).
    """
    if isinstance(value, dict):
        out: list[tuple[str, object]] = []
        for k, v in value.items():
            if k in ("min_version", "max_version") and isinstance(v, int):
                v = _TLS_VERSIONS[v]
            if k == "bearer_token":
                k, v = "authorization", {"type": "Bearer", "credentials": v}
            out.append((k, _ordered(v)))
        return out
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


@pytest.mark.peer
@pytest.mark.slow
def test_config_to_yaml_matches_prometheus_status_config(tmp_path: Path) -> None:
    if not os.access(PROMETHEUS, os.X_OK):
        pytest.skip("Debian's prometheus is not installed")
    import json
    import socket
    import time
    from peerprocs import get

    path = tmp_path / "prometheus.yml"
    path.write_text(STATUS_CONFIG.replace("{testdata}", str(TESTDATA)))
    ours = config_to_yaml(load_config(str(path)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with (tmp_path / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={path}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
            try:
                url = f"http://127.0.0.1:{port}/api/v1/status/config"
                theirs = json.loads(get(url))["data"]["yaml"]
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(30)
    assert _ordered(yaml.safe_load(ours)) == _ordered(yaml.safe_load(theirs))

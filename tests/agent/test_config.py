"""agent.yaml validation and the `vigilops agent` command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigilops.agent.config import (AgentConfig, ConfigError, ProbeConfig, TopProcessesConfig,
                                   parse_config)
from vigilops.cli import main


def test_defaults() -> None:
    config = parse_config("")
    assert config.listen_address == ":9100"
    assert config.collector_timeout == 5.0
    assert config.textfile_directory is None


def test_full_config() -> None:
    config = parse_config(
        "listen_address: 127.0.0.1:9200\nhostname: web-1\ntags: {env: prod, rack: 3}\n"
        "collector_timeout: 500ms\ncollectors: {hwmon: false}\ntextfile_directory: /tmp/tf\n")
    assert config == AgentConfig("127.0.0.1:9200", "web-1", {"env": "prod", "rack": "3"}, 0.5,
                                 {"hwmon": False}, "/tmp/tf")


@pytest.mark.parametrize(("text", "key"), [
    ("listen: :9100\n", "listen:"),
    ("collectors: {hwm0n: true}\n", "collectors.hwm0n:"),
    ("collectors: {cpu: maybe}\n", "collectors.cpu:"),
    ("collector_timeout: soon\n", "collector_timeout:"),
    ("collector_timeout: 0s\n", "collector_timeout:"),
    ("tags: {bad-name: x}\n", "tags.bad-name:"),
    ("tags: {version: x}\n", "tags.version:"),
    ("listen_address: nowhere\n", "listen_address:"),
    ("tags: [a, b]\n", "tags:"),
    ("- just a list\n", "agent.yaml:"),
])
def test_invalid_config_names_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert str(err.value).startswith(key)


def test_cli_rejects_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("scrape_intervall: 15s\n")
    assert main(["agent", "--config", str(path)]) == 2
    assert "scrape_intervall: unknown key" in capsys.readouterr().err


def test_cli_rejects_bad_listen_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["agent", "--web.listen-address", "9100"]) == 2
    assert "listen_address" in capsys.readouterr().err


EXAMPLE = Path(__file__).resolve().parents[2] / "agent" / "agent.example.yaml"


def test_example_config_loads() -> None:
    config = parse_config(EXAMPLE.read_text())
    assert config.listen_address == ":9100"
    assert {p.name: p.type for p in config.probes} == {
        "website": "http", "internal-api": "http", "postgres": "tcp"}
    website = config.probes[0]
    assert (website.interval, website.timeout, website.valid_status_codes) == (30.0, 10.0, (200,))
    assert website.body_regex == "Example Domain" and website.follow_redirects
    assert config.probes[1].insecure_skip_verify
    assert config.top_processes == TopProcessesConfig(enabled=False, count=10, by="cpu")


def test_probe_defaults() -> None:
    config = parse_config("probes:\n  - {name: web, type: http, target: 'http://127.0.0.1/'}\n"
                          "  - {name: db, type: tcp, target: '[::1]:5432'}\n")
    assert config.probes == (ProbeConfig("web", "http", "http://127.0.0.1/"),
                             ProbeConfig("db", "tcp", "[::1]:5432"))
    web = config.probes[0]
    assert (web.interval, web.timeout, web.method, web.valid_status_codes) == (15.0, 5.0, "GET", ())
    assert web.follow_redirects and not web.insecure_skip_verify and web.body_regex is None
    short = parse_config("probes: [{name: w, type: tcp, target: 'a:1', interval: 2s}]\n")
    assert short.probes[0].timeout == 2.0


@pytest.mark.parametrize(("text", "key"), [
    ("probes: {name: web}\n", "probes:"),
    ("probes: [{name: web, type: icmp, target: x}]\n", "probes[0].type:"),
    ("probes: [{name: web, type: http}]\n", "probes[0].target:"),
    ("probes: [{type: tcp, target: 'a:1'}]\n", "probes[0].name:"),
    ("probes: [{name: w, type: http, target: 'http://a/', timout: 1s}]\n", "probes[0].timout:"),
    ("probes: [{name: w, type: tcp, target: 'a:1', body_regex: x}]\n", "probes[0].body_regex:"),
    ("probes: [{name: w, type: http, target: 'ftp://a/'}]\n", "probes[0].target:"),
    ("probes: [{name: w, type: tcp, target: 'a'}]\n", "probes[0].target:"),
    ("probes: [{name: w, type: tcp, target: 'a:1', interval: 5s, timeout: 10s}]\n",
     "probes[0].timeout:"),
    ("probes: [{name: w, type: http, target: 'http://a/', valid_status_codes: [2xx]}]\n",
     "probes[0].valid_status_codes:"),
    ("probes: [{name: w, type: http, target: 'http://a/', body_regex: '('}]\n",
     "probes[0].body_regex:"),
    ("probes: [{name: w, type: http, target: 'http://a/', method: POST}]\n", "probes[0].method:"),
    ("probes: [{name: w, type: http, target: 'http://a/', follow_redirects: 1}]\n",
     "probes[0].follow_redirects:"),
    ("probes: [{name: w, type: tcp, target: 'a:1'}, {name: w, type: tcp, target: 'b:1'}]\n",
     "probes[1].name:"),
])
def test_invalid_probe_names_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert str(err.value).startswith(key)

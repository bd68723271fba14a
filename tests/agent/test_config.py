"""agent.yaml validation and the `vigilops agent` command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigilops.agent.config import AgentConfig, ConfigError, parse_config
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

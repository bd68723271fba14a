"""`vigilops agent-token create|list|revoke` and the token store behind it."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from vigilops.agents import TokenStore
from vigilops.cli import main


def create(data: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert main(["agent-token", "create", "--data-dir", str(data), *extra]) == 0
    return capsys.readouterr().out.strip()


def test_create_prints_the_token_once_and_stores_only_a_salted_hash(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = create(tmp_path, capsys, "--name", "web")
    assert token.startswith("vgo_") and len(token) > 40
    path = tmp_path / "agents" / "tokens.json"
    text = path.read_text()
    assert token not in text and token[4:] not in text
    (entry,) = json.loads(text)["tokens"]
    assert entry["name"] == "web" and len(entry["salt"]) == 32 and len(entry["hash"]) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(path.parent.glob("*.tmp"))
    assert TokenStore(str(tmp_path)).verify(token) == "web"


def test_same_secret_different_salts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = create(tmp_path, capsys), create(tmp_path, capsys)
    assert a != b
    entries = TokenStore(str(tmp_path)).entries()
    assert [e.name for e in entries] == ["token-1", "token-2"]
    assert entries[0].salt != entries[1].salt


@pytest.mark.parametrize("wrong", ["", "vgo_", "vgo_nope", "x" * 1000])
def test_wrong_tokens_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  wrong: str) -> None:
    token = create(tmp_path, capsys)
    store = TokenStore(str(tmp_path))
    assert store.verify(wrong) is None
    assert store.verify(token[:-1]) is None
    assert store.verify(token + " ") is None


def test_no_token_file_refuses_everything(tmp_path: Path) -> None:
    assert TokenStore(str(tmp_path)).verify("vgo_anything") is None


def test_list_and_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = TokenStore(str(tmp_path))  # a server's long-lived store sees every change
    web = create(tmp_path, capsys, "--name", "web")
    db = create(tmp_path, capsys, "--name", "db")
    assert store.verify(web) == "web" and store.verify(db) == "db"
    assert main(["agent-token", "list", "--data-dir", str(tmp_path)]) == 0
    names = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert names == ["web", "db"]
    assert main(["agent-token", "revoke", "--data-dir", str(tmp_path), "web"]) == 0
    assert store.verify(web) is None and store.verify(db) == "db"
    assert main(["agent-token", "revoke", "--data-dir", str(tmp_path), "web"]) == 1
    assert "no token named 'web'" in capsys.readouterr().err


def test_duplicate_and_invalid_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    create(tmp_path, capsys, "--name", "web")
    assert main(["agent-token", "create", "--data-dir", str(tmp_path), "--name", "web"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["agent-token", "create", "--data-dir", str(tmp_path), "--name", "a b"]) == 2
    assert "invalid name" in capsys.readouterr().err


def test_corrupt_token_file_is_reported_and_refuses_everything(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "tokens.json").write_text("{")
    assert main(["agent-token", "list", "--data-dir", str(tmp_path)]) == 1
    assert "not a token file" in capsys.readouterr().err
    assert TokenStore(str(tmp_path)).verify("vgo_x") is None


def test_command_line(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "vigilops.cli", "agent-token", "create", "--storage.tsdb.path",
         str(tmp_path), "--name", "cli"], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.count("\n") == 1  # only the token on stdout, for `$(…)`
    assert "not shown again" in out.stderr
    assert TokenStore(str(tmp_path)).verify(out.stdout.strip()) == "cli"

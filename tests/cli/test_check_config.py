"""`vigilops check config FILE…` reports like `promtool check config` and exits 0 or 1."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from vigilops.cli import main

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

RULES = """groups:
  - name: g
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
"""


@dataclass
class Case:
    id: str
    config: str
    status: int
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    rule_files: dict[str, str] = field(default_factory=dict)


CASES = [
    Case(
        "valid-no-rules",
        "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n",
        0,
        stdout=[
            "Checking {cfg}",
            "  SUCCESS: 0 rule files found",
            " SUCCESS: {cfg} is valid prometheus config file syntax",
            "",
        ],
    ),
    Case(
        "rule-files-counted",
        "rule_files: ['rules/*.yml', 'other.yml', 'none-*.yml']\n",
        0,
        stdout=["Checking {cfg}", "  SUCCESS: 3 rule files found", " SUCCESS: {cfg} is valid prometheus config file syntax", ""],
        rule_files={"rules/a.yml": RULES, "rules/b.yml": RULES, "other.yml": RULES},
    ),
    Case(
        "rule-file-missing",
        "rule_files: ['rules/*.yml', 'missing.yml']\n",
        1,
        stdout=["Checking {cfg}", ""],
        stderr=['  FAILED: {cfg}: rule_files[1]: "{dir}/missing.yml" does not point to an existing file'],
        rule_files={"rules/a.yml": RULES},
    ),
    Case(
        "bad-duration",
        "scrape_configs:\n  - job_name: a\n    scrape_interval: fast\n",
        1,
        stdout=["Checking {cfg}", ""],
        stderr=['  FAILED: {cfg}:3:22: scrape_configs[0].scrape_interval: not a valid duration string: "fast"'],
    ),
    Case(
        "unknown-key",
        "global:\n  scrape_interval: 1m\n  foo: bar\n",
        1,
        stderr=["  FAILED: {cfg}:3:3: global.foo: unknown field 'foo' in global"],
    ),
    Case(
        "relabel-error",
        "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - {action: hashmod, target_label: x}\n",
        1,
        stderr=[
            "  FAILED: {cfg}:4:9: scrape_configs[0].relabel_configs[0]: relabel configuration for "
            "hashmod requires non-zero modulus"
        ],
    ),
    Case(
        "unsupported",
        "scrape_configs:\n  - job_name: a\n    dns_sd_configs: [{names: [x]}]\n",
        1,
        stderr=[
            "  FAILED: {cfg}:3:5: scrape_configs[0].dns_sd_configs: dns_sd_configs is not supported "
            "by VigilOps (supported service discovery: static_configs, file_sd_configs, http_sd_configs)"
        ],
    ),
    Case("empty", "", 0, stdout=["Checking {cfg}", "  SUCCESS: 0 rule files found"]),
]


def write_case(tmp_path: Path, case: Case) -> Path:
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(case.config)
    for name, text in case.rule_files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return cfg


def fill(lines: list[str], cfg: Path) -> list[str]:
    return [line.replace("{cfg}", str(cfg)).replace("{dir}", str(cfg.parent)) for line in lines]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_check_config(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_case(tmp_path, case)
    assert main(["check", "config", str(cfg)]) == case.status
    out, err = capsys.readouterr()
    if case.stdout:
        assert out.splitlines()[: len(case.stdout)] == fill(case.stdout, cfg)
    assert err.splitlines() == fill(case.stderr, cfg)


def test_several_files_checked_in_order_and_any_failure_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yml"
    good.write_text("scrape_configs: [{job_name: a}]\n")
    bad = tmp_path / "bad.yml"
    bad.write_text("scrape_configs: [{job_name: a}, {job_name: a}]\n")
    missing = tmp_path / "missing.yml"
    assert main(["check", "config", str(good), str(bad), str(missing), str(good)]) == 1
    out, err = capsys.readouterr()
    checking = [line for line in out.splitlines() if line.startswith("Checking")]
    assert checking == [f"Checking {p}" for p in (good, bad, missing, good)]
    assert out.count("is valid prometheus config file syntax") == 2
    assert err.splitlines() == [
        f'  FAILED: {bad}:1:44: scrape_configs[1].job_name: found multiple scrape configs with job name "a"',
        f"  FAILED: {missing}: cannot read file: No such file or directory",
    ]


def test_syntax_only_skips_rule_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("rule_files: [missing.yml]\n")
    assert main(["check", "config", "--syntax-only", str(cfg)]) == 0
    out, _ = capsys.readouterr()
    assert out == f"Checking {cfg}\n SUCCESS: {cfg} is valid prometheus config file syntax\n\n"


def test_check_needs_a_file() -> None:
    with pytest.raises(SystemExit) as info:
        main(["check", "config"])
    assert info.value.code == 2


def test_runs_as_a_command(tmp_path: Path) -> None:
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("scrape_configs: [{job_name: a, scrape_interval: 1x}]\n")
    proc = subprocess.run(
        [sys.executable, "-m", "vigilops.cli", "check", "config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stdout == f"Checking {cfg}\n\n"
    assert 'not a valid duration string: "1x"' in proc.stderr


@pytest.mark.peer
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_same_verdict_and_rule_count_as_promtool(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not os.access(PROMTOOL, os.X_OK):
        pytest.skip("Debian's promtool is not installed")
    cfg = write_case(tmp_path, case)
    theirs = subprocess.run(
        [PROMTOOL, "check", "config", str(cfg)], capture_output=True, text=True, timeout=60
    )
    ours = main(["check", "config", str(cfg)])
    out, _ = capsys.readouterr()
    # promtool says "unsupported" configurations are fine; we refuse them.
    expected = 1 if case.id == "unsupported" else (0 if theirs.returncode == 0 else 1)
    assert ours == expected, theirs.stdout + theirs.stderr
    their_count = re.search(r"SUCCESS: (\d+) rule files found", theirs.stdout)
    our_count = re.search(r"SUCCESS: (\d+) rule files found", out)
    if ours == 0 and their_count:
        assert our_count is not None and our_count.group(1) == their_count.group(1)

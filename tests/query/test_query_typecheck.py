"""mypy --strict over the PromQL front end (ast, functions, parser, printer).

Laid out as installed (symlinks), like tests/test_typecheck.py, which covers the packages
listed there; this one covers only the modules of query/ that are already held to strict.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = ("ast", "functions", "parser", "printer")


@pytest.mark.slow
def test_mypy_strict_query_front_end(tmp_path: Path) -> None:
    pkg = tmp_path / "vigilops"
    pkg.mkdir()
    for f in (ROOT / "vigilops").glob("*.py"):
        (pkg / f.name).symlink_to(f)
    (pkg / "tsdb").symlink_to(ROOT / "tsdb")
    (pkg / "query").symlink_to(ROOT / "query")
    args = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
            "--strict", "--follow-imports=silent", "--cache-dir", str(tmp_path / ".mypy_cache")]
    args += [str(pkg / "query" / f"{m}.py") for m in MODULES]
    env = {**os.environ, "MYPYPATH": str(tmp_path)}
    out = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr

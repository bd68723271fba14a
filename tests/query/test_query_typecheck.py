"""mypy --strict over the whole of query/: front end, engine, functions and API handlers.

Laid out as installed (symlinks), like tests/test_typecheck.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_mypy_strict_query_package(tmp_path: Path) -> None:
    pkg = tmp_path / "vigilops"
    pkg.mkdir()
    for f in (ROOT / "vigilops").glob("*.py"):
        (pkg / f.name).symlink_to(f)
    (pkg / "tsdb").symlink_to(ROOT / "tsdb")
    for sub in ("query", "scrape", "compat"):
        (pkg / sub).symlink_to(ROOT / sub)
    args = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
            "--strict", "--follow-imports=silent", "--cache-dir", str(tmp_path / ".mypy_cache")]
    args += ["-p", "vigilops.query"]
    env = {**os.environ, "MYPYPATH": str(tmp_path)}
    out = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr

"""mypy over the packages held to strict typing (see [tool.mypy] in pyproject.toml).

The editable install maps `vigilops.<folder>` with an import hook mypy cannot follow, so
the test lays out the package the way it is installed, as symlinks, and checks that.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STRICT_PACKAGES = ("tsdb", "scrape")


@pytest.mark.slow
def test_mypy_strict_packages_are_clean(tmp_path: Path) -> None:
    pkg = tmp_path / "vigilops"
    pkg.mkdir()
    for f in (ROOT / "vigilops").glob("*.py"):
        (pkg / f.name).symlink_to(f)
    for folder in STRICT_PACKAGES:
        (pkg / folder).symlink_to(ROOT / folder)
    args = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
            "--cache-dir", str(tmp_path / ".mypy_cache")]
    for folder in STRICT_PACKAGES:
        args += ["-p", f"vigilops.{folder}"]
    env = {**os.environ, "MYPYPATH": str(tmp_path)}
    out = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr

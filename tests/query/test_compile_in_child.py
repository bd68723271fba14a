"""A server compiles its loops in a child process: its own process only loads them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_PROBE = """
import json
import vigilops.query.api.points_json, vigilops.query.window_kernels, vigilops.query.aggregation
import vigilops.tsdb.columns, vigilops.tsdb.chunks.frame_integrate
from vigilops.tsdb import compiled
n = compiled.warm_up_in_child()
kernels = {k for k, _ in compiled._registered}
print(json.dumps({
    "loops": n,
    "loaded": sum(sum(k.stats.cache_hits.values()) for k in kernels),
    "compiled_here": sum(sum(k.stats.cache_misses.values()) for k in kernels),
    "variants": sum(len(k.signatures) for k in kernels),
}))
"""


def test_loops_compile_in_a_child_and_load_here(tmp_path: Path) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}  # nothing cached yet
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True,
                         timeout=900, check=True)
    got = json.loads(out.stdout)
    assert got["loops"] >= 10
    assert any((tmp_path / "cache").rglob("*.nbi"))  # the child filled the cache
    # Every variant this process runs came from the cache the child wrote.
    assert got["compiled_here"] == 0 and got["loaded"] == got["variants"], got

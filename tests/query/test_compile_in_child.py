"""A server compiles its loops in a child process: its own process only loads them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_PROBE = """
import json, resource, time
import vigilops.query.api.points_json, vigilops.query.window_kernels, vigilops.query.aggregation
import vigilops.tsdb.columns, vigilops.tsdb.chunks.frame_integrate
from vigilops.tsdb import compiled
t0 = time.process_time()
n = compiled.warm_up_in_child()
own = time.process_time() - t0
child = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"loops": n, "own": own, "child": child.ru_utime + child.ru_stime}))
"""


def test_loops_compile_in_a_child_and_load_here(tmp_path: Path) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}  # nothing cached yet
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True,
                         timeout=900, check=True)
    got = json.loads(out.stdout)
    assert got["loops"] >= 10
    assert any((tmp_path / "cache").rglob("*.nbi"))  # the child filled the cache
    # Compiling is the child's CPU time; loading the cached code is a small part of it.
    assert got["own"] < got["child"] / 3, got

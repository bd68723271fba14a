"""Crash safety: a writer killed with SIGKILL mid-ingest loses no committed sample."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np

from vigilops.tsdb.db import DB

from .conftest import T0, read_all

WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from vigilops.tsdb.db import DB, DBOptions
    from vigilops.tsdb.model import Labels

    path, n_series = sys.argv[1], int(sys.argv[2])
    db = DB.open(path, DBOptions(wal_segment_size=1 << 20))
    labels = [Labels({"__name__": "crash_test", "i": str(i)}) for i in range(n_series)]
    app = db.appender()
    refs = app.refs(labels)
    app.commit()
    k = 0
    while True:
        a = db.appender()
        a.append(refs, {t0} + k * 15_000, np.arange(n_series, dtype=np.float64) + k)
        a.commit()
        print(k, flush=True)  # batch k is committed
        k += 1
        if k % 500 == 0:
            db.maintain()  # head cuts, checkpoints and compactions happen during the run
    """
).replace("{t0}", str(T0))


def test_sigkill_during_ingest_loses_no_committed_batch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "data")
    n_series = 500
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, path, str(n_series)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    last = -1
    try:
        for line in proc.stdout:
            last = int(line)
            if last >= 1500:  # > 6 h of 15 s scrapes: blocks and checkpoints exist
                os.kill(proc.pid, signal.SIGKILL)
                break
        # The writer runs ahead of this reader: every line it printed before the signal
        # landed is still in the pipe and names a committed batch.
        for line in proc.stdout:
            if line.strip():
                last = int(line)
    finally:
        proc.kill()
        proc.wait()
        stderr = proc.stderr.read() if proc.stderr else ""
        proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert last >= 1500, f"writer died early: {stderr}"
    with DB.open(path) as db:
        got = read_all(db)
        assert len(got) == n_series
        for ls, (ts, vs) in got.items():
            i = int(ls.get("i"))
            n = len(ts)
            # Every batch up to the last reported commit is there; at most the batch in
            # flight when the signal landed may be there too.
            assert n in (last + 1, last + 2), (ls, n, last)
            assert ts.tolist() == [T0 + k * 15_000 for k in range(n)]
            assert vs.tolist() == (np.arange(n, dtype=np.float64) + i).tolist()
        assert db.block_list(), "the run should have cut blocks"

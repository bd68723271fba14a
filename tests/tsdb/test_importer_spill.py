"""The bounded-memory backfill (`import_openmetrics`: spill per bucket, then write each
block a slice and a batch at a time) against the in-memory reference path
(`collect` + `write_blocks`): the same blocks byte for byte, the same report, the same
errors, and nothing left in the data directory when the input is bad.

Windows, frame slices, frames, batches and parse pieces are made tiny so that a few
hundred samples cross every boundary the large files cross.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigilops.tsdb.block.writer import (
    BlockSlice,
    BlockWriteOptions,
    write_block,
    write_block_slices,
)
from vigilops.tsdb import compiled
from vigilops.tsdb.columns import SampleColumns
from vigilops.tsdb.db import DB
from vigilops.tsdb.errors import InputParseError
from vigilops.tsdb.importer import ImportReport, collect, import_openmetrics, write_blocks
from vigilops.tsdb.model import Labels, Matcher, MatchType
from vigilops.tsdb.openmetrics_parse import parse_openmetrics

from .conftest import bits, read_all

SECOND = 1000

SERIES = [
    'up{job="node"}',
    'up{job="api"}',
    'cpu_seconds_total{cpu="0",mode="idle"}',
    'cpu_seconds_total{cpu="1",mode="idle"}',
    'temp{room="lab \\"1\\"",note="ü"}',
    "zz_last",
    "aa_first",
]

VALUES = [
    "0", "1", "-2.5", "1e300", "NaN", "+Inf", "-Inf", "-0", "0.1", "123456789012345678", "3.25"
]


@dataclass(frozen=True)
class Setup:
    block_ms: int
    options: BlockWriteOptions
    ranges: tuple[int, ...]
    chunk_bytes: int


def setups() -> st.SearchStrategy[Setup]:
    return st.builds(
        lambda block_s, span_s, target, batch, compact, chunk: Setup(
            block_s * SECOND,
            BlockWriteOptions(
                frame_span_ms=span_s * SECOND,
                target_frame_samples=target,
                batch_samples=batch,
                threads=1 + (batch % 2),
            ),
            (block_s * SECOND, 3 * block_s * SECOND, 12 * block_s * SECOND) if compact else (),
            chunk,
        ),
        st.sampled_from([10, 20, 60]),  # windows
        st.sampled_from([20, 25, 60, 3600]),  # frame slices: multiples of windows or not
        st.sampled_from([1, 3, 1 << 16]),
        st.sampled_from([1, 5, 1 << 20]),
        st.booleans(),
        st.sampled_from([40, 300, 1 << 20]),  # parse pieces of a line or two, or everything
    )


def render(lines: list[tuple[int, int, str]]) -> bytes:
    """(series, timestamp in s, value) lines as an OpenMetrics file."""
    out = [f"{SERIES[s]} {v} {t}" for s, t, v in lines]
    return ("\n".join(["# TYPE up gauge", *out, "# EOF"]) + "\n").encode()


@st.composite
def files(draw: st.DrawFn) -> list[tuple[int, int, str]]:
    """Lines of a few series, each a regular run somewhere a few minutes either side of
    0 s, in series-major, time-major or random order; exact duplicates repeated anywhere
    and, now and then, a second value for a series and time."""
    lines: list[tuple[int, int, str]] = []
    some = st.lists(st.integers(0, len(SERIES) - 1), min_size=1, max_size=len(SERIES), unique=True)
    for s in draw(some):
        start = draw(st.integers(-150, 300))
        step = draw(st.sampled_from([1, 2, 7]))
        n = draw(st.integers(1, 80))
        mul, off = draw(st.integers(0, 5)), draw(st.integers(0, len(VALUES) - 1))
        lines += [(s, start + i * step, VALUES[(i * mul + off) % len(VALUES)]) for i in range(n)]
    dups = draw(st.lists(st.integers(0, len(lines) - 1), max_size=10))
    lines += [lines[i] for i in dups]
    for _ in range(draw(st.sampled_from([0, 0, 0, 0, 0, 0, 1, 2]))):
        s, t, v = lines[draw(st.integers(0, len(lines) - 1))]
        lines.append((s, t, "42" if v != "42" else "43"))
    order = draw(st.sampled_from(["series", "time", "random"]))
    if order == "series":
        lines.sort(key=lambda x: (x[0], x[1]))
    elif order == "time":
        lines.sort(key=lambda x: (x[1], x[0]))
    else:
        lines = draw(st.permutations(lines))
    return lines


def blocks_of(data_dir: str) -> list[tuple[object, ...]]:
    """Every block's time range, level, stats and the bytes of its index and chunks."""
    out = []
    for name in os.listdir(data_dir):
        path = os.path.join(data_dir, name)
        with open(os.path.join(path, "meta.json")) as f:
            meta = json.load(f)
        with open(os.path.join(path, "index"), "rb") as f:
            index = f.read()
        with open(os.path.join(path, "chunks"), "rb") as f:
            chunks = f.read()
        out.append((meta["minTime"], meta["maxTime"], meta["compaction"]["level"],
                    meta["stats"], index, chunks))
    return sorted(out, key=lambda b: b[:3])  # type: ignore[arg-type, return-value]


def in_memory(data: bytes, out: str, setup: Setup) -> ImportReport:
    """The reference: every sample in memory (what the importer did before it spilled)."""
    labels, cols, dropped = collect(parse_openmetrics(io.BytesIO(data), setup.chunk_bytes))
    metas = write_blocks(out, labels, cols, setup.block_ms, setup.options, setup.ranges)
    return ImportReport(len(labels), len(cols), dropped, metas)


def streamed(data: bytes, out: str, setup: Setup) -> ImportReport:
    return import_openmetrics(io.BytesIO(data), out, setup.block_ms, setup.options,
                              setup.ranges, chunk_bytes=setup.chunk_bytes)


def outcome(
    fn: Callable[[bytes, str, Setup], ImportReport], data: bytes, out: str, setup: Setup
) -> tuple[object, ...]:
    try:
        r = fn(data, out, setup)
    except InputParseError as exc:
        return ("error", exc.line, exc.message)
    return ("ok", r.series, r.samples, r.duplicates_dropped, len(r.blocks or []))


@given(files(), setups())
def test_streamed_import_writes_the_blocks_of_the_in_memory_path(
    lines: list[tuple[int, int, str]], setup: Setup
) -> None:
    data = render(lines)
    tmp = tempfile.mkdtemp(prefix="vigilops-import-")
    try:
        ours, ref = os.path.join(tmp, "ours"), os.path.join(tmp, "ref")
        got = outcome(streamed, data, ours, setup)
        want = outcome(in_memory, data, ref, setup)
        assert got == want
        if got[0] == "ok":
            assert blocks_of(ours) == blocks_of(ref)
        else:
            assert not os.path.exists(ours)
    finally:
        shutil.rmtree(tmp)


def test_conflicts_are_reported_as_the_in_memory_path_reports_them(tmp_path: Path) -> None:
    # Two conflicts: series "up{job=node}" early in the file, "aa_first" (first in label
    # order) in the last window. Both paths name aa_first, nothing is written.
    lines = [(0, t, "1") for t in range(0, 300, 5)] + [(0, 10, "2")]
    lines += [(6, t, "1") for t in range(0, 300, 5)] + [(6, 295, "7")]
    setup = Setup(
        20 * SECOND, BlockWriteOptions(frame_span_ms=60 * SECOND), (20 * SECOND, 60 * SECOND), 100
    )
    data = render(lines)
    with pytest.raises(InputParseError) as ours:
        streamed(data, str(tmp_path / "ours"), setup)
    with pytest.raises(InputParseError) as ref:
        in_memory(data, str(tmp_path / "ref"), setup)
    assert ours.value.message == ref.value.message
    assert "aa_first" in ours.value.message and "295000 ms" in ours.value.message
    assert not os.path.exists(tmp_path / "ours")


def test_memory_follows_the_bucket_not_the_file(tmp_path: Path) -> None:
    # 400,000 samples of 40 series over 100 windows, time-major. Holding them all (the
    # in-memory path, what the importer did before) peaks at several times their 24 bytes
    # each; the streamed import holds a parse piece and one bucket (4,000 samples).
    lines = [f'm{{s="{s}"}} {t % 97} {t}' for t in range(10_000) for s in range(40)]
    data = ("\n".join([*lines, "# EOF"]) + "\n").encode()
    setup = Setup(100 * SECOND, BlockWriteOptions(frame_span_ms=300 * SECOND),
                  (100 * SECOND, 300 * SECOND, 1200 * SECOND), 64 << 10)
    # Compiled loops are compiled (or loaded) outside the measurement: all that are
    # registered, and whatever a small import calls.
    compiled.warm_up()
    streamed(("\n".join([*lines[:2000], "# EOF"]) + "\n").encode(), str(tmp_path / "warm"), setup)
    peaks = []
    for fn, out in ((in_memory, "ref"), (streamed, "ours")):
        tracemalloc.start()
        try:
            report = fn(data, str(tmp_path / out), setup)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert report.samples == 400_000
    assert blocks_of(str(tmp_path / "ours")) == blocks_of(str(tmp_path / "ref"))
    assert peaks[0] > 400_000 * 24
    assert peaks[1] < peaks[0] / 4, peaks


def many_windows(n: int = 2000) -> list[tuple[int, int, str]]:
    """Series interleaved sample by sample across 50 windows of 20 s."""
    return [(i % len(SERIES), i // len(SERIES) * 3, str(i % 11)) for i in range(n)]


@pytest.mark.parametrize(
    "tail, line, message",
    [
        ("up{job=\"node\"} 1\n# EOF\n", 2002, "timestamp"),  # the last sample line is bad
        ("# EOF\nup 1 1\n", 2003, "after # EOF"),
        ("", 2002, "EOF"),  # no '# EOF' at all
    ],
)
def test_an_error_at_the_end_leaves_the_data_directory_as_it_was(
    tmp_path: Path, tail: str, line: int, message: str
) -> None:
    body = render(many_windows()).decode().removesuffix("# EOF\n") + tail
    setup = Setup(20 * SECOND, BlockWriteOptions(), (20 * SECOND, 60 * SECOND), 4096)
    # A fresh directory is not left behind ...
    fresh = str(tmp_path / "fresh")
    with pytest.raises(InputParseError) as exc:
        streamed(body.encode(), fresh, setup)
    assert exc.value.line == line and message in exc.value.message
    assert not os.path.exists(fresh)
    # ... and an existing one keeps exactly what it held: no block, no temporary directory.
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep").write_text("x")
    with pytest.raises(InputParseError):
        streamed(body.encode(), str(existing), setup)
    assert os.listdir(existing) == ["keep"]


def test_a_conflict_in_the_last_block_leaves_no_block(tmp_path: Path) -> None:
    # Every earlier block is complete (staged) when the conflict turns up.
    lines = many_windows() + [(1, 5997, "7"), (1, 5997, "8")]
    setup = Setup(20 * SECOND, BlockWriteOptions(), (), 4096)
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(InputParseError) as exc:
        streamed(render(lines), str(data), setup)
    assert 'up{job="api"}' in exc.value.message
    assert os.listdir(data) == []


def test_duplicates_across_windows_pieces_and_slices_are_dropped(tmp_path: Path) -> None:
    # Samples on both sides of window (20 s) and slice (30 s) boundaries, each repeated
    # far away in the file, in another parse piece.
    near = [19, 20, 29, 30, 39, 40, 59, 60, -1, 0, -20, -21]
    lines = [(s, t, f"{s}.5") for s in range(3) for t in near]
    filler = [(s, t, "9") for t in range(-30, 90) for s in (3, 4)]
    lines = lines + filler + lines[::-1]
    options = BlockWriteOptions(
        frame_span_ms=30 * SECOND, target_frame_samples=4, batch_samples=7
    )
    setup = Setup(20 * SECOND, options, (20 * SECOND, 60 * SECOND), 200)
    report = streamed(render(lines), str(tmp_path / "ours"), setup)
    ref = in_memory(render(lines), str(tmp_path / "ref"), setup)
    assert report.duplicates_dropped == ref.duplicates_dropped >= len(near) * 3
    assert (report.series, report.samples) == (ref.series, ref.samples)
    assert blocks_of(str(tmp_path / "ours")) == blocks_of(str(tmp_path / "ref"))
    with DB.open(str(tmp_path / "ours")) as db:
        got = read_all(db)
    node = got[Labels({"__name__": "up", "job": "node"})]
    at = {int(t): v for t, v in zip(*node)}
    assert all(at[t * SECOND] == 0.5 for t in near)


def test_the_temporary_directory_is_removed_and_blocks_appear_beside_others(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    setup = Setup(20 * SECOND, BlockWriteOptions(), (), 1 << 20)
    first = streamed(render(many_windows(700)), data, setup)
    second = streamed(render([(0, 10_000, "1")]), data, setup)
    names = sorted(os.listdir(data))
    assert names == sorted(m.ulid for m in (first.blocks or []) + (second.blocks or []))
    with DB.open(data) as db:
        assert len(db.block_list()) == len(names)


def test_a_crashed_import_leaves_a_temporary_directory_the_database_removes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    left = data / "import-k2j3h4.tmp" / "spill"
    left.mkdir(parents=True)
    (left / "0.vals").write_bytes(b"\0" * 8)
    with DB.open(str(data)):
        pass
    assert not (data / "import-k2j3h4.tmp").exists()


def test_a_crashed_import_that_held_its_directory_is_cleaned_too(tmp_path: Path) -> None:
    data = tmp_path / "data"
    left = data / "import-x9.tmp"
    left.mkdir(parents=True)
    (left / "lock").write_bytes(b"")  # its holder died: the lock file is there, unheld
    with DB.open(str(data)):
        pass
    assert not left.exists()


def test_a_database_opened_during_an_import_leaves_its_directory_alone(tmp_path: Path) -> None:
    """A real `vigilops tsdb import` reading stdin is held mid-import while the database
    opens the same directory (as a server starting would); the import then completes."""
    import subprocess
    import sys
    import time

    data = tmp_path / "data"
    data.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigilops.cli", "tsdb", "import", "openmetrics", "-", str(data)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(b'# TYPE m gauge\nm{a="1"} 1 1700000000\n')
        proc.stdin.flush()
        deadline = time.monotonic() + 60
        while not any(n.startswith("import-") for n in os.listdir(data)):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        (staging,) = [n for n in os.listdir(data) if n.startswith("import-")]
        while not (data / staging / "lock").exists():  # held from then on
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with DB.open(str(data)):
            assert (data / staging).is_dir()
        _, err = proc.communicate(b'm{a="1"} 2 1700000015\n# EOF\n', timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    with DB.open(str(data)) as db:
        assert len(db.block_list()) == 1
    assert not any(n.startswith("import-") for n in os.listdir(data))


def test_an_open_database_takes_in_blocks_imported_beside_it(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    with DB.open(data) as db:
        text = b'# TYPE m gauge\nm{a="1"} 1 1700000000\nm{a="1"} 2 1700000015\n# EOF\n'
        report = import_openmetrics(io.BytesIO(text), data)
        assert len(report.blocks) == 1 and db.block_list() == []
        db.maintain()  # the server's maintenance loop
        assert [b.ulid for b in db.block_list()] == [report.blocks[0].ulid]
        with db.querier(0, 2**62) as q:
            (cols,) = [s.values.tolist() for s in q.select([Matcher(MatchType.EQUAL, "__name__", "m")])]
        assert cols == [1.0, 2.0]
        db.maintain()  # once
        assert len(db.block_list()) == 1


def test_empty_input_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    report = import_openmetrics(io.BytesIO(b"# TYPE a gauge\n# EOF\n"), str(data))
    assert (report.series, report.samples, report.blocks) == (0, 0, [])
    assert os.listdir(data) == []


@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(-40, 40)), min_size=1, max_size=120, unique=True
    ),
    st.sampled_from([1, 2, 5, 1 << 16]),
    st.sampled_from([1, 3, 50]),
)
def test_write_block_slices_reads_in_batches_and_writes_what_write_block_writes(
    points: list[tuple[int, int]], target: int, batch: int
) -> None:
    points.sort()
    refs = np.array([p[0] for p in points], dtype=np.int64)
    ts = np.array([p[1] * 7_000 for p in points], dtype=np.int64)
    vals = np.arange(len(points), dtype=np.float64) / 3
    cols = SampleColumns(refs, ts, vals)
    labels = [Labels({"__name__": "m", "i": str(i)}) for i in np.unique(refs).tolist()]
    opts = BlockWriteOptions(frame_span_ms=60_000, target_frame_samples=target, batch_samples=batch)
    tmp = tempfile.mkdtemp(prefix="vigilops-slices-")
    try:
        mint, maxt = -300_000, 300_000
        ulid = "A" * 26
        a = write_block(os.path.join(tmp, "a"), labels, cols, mint, maxt, options=opts, ulid=ulid)
        # The same samples as slices whose reader checks the batch sizes it is asked for.
        biggest = max(np.bincount(refs).max(), target)
        slices = []
        for k in np.unique(ts // 60_000).tolist():
            sel = ts // 60_000 == k
            part = cols.select(sel)
            keys, starts = part.series_bounds()

            def read(
                lo: int, hi: int, part: SampleColumns = part, starts: np.ndarray = starts
            ) -> tuple[np.ndarray, np.ndarray]:
                a, b = int(starts[lo]), int(starts[hi])
                assert b - a < batch + target + biggest
                return part.timestamps[a:b].copy(), part.values[a:b].copy()

            slices.append(BlockSlice(keys, np.diff(starts), read))
        os.makedirs(os.path.join(tmp, "b"))
        distinct = np.unique(refs)

        def labels_of(keys: np.ndarray) -> list[Labels]:
            return [labels[i] for i in np.searchsorted(distinct, keys).tolist()]

        b = write_block_slices(
            os.path.join(tmp, "b"), iter(slices), labels_of, mint, maxt, options=opts, ulid=ulid
        )
        assert a is not None and b is not None and a == b
        assert blocks_of(os.path.join(tmp, "a")) == blocks_of(os.path.join(tmp, "b"))
        with DB.open(os.path.join(tmp, "b")) as db:
            got = read_all(db)
        for i, ls in enumerate(labels):
            sel = refs == distinct[i]
            assert got[ls][0].tolist() == ts[sel].tolist()
            assert bits(got[ls][1]) == bits(vals[sel])
    finally:
        shutil.rmtree(tmp)


def test_failing_slices_leave_no_partial_block(tmp_path: Path) -> None:
    def broken(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        raise RuntimeError("disk gone")

    slices = [BlockSlice(np.array([0, 1]), np.array([2, 2]), broken)]
    with pytest.raises(RuntimeError):
        write_block_slices(str(tmp_path), slices, lambda k: [], 0, 10)
    assert os.listdir(tmp_path) == []


def test_a_block_with_empty_frame_slices_inside_is_written(tmp_path: Path) -> None:
    # Samples at 01:00 and 20:00 of a day (and one the next day, which completes it): with
    # --compact their 2 h blocks merge into one, [00:00, 22:00), whose 6 h slices
    # 06:00-12:00 and 12:00-18:00 are empty. The writer used to fail on it (the minimum of
    # an empty frame), and so did compaction.
    day = 1_795_305_600 - 1_795_305_600 % 86_400
    lines = [(0, day + 3600, "1"), (1, day + 20 * 3600, "2"), (0, day + 86_400 + 60, "3")]
    ranges = (2 * 3600 * SECOND, 6 * 3600 * SECOND, 24 * 3600 * SECOND)
    setup = Setup(2 * 3600 * SECOND, BlockWriteOptions(), ranges, 1 << 20)
    report = streamed(render(lines), str(tmp_path / "ours"), setup)
    in_memory(render(lines), str(tmp_path / "ref"), setup)
    spans = sorted((m.min_time, m.max_time, m.level) for m in report.blocks or [])
    assert spans[0] == (day * SECOND, (day + 22 * 3600) * SECOND, 2)
    assert blocks_of(str(tmp_path / "ours")) == blocks_of(str(tmp_path / "ref"))
    with DB.open(str(tmp_path / "ours")) as db:
        got = read_all(db)
    assert got[Labels({"__name__": "up", "job": "api"})][0].tolist() == [(day + 20 * 3600) * SECOND]

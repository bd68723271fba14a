"""A block read whose selection spans many frames opens them on the worker threads: the
same samples as opening them one after the other, and damage reported the same way."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

from vigilops.tsdb.block import reader as block_reader
from vigilops.tsdb.block.reader import BlockReader
from vigilops.tsdb.block.writer import BlockWriteOptions, write_block
from vigilops.tsdb.columns import SampleColumns
from vigilops.tsdb.errors import CorruptionError
from vigilops.tsdb.model import Labels


def _block(d: str) -> str:
    rng = np.random.default_rng(5)
    labels = [Labels({"__name__": f"m{i // 7}", "i": f"{i:03d}"}) for i in range(60)]
    counts = rng.integers(20, 60, len(labels))
    refs = np.repeat(np.arange(len(labels), dtype=np.int64), counts)
    ts = np.concatenate([np.sort(rng.choice(40_000, c, replace=False)) for c in counts]).astype(np.int64)
    vs = np.where(rng.random(len(ts)) < 0.5, rng.integers(0, 1000, len(ts)) / 10, rng.normal(size=len(ts)))
    opts = BlockWriteOptions(frame_span_ms=10_000, target_frame_samples=200, min_frame_samples=50)
    meta = write_block(d, labels, SampleColumns(refs, ts, vs), 0, 40_000, options=opts)
    assert meta is not None and meta.num_frames >= 30
    return os.path.join(d, meta.ulid)


def _read(path: str, ids: np.ndarray, mint: int, maxt: int) -> SampleColumns:
    r = BlockReader(path)
    try:
        return r.samples(ids, mint, maxt)
    finally:
        r.close()


@pytest.mark.parametrize("mint,maxt", [(0, 39_999), (5_000, 27_345), (12_000, 12_500)])
def test_parallel_and_serial_opening_read_the_same(monkeypatch: pytest.MonkeyPatch, mint: int, maxt: int) -> None:
    calls: list[int] = []
    real = block_reader.ordered_map
    monkeypatch.setattr(block_reader, "ordered_map", lambda fn, items: calls.append(len(items)) or real(fn, items))
    with tempfile.TemporaryDirectory() as d:
        path = _block(d)
        ids = np.arange(0, 60, 2, dtype=np.int64)
        monkeypatch.setattr(block_reader, "_PARALLEL_OPEN", 1)
        parallel = _read(path, ids, mint, maxt)
        assert calls and calls[-1] >= 2
        monkeypatch.setattr(block_reader, "_PARALLEL_OPEN", 10**9)
        serial = _read(path, ids, mint, maxt)
    assert len(parallel) > 0
    assert np.array_equal(parallel.refs, serial.refs) and np.array_equal(parallel.timestamps, serial.timestamps)
    assert np.array_equal(parallel.values.view(np.uint64), serial.values.view(np.uint64))


def test_a_damaged_frame_is_reported_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = _block(d)
        with open(os.path.join(path, "chunks"), "r+b") as f:
            f.seek(os.path.getsize(os.path.join(path, "chunks")) // 2)
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 0xFF]))
        ids = np.arange(60, dtype=np.int64)
        errors = []
        for threshold in (1, 10**9):
            monkeypatch.setattr(block_reader, "_PARALLEL_OPEN", threshold)
            with pytest.raises(CorruptionError) as exc:
                _read(path, ids, 0, 39_999)
            errors.append(str(exc.value))
    assert errors[0] == errors[1] and "frame" in errors[0]

"""Reading a block: memory-mapped index and chunks, decoding only the frames a query needs."""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ..chunks.frame import decode_frame, open_frame
from ..columns import AnyPart, DeferredPart, SampleColumns, concat_time_ordered, runs_writer
from ..errors import CorruptionError
from ..filenames import BLOCK_CHUNKS, BLOCK_INDEX, BLOCK_META, BLOCK_TOMBSTONES, TMP_SUFFIX
from ..model import Labels, Matcher
from ..postings import Postings, postings_for_matchers
from ..workers import ordered_map
from .frame_select import FrameColumns, select_frames
from .index import IndexReader
from .meta import BlockMeta

I64 = npt.NDArray[np.int64]

_TOMB_MAGIC = b"VTMB"
_TOMB_HEADER = struct.Struct("<4sBxxxI")  # magic, version, count
TOMB_DTYPE = np.dtype([("series", "<u4"), ("mint", "<i8"), ("maxt", "<i8")])


#: Selections of at least this many frames open them (checksum, decompression, column
#: reads: all release the GIL) on the shared worker threads.
_PARALLEL_OPEN = 16


class BlockReader:
    """An open block. Thread-safe for reads; `close` when no query uses it any more."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            with open(os.path.join(path, BLOCK_META)) as f:
                self.meta = BlockMeta.from_json(f.read())
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CorruptionError(os.path.join(path, BLOCK_META), f"unreadable meta: {exc}") from None
        self.index = IndexReader(os.path.join(path, BLOCK_INDEX))
        chunks_path = os.path.join(path, BLOCK_CHUNKS)
        with open(chunks_path, "rb") as f:
            size = f.seek(0, 2)
            self._chunks: mmap.mmap | None = (
                mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else None
            )
        self.chunks_size = size
        rows = self.index.frames.rows
        if len(rows) and int((rows["offset"] + rows["length"]).max()) > size:
            raise CorruptionError(chunks_path, "frame table points past the end of the chunks file")
        self.tombstones = read_tombstones(os.path.join(path, BLOCK_TOMBSTONES))
        self._frame_columns = FrameColumns.of(self.index.frames)
        self._frame_spans = list(zip(rows["offset"].tolist(), rows["length"].tolist()))

    @property
    def ulid(self) -> str:
        return self.meta.ulid

    @property
    def mint(self) -> int:
        return self.meta.min_time

    @property
    def maxt(self) -> int:
        """Exclusive upper bound."""
        return self.meta.max_time

    def size_bytes(self) -> int:
        total = 0
        for name in os.listdir(self.path):
            try:
                total += os.path.getsize(os.path.join(self.path, name))
            except OSError:
                pass
        return total

    def verify(self) -> None:
        """Check every frame's checksum; raise CorruptionError on the first mismatch."""
        rows = self.index.frames.rows
        where = os.path.join(self.path, BLOCK_CHUNKS)
        for i in range(len(rows)):
            buf = self._frame_bytes(i)
            if len(buf) < 12:
                raise CorruptionError(where, f"frame {i} is {len(buf)} bytes long")
            (crc,) = struct.unpack_from("<I", buf, 8)
            found = zlib.crc32(buf[12:])
            if found != crc:
                raise CorruptionError(
                    where, f"frame {i} checksum {found:#010x}, expected {crc:#010x}"
                )

    def _frame_bytes(self, i: int) -> memoryview:
        assert self._chunks is not None
        off, length = self._frame_spans[i]
        return memoryview(self._chunks)[off : off + length]

    # -- queries ---------------------------------------------------------------------------
    def postings(self, matchers: Sequence[Matcher]) -> Postings:
        return postings_for_matchers(self.index, matchers)

    def samples(self, ids: I64, mint: int, maxt: int) -> SampleColumns:
        """Samples of series `ids` (sorted) in [mint, maxt], by (id, t), tombstones applied."""
        cols = concat_time_ordered(self.sample_parts(ids, mint, maxt))
        if len(cols):
            m = (cols.timestamps >= mint) & (cols.timestamps <= maxt)
            if not m.all():
                cols = cols.select(m)
        return cols

    def sample_parts(self, ids: I64, mint: int, maxt: int) -> list[AnyPart]:
        """The samples of series `ids` (sorted) from the frames overlapping [mint, maxt], as
        `concat_time_ordered` parts in time order, not joined yet: a caller merging several
        sources joins everything once. Frames wholly inside [mint, maxt] come as
        `DeferredPart` (decoded by the join), the others as ``(ids, counts, timestamps,
        values)`` with only their samples in [mint, maxt]. With tombstones, one part,
        already applied."""
        if not len(ids) or maxt < self.mint or mint >= self.maxt:
            return []
        if len(self.tombstones):
            cols = self._apply_tombstones(concat_time_ordered(self._frame_parts(ids, mint, maxt)))
            if not len(cols):
                return []
            present, starts = cols.series_bounds()
            return [(present, np.diff(starts), cols.timestamps, cols.values)]
        return self._frame_parts(ids, mint, maxt)

    def _frame_parts(self, ids: I64, mint: int, maxt: int) -> list[AnyPart]:
        where = os.path.join(self.path, BLOCK_CHUNKS)
        sel = select_frames(self._frame_columns, ids, mint, maxt)

        def part_of(k: int) -> AnyPart:
            i, a, b = sel.frames[k], sel.offsets[k], sel.offsets[k + 1]
            positions, found = sel.positions[a:b], sel.found[a:b]
            if sel.whole[k]:
                # Every sample is wanted: checked and read now, decoded where the caller
                # places it (`concat_time_ordered`).
                opened = open_frame(self._frame_bytes(i), where=f"{where} frame {i}", select=positions)
                return DeferredPart(found, opened.counts, opened.write_into, opened.stale_free())
            d = decode_frame(
                self._frame_bytes(i), where=f"{where} frame {i}", select=positions,
                mint=mint, maxt=maxt,
            )
            # Series with no sample in [mint, maxt] in this frame keep a count of 0: the
            # join skips them. Frames of one series never overlap in time and come in
            # time order.
            return DeferredPart(
                found, d.counts, runs_writer(d.counts, d.timestamps, d.values), d.stale_free
            )

        todo = range(len(sel.frames))
        if len(todo) >= _PARALLEL_OPEN:
            return ordered_map(part_of, todo)
        return [part_of(k) for k in todo]

    def _apply_tombstones(self, cols: SampleColumns) -> SampleColumns:
        tomb = self.tombstones
        if not len(tomb) or not len(cols):
            return cols
        keep = np.ones(len(cols), dtype=bool)
        for sid, lo, hi in zip(
            tomb["series"].tolist(), tomb["mint"].tolist(), tomb["maxt"].tolist()
        ):
            keep &= ~((cols.refs == sid) & (cols.timestamps >= lo) & (cols.timestamps <= hi))
        return cols if keep.all() else cols.select(keep)

    def labels(self, sid: int) -> Labels:
        return self.index.labels(sid)

    def labels_of(self, sids: list[int]) -> list[Labels]:
        return self.index.labels_of(sids)

    def series_in_range(self, ids: I64, mint: int, maxt: int) -> I64:
        """The ids (sorted) among `ids` that have at least one frame overlapping the range.

        Frames are per time slice, so this is exact to the slice, not to the sample; when
        the whole block is inside the range (the usual case for label queries) it is exact.
        """
        if not len(ids) or maxt < self.mint or mint >= self.maxt:
            return np.zeros(0, dtype=np.int64)
        if mint <= self.mint and maxt >= self.maxt - 1 and not len(self.tombstones):
            return ids
        frames = self.index.frames
        rows = frames.rows
        overlap = np.flatnonzero((rows["maxt"] >= mint) & (rows["mint"] <= maxt))
        present = [
            frames.series[int(rows["series_start"][i]) : int(rows["series_start"][i])
                          + int(rows["series_count"][i])]
            for i in overlap.tolist()
        ]
        if not present:
            return np.zeros(0, dtype=np.int64)
        have = np.unique(np.concatenate(present)).astype(np.int64)
        return np.intersect1d(ids, have, assume_unique=True)

    # -- deletion --------------------------------------------------------------------------
    def add_tombstones(self, ids: I64, mint: int, maxt: int) -> None:
        """Record deletion of [mint, maxt] for series `ids`; persisted atomically."""
        if not len(ids):
            return
        new = np.zeros(len(ids), dtype=TOMB_DTYPE)
        new["series"] = ids
        new["mint"] = mint
        new["maxt"] = maxt
        merged = np.concatenate([self.tombstones, new]) if len(self.tombstones) else new
        write_tombstones(os.path.join(self.path, BLOCK_TOMBSTONES), merged)
        self.tombstones = merged

    def close(self) -> None:
        self.index.close()
        self._chunks = None  # unmapped by the GC once no memoryview refers to it


def write_tombstones(path: str, tombs: npt.NDArray[np.void]) -> None:
    payload = tombs.astype(TOMB_DTYPE).tobytes()
    data = _TOMB_HEADER.pack(_TOMB_MAGIC, 1, len(tombs)) + payload
    data += struct.pack("<I", zlib.crc32(data))
    tmp = path + TMP_SUFFIX
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_tombstones(path: str) -> npt.NDArray[np.void]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return np.zeros(0, dtype=TOMB_DTYPE)
    if len(data) < _TOMB_HEADER.size + 4:
        raise CorruptionError(path, f"tombstones file of {len(data)} bytes is truncated")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    found = zlib.crc32(data[:-4])
    if found != crc:
        raise CorruptionError(path, f"tombstones checksum {found:#010x}, expected {crc:#010x}")
    magic, version, count = _TOMB_HEADER.unpack_from(data)
    if magic != _TOMB_MAGIC or version != 1:
        raise CorruptionError(path, f"bad tombstones magic/version {magic!r}/{version}")
    expected = _TOMB_HEADER.size + count * TOMB_DTYPE.itemsize + 4
    if len(data) != expected:
        raise CorruptionError(path, f"tombstones file is {len(data)} bytes, expected {expected}")
    return np.frombuffer(data, dtype=TOMB_DTYPE, count=count, offset=_TOMB_HEADER.size).copy()

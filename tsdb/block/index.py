"""A block's `index` file: symbols, series label sets, postings and the frame table.

Every section is a run of little-endian arrays preceded by its length and CRC32, so a
reader memory-maps the file and views each array in place (`np.frombuffer`). The byte
layout is specified in ``tsdb/docs/format/block.md``.
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..errors import CorruptionError
from ..model import Labels
from ..postings import EMPTY, Postings

MAGIC = b"VIDX"
VERSION = 1
_FILE_HEADER = struct.Struct("<4sB3x")
_SECTION_HEADER = struct.Struct("<QI4x")  # payload length, crc32 of payload

U32 = npt.NDArray[np.uint32]

#: One row per frame in the chunks file. `series_start`/`series_count` select the frame's
#: series ids from the flat frame-series array, in the order the frame stores them.
FRAME_DTYPE = np.dtype(
    [
        ("mint", "<i8"),
        ("maxt", "<i8"),
        ("offset", "<u8"),
        ("length", "<u8"),
        ("series_start", "<u8"),
        ("series_count", "<u8"),
    ]
)


@dataclass(frozen=True)
class FrameTable:
    rows: npt.NDArray[np.void]
    series: U32  # flat: the series ids of every frame, frame after frame


def _pad8(n: int) -> int:
    return (-n) % 8


def _u32(values: Sequence[int] | npt.NDArray[np.generic]) -> bytes:
    return np.asarray(values, dtype="<u4").tobytes()


def write_index(
    path: str, labels: Sequence[Labels], frames: FrameTable
) -> int:
    """Write the index of a block whose series ids are positions in `labels` (sorted)."""
    symbols = sorted({s for ls in labels for s in ls})
    sym_id = {s: i for i, s in enumerate(symbols)}
    encoded = [s.encode("utf-8") for s in symbols]
    offs = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offs[1:])
    sym_section = b"".join(
        [struct.pack("<I", len(symbols)), _u32(offs), b"".join(encoded)]
    )

    # Every label set flattened to symbol ids: (name, value) pairs, series after series.
    sizes = np.fromiter((len(ls) for ls in labels), dtype=np.int64, count=len(labels))
    label_syms = np.fromiter(
        (sym_id[s] for ls in labels for s in ls), dtype=np.uint32, count=int(sizes.sum())
    )
    label_offs = np.zeros(len(labels) + 1, dtype=np.int64)
    np.cumsum(sizes, out=label_offs[1:])
    series_section = b"".join(
        [struct.pack("<I", len(labels)), _u32(label_offs), _u32(label_syms)]
    )

    # Postings: the series of each (name, value), ascending, keys in symbol order (symbol
    # ids sort like the strings they stand for).
    pair_key = (label_syms[0::2].astype(np.uint64) << np.uint64(32)) | label_syms[1::2]
    pair_series = np.repeat(np.arange(len(labels), dtype=np.uint32), sizes // 2)
    order = np.argsort(pair_key, kind="stable")  # series stay ascending within a key
    keys, starts, counts = np.unique(pair_key[order], return_index=True, return_counts=True)
    table = np.empty((len(keys), 4), dtype="<u4")
    table[:, 0] = keys >> np.uint64(32)
    table[:, 1] = keys & np.uint64(0xFFFFFFFF)
    table[:, 2] = starts
    table[:, 3] = counts
    postings_section = b"".join(
        [struct.pack("<I", len(keys)), table.tobytes(), _u32(pair_series[order])]
    )

    frames_section = b"".join(
        [
            struct.pack("<II", len(frames.rows), len(frames.series)),
            frames.rows.astype(FRAME_DTYPE).tobytes(),
            _u32(frames.series),
        ]
    )

    out = [_FILE_HEADER.pack(MAGIC, VERSION)]
    for payload in (sym_section, series_section, postings_section, frames_section):
        out.append(_SECTION_HEADER.pack(len(payload), zlib.crc32(payload)))
        out.append(payload)
        out.append(b"\0" * _pad8(len(payload)))
    data = b"".join(out)
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return len(data)


class IndexReader:
    """Memory-mapped, checksum-verified view of an `index` file."""

    def __init__(self, path: str) -> None:
        self.path = path
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            if size < _FILE_HEADER.size:
                raise CorruptionError(path, f"index of {size} bytes is shorter than its header")
            self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            self._parse()
        except CorruptionError:
            self.close()
            raise
        except (ValueError, struct.error, IndexError, UnicodeDecodeError) as exc:
            self.close()
            raise CorruptionError(path, f"malformed index: {exc}") from None

    def _sections(self) -> list[memoryview]:
        mv = memoryview(self._mm)
        magic, version = _FILE_HEADER.unpack_from(mv)
        if magic != MAGIC or version != VERSION:
            raise CorruptionError(self.path, f"bad index magic/version {magic!r}/{version}")
        pos = _FILE_HEADER.size
        out = []
        for name in ("symbols", "series", "postings", "frames"):
            if pos + _SECTION_HEADER.size > len(mv):
                raise CorruptionError(self.path, f"index ends before its {name} section")
            length, crc = _SECTION_HEADER.unpack_from(mv, pos)
            pos += _SECTION_HEADER.size
            if pos + length > len(mv):
                raise CorruptionError(
                    self.path, f"{name} section of {length} bytes overruns the file"
                )
            payload = mv[pos : pos + length]
            found = zlib.crc32(payload)
            if found != crc:
                raise CorruptionError(
                    self.path, f"{name} section checksum {found:#010x}, expected {crc:#010x}"
                )
            out.append(payload)
            pos += length + _pad8(length)
        return out

    def _parse(self) -> None:
        sym, ser, post, frm = self._sections()
        (n_sym,) = struct.unpack_from("<I", sym)
        offs = np.frombuffer(sym, dtype="<u4", count=n_sym + 1, offset=4).astype(np.int64)
        blob = bytes(sym[4 + 4 * (n_sym + 1) :])
        if n_sym and int(offs[-1]) != len(blob):
            raise CorruptionError(self.path, "symbol table lengths do not match its data")
        self.symbols: list[str] = [
            blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_sym)
        ]

        (n_series,) = struct.unpack_from("<I", ser)
        self.num_series = n_series
        self._label_offs = np.frombuffer(ser, dtype="<u4", count=n_series + 1, offset=4)
        n_syms = int(self._label_offs[-1]) if n_series else 0
        self._label_syms = np.frombuffer(
            ser, dtype="<u4", count=n_syms, offset=4 + 4 * (n_series + 1)
        )
        if n_syms and int(self._label_syms.max()) >= n_sym:
            raise CorruptionError(self.path, "series refer to symbols that do not exist")
        self._labels: list[Labels | None] = [None] * n_series

        (n_post,) = struct.unpack_from("<I", post)
        table = np.frombuffer(post, dtype="<u4", count=4 * n_post, offset=4).reshape(n_post, 4)
        self._post_name = table[:, 0]
        self._post_value = table[:, 1]
        self._post_start = table[:, 2].astype(np.int64)
        self._post_len = table[:, 3].astype(np.int64)
        flat_count = int((self._post_start + self._post_len).max()) if n_post else 0
        self._post_ids = np.frombuffer(
            post, dtype="<u4", count=flat_count, offset=4 + 16 * n_post
        )

        n_frames, n_fseries = struct.unpack_from("<II", frm)
        self.frames = FrameTable(
            rows=np.frombuffer(frm, dtype=FRAME_DTYPE, count=n_frames, offset=8),
            series=np.frombuffer(
                frm, dtype="<u4", count=n_fseries, offset=8 + FRAME_DTYPE.itemsize * n_frames
            ),
        )
        self._sym_of = {s: i for i, s in enumerate(self.symbols)}

    # -- series ----------------------------------------------------------------------------
    def labels(self, sid: int) -> Labels:
        ls = self._labels[sid]
        if ls is None:
            a, b = int(self._label_offs[sid]), int(self._label_offs[sid + 1])
            syms = self.symbols
            ls = Labels.from_flat(syms[i] for i in self._label_syms[a:b].tolist())
            self._labels[sid] = ls
        return ls

    def labels_of(self, sids: list[int]) -> list[Labels]:
        """`labels` of each of `sids`, with one call (a selection asks for hundreds)."""
        cached = self._labels
        found = [cached[s] for s in sids]
        if None in found:
            found = [ls if ls is not None else self.labels(s) for s, ls in zip(sids, found)]
        return found  # type: ignore[return-value]  # no None left

    # -- postings (PostingsSource) ---------------------------------------------------------
    def _name_rows(self, name: str) -> tuple[int, int]:
        sym = self._sym_of.get(name)
        if sym is None:
            return 0, 0
        lo = int(np.searchsorted(self._post_name, sym, side="left"))
        hi = int(np.searchsorted(self._post_name, sym, side="right"))
        return lo, hi

    def label_names(self) -> list[str]:
        return [self.symbols[i] for i in np.unique(self._post_name).tolist()]

    def label_values_of(self, name: str) -> Sequence[str]:
        lo, hi = self._name_rows(name)
        return [self.symbols[i] for i in self._post_value[lo:hi].tolist()]

    def postings_for(self, name: str, values: Sequence[str]) -> Postings:
        lo, hi = self._name_rows(name)
        if lo == hi:
            return EMPTY
        value_syms = self._post_value[lo:hi]
        parts = []
        for v in values:
            sym = self._sym_of.get(v)
            if sym is None:
                continue
            j = lo + int(np.searchsorted(value_syms, sym))
            if j < hi and int(self._post_value[j]) == sym:
                s, n = int(self._post_start[j]), int(self._post_len[j])
                parts.append(self._post_ids[s : s + n])
        if not parts:
            return EMPTY
        if len(parts) == 1:
            return parts[0].astype(np.int64)
        return np.unique(np.concatenate(parts)).astype(np.int64)

    def all_postings(self) -> Postings:
        return np.arange(self.num_series, dtype=np.int64)

    def close(self) -> None:
        # Views into the map may still exist in callers; let the GC unmap it then.
        self._label_offs = self._label_syms = np.zeros(0, dtype=np.uint32)
        self._post_ids = np.zeros(0, dtype=np.uint32)

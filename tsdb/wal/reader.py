"""Reading one segment file and classifying how it ends.

`SegmentReader` yields the records of a segment's bytes in order and, once exhausted,
says in `end` whether the segment ended cleanly, was torn (the file stops inside a frame)
or is corrupt (bytes that fail a checksum or do not decode), and at which offset the last
good record ends. The reader never modifies anything; repairing is the caller's job.

Classification, at each frame boundary ``pos`` of a file of ``size`` bytes:

* ``pos == size``: clean end;
* fewer than a frame header's bytes left: torn;
* header checksum fails: torn if every byte from ``pos`` to the end is zero (space the
  file system allocated but the write never reached), else corrupt (``checksum``);
* header valid but the frame extends past the end of the file: torn;
* payload checksum fails: corrupt (``checksum``); the record does not decode: corrupt
  (``invalid``).

Because a frame's length is only believed once the header checksum passes, cutting a
segment at any byte offset always reads as torn after the last complete record, never as
corruption.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

import numpy as np

from ..errors import CorruptionError, TSDBError
from .framing import (
    FRAME_HEADER,
    SEGMENT_HEADER,
    HeaderStatus,
    check_segment_header,
    frame_header_valid,
)
from .records import ChecksumError, Record, decode_record


class UnsupportedFormatError(TSDBError):
    """A segment was written in a format version this code does not know.

    Raised, not repaired: the file is probably intact and from a newer VigilOps, and
    truncating it would destroy data that a newer version could read.
    """


class EndKind(Enum):
    """How a segment ends."""

    CLEAN = "clean"
    TORN = "torn"
    CORRUPT = "corrupt"


@dataclass(frozen=True)
class SegmentEnd:
    """Where and how a segment's readable content ends.

    `good_bytes` is the length up to the end of the last good record (or of the segment
    header; 0 if even that is damaged): truncating the file there leaves a clean segment.
    `reason` is the label counted by the corruption metric: ``torn``, ``checksum``,
    ``invalid`` or ``segment_header``; empty for a clean end.
    """

    kind: EndKind
    good_bytes: int
    size: int
    reason: str = ""
    detail: str = ""


class SegmentReader:
    """Iterate over the records in the bytes `data` of the segment file `path`.

    Records are decoded lazily, one per iteration step. After the iteration stops, `end`
    describes how the segment ended. Iterate once. Raises `UnsupportedFormatError` if the
    segment header names an unknown format version; every other problem ends the
    iteration and is reported in `end`.
    """

    def __init__(self, data: bytes | memoryview, path: str) -> None:
        self._data = memoryview(data)
        self._path = path
        self.end: SegmentEnd | None = None

    def __iter__(self) -> Iterator[Record]:
        mv, size = self._data, len(self._data)
        if size == 0:
            self.end = SegmentEnd(EndKind.CLEAN, 0, 0)
            return
        status = check_segment_header(mv)
        if status is HeaderStatus.UNSUPPORTED:
            raise UnsupportedFormatError(
                f"{self._path}: segment format version {mv[4]} is not supported "
                "(written by a newer VigilOps?)"
            )
        if status is not HeaderStatus.OK:
            torn = status is HeaderStatus.TORN or _all_zero(mv, 0)
            self.end = SegmentEnd(
                EndKind.TORN if torn else EndKind.CORRUPT,
                0,
                size,
                "torn" if torn else "segment_header",
                f"segment header {'incomplete' if torn else 'damaged'} ({size} bytes in file)",
            )
            return
        pos = SEGMENT_HEADER.size
        hsize = FRAME_HEADER.size
        while True:
            left = size - pos
            if left == 0:
                self.end = SegmentEnd(EndKind.CLEAN, pos, size)
                return
            if left < hsize:
                self.end = self._torn(pos, f"{left} bytes of a record header at offset {pos}")
                return
            if not frame_header_valid(mv, pos):
                if _all_zero(mv, pos):
                    self.end = self._torn(pos, f"zero-filled tail from offset {pos}")
                else:
                    self.end = SegmentEnd(
                        EndKind.CORRUPT,
                        pos,
                        size,
                        "checksum",
                        f"record header checksum mismatch at offset {pos}",
                    )
                return
            length = FRAME_HEADER.unpack_from(mv, pos)[2]
            stop = pos + hsize + length
            if stop > size:
                self.end = self._torn(
                    pos, f"record at offset {pos} needs {hsize + length} bytes, {left} left"
                )
                return
            try:
                rec = decode_record(mv[pos:stop], self._path)
            except CorruptionError as exc:
                reason = "checksum" if isinstance(exc, ChecksumError) else "invalid"
                self.end = SegmentEnd(
                    EndKind.CORRUPT, pos, size, reason, f"at offset {pos}: {exc.detail}"
                )
                return
            yield rec
            pos = stop

    def _torn(self, pos: int, detail: str) -> SegmentEnd:
        return SegmentEnd(EndKind.TORN, pos, len(self._data), "torn", detail)


def _all_zero(mv: memoryview, pos: int) -> bool:
    return not np.frombuffer(mv, dtype=np.uint8, offset=pos).any()

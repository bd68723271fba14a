"""Writing checkpoint directories atomically and removing what they replace.

A checkpoint ``checkpoint.NNNNNNNN`` holds, in segment files of the ordinary format
(``00000000``, ``00000001``, …), the records still needed from segments ``<= NNNNNNNN``
(typically the series that are still live in the head). It is written under
``checkpoint.NNNNNNNN.tmp``, every file and the directory are fsynced, then the directory
is renamed into place and the parent fsynced: a checkpoint either exists completely or
not at all.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable

from .framing import SEGMENT_HEADER, check_frame
from .segment import (
    checkpoint_name,
    create_segment,
    fsync_dir,
    fsync_file,
    segment_name,
    write_all,
)

#: Records are gathered into writes of about this size: large enough that a checkpoint of
#: millions of small records costs few system calls, small enough not to matter in memory.
_WRITE_BUFFER = 1 << 20


class _SegmentWriter:
    """Writes frames into ``00000000``, ``00000001``, … under `directory`, cutting a new
    file before one would exceed `segment_size` (a frame larger than that gets a file of
    its own). Not thread-safe."""

    def __init__(self, directory: str, segment_size: int) -> None:
        self._dir = directory
        self._segment_size = segment_size
        self._index = -1
        self._fd: int | None = None
        self._size = 0
        self._buf: list[bytes] = []
        self._buffered = 0

    def add(self, frame: bytes) -> None:
        if self._fd is None or (
            self._size > SEGMENT_HEADER.size and self._size + len(frame) > self._segment_size
        ):
            self._next_file()
        self._buf.append(frame)
        self._buffered += len(frame)
        self._size += len(frame)
        if self._buffered >= _WRITE_BUFFER:
            self._flush()

    def close(self) -> None:
        """Flush, fsync and close the last file (creating an empty one if none was)."""
        if self._fd is None:
            self._next_file()
        self._finish_file()

    def abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _flush(self) -> None:
        if self._buf:
            assert self._fd is not None
            write_all(self._fd, b"".join(self._buf))
            self._buf.clear()
            self._buffered = 0

    def _finish_file(self) -> None:
        assert self._fd is not None
        self._flush()
        fsync_file(self._fd)
        os.close(self._fd)
        self._fd = None

    def _next_file(self) -> None:
        if self._fd is not None:
            self._finish_file()
        self._index += 1
        self._fd = create_segment(os.path.join(self._dir, segment_name(self._index)))
        self._size = SEGMENT_HEADER.size


def write_checkpoint(
    directory: str, upto: int, records: Iterable[bytes], segment_size: int
) -> str:
    """Atomically create ``checkpoint.{upto:08d}`` in `directory` holding `records`.

    Each record must be a frame from `encode_record` (`ValueError` otherwise). On any
    failure the temporary directory is removed and the exception propagates; nothing
    else is touched. Returns the checkpoint's path.
    """
    final = os.path.join(directory, checkpoint_name(upto))
    tmp = final + ".tmp"
    if os.path.exists(final):
        raise FileExistsError(f"checkpoint {final} already exists")
    shutil.rmtree(tmp, ignore_errors=True)
    os.mkdir(tmp)
    writer = _SegmentWriter(tmp, segment_size)
    try:
        for frame in records:
            check_frame(frame)
            writer.add(bytes(frame))
        writer.close()
        fsync_dir(tmp)
        os.rename(tmp, final)
        fsync_dir(directory)
    except BaseException:
        writer.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def remove_obsolete(
    directory: str, upto: int, segments: Iterable[int], checkpoints: Iterable[int]
) -> tuple[list[int], list[int]]:
    """Delete the segments ``<= upto`` and the checkpoints ``< upto`` among those given.

    Returns the segment and checkpoint indexes removed. The parent directory is fsynced
    if anything was removed.
    """
    gone_segments = [i for i in segments if i <= upto]
    gone_checkpoints = [i for i in checkpoints if i < upto]
    for i in gone_segments:
        os.unlink(os.path.join(directory, segment_name(i)))
    for i in gone_checkpoints:
        path = os.path.join(directory, checkpoint_name(i))
        # Rename first so that a crash half-way through the deletion leaves a `.tmp`
        # directory (removed on the next open), never a truncated checkpoint.
        doomed = path + ".tmp"
        shutil.rmtree(doomed, ignore_errors=True)
        os.rename(path, doomed)
        shutil.rmtree(doomed)
    if gone_segments or gone_checkpoints:
        fsync_dir(directory)
    return gone_segments, gone_checkpoints

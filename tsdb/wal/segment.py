"""Files of a WAL directory: segment and checkpoint names, listing, durable creation.

Segment files are named by their index as exactly eight decimal digits (``00000001``);
checkpoints are directories named ``checkpoint.NNNNNNNN`` after the last segment they
replace, written under ``checkpoint.NNNNNNNN.tmp`` first. Anything else in the directory
is ignored.
"""

from __future__ import annotations

import os
import re

from .framing import segment_header

_SEGMENT_RE = re.compile(r"\d{8}\Z")
_CHECKPOINT_RE = re.compile(r"checkpoint\.(\d{8})\Z")
_CHECKPOINT_TMP_RE = re.compile(r"checkpoint\.\d{8}\.tmp\Z")

#: Largest index an eight-digit name can hold.
MAX_INDEX = 99_999_999


def segment_name(index: int) -> str:
    """The file name of segment `index`."""
    if not 0 <= index <= MAX_INDEX:
        raise ValueError(f"segment index {index} does not fit eight digits")
    return f"{index:08d}"


def checkpoint_name(upto: int) -> str:
    """The directory name of the checkpoint that replaces segments up to `upto`."""
    return "checkpoint." + segment_name(upto)


def _entries(directory: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as it:
            return list(it)
    except FileNotFoundError:
        return []


def list_segments(directory: str) -> list[int]:
    """Indexes of the segment files in `directory`, ascending (none if it is missing)."""
    return sorted(
        int(e.name)
        for e in _entries(directory)
        if _SEGMENT_RE.match(e.name) and e.is_file(follow_symlinks=False)
    )


def list_checkpoints(directory: str) -> list[int]:
    """`upto` indexes of the complete checkpoint directories in `directory`, ascending."""
    out: list[int] = []
    for e in _entries(directory):
        m = _CHECKPOINT_RE.match(e.name)
        if m and e.is_dir(follow_symlinks=False):
            out.append(int(m.group(1)))
    return sorted(out)


def list_checkpoint_tmps(directory: str) -> list[str]:
    """Names of unfinished checkpoint directories (left by a crash) in `directory`."""
    return sorted(e.name for e in _entries(directory) if _CHECKPOINT_TMP_RE.match(e.name))


def dir_size(path: str) -> int:
    """Total size in bytes of the regular files directly inside `path`."""
    total = 0
    for e in _entries(path):
        if e.is_file(follow_symlinks=False):
            total += e.stat(follow_symlinks=False).st_size
    return total


def fsync_dir(path: str) -> None:
    """Make the entries of directory `path` (creations, renames, deletions) durable."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # platforms that cannot open directories (Windows) have nothing to sync
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(fd: int) -> None:
    """Flush a file's data (and the metadata needed to read it back, such as its size)."""
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:  # pragma: no cover - macOS, Windows
        os.fsync(fd)


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of `data` at the file's position: one `write()` unless the OS writes less."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def create_segment(path: str) -> int:
    """Create the new segment file `path` holding only its header; return an append fd.

    Fails if the file exists. The header is written but not synced; if writing it fails,
    the file is removed again.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
    try:
        write_all(fd, segment_header())
    except BaseException:
        os.close(fd)
        try:
            os.unlink(path)
        except OSError:
            pass
        raise
    return fd

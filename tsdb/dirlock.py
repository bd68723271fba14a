"""Holding a directory with flock on its `LOCK_FILE`: a data directory while a process
has it open, an import's staging directory while the import runs. The kernel drops the
lock when the holder exits, however it exits, so a crash never leaves a directory held.
"""

from __future__ import annotations

import fcntl
import os

from .filenames import LOCK_FILE


def try_hold(directory: str) -> int | None:
    """Hold `directory` (its lock file is created if missing): the descriptor to close to
    let go, or None if another open file holds it."""
    fd = os.open(os.path.join(directory, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def is_held(directory: str) -> bool:
    """Whether something holds `directory` now (False when it has no lock file)."""
    try:
        fd = os.open(os.path.join(directory, LOCK_FILE), os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also lets go of a lock this call took
    return False

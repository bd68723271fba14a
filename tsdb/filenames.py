"""Every name the storage engine gives to a file or directory, in one place."""

from __future__ import annotations

#: A block directory is named by its ULID and holds these files.
BLOCK_META = "meta.json"
BLOCK_INDEX = "index"
BLOCK_CHUNKS = "chunks"
BLOCK_TOMBSTONES = "tombstones"

#: Directories under the data directory.
WAL_DIR = "wal"
QUARANTINE_DIR = "corrupted"

#: Held with flock while a process has the data directory open.
LOCK_FILE = "lock"

#: Suffix of a block or file being written; left-overs are deleted at open.
TMP_SUFFIX = ".tmp"
#: Suffix of a block being deleted (renamed first so a crash never leaves half a block).
DELETING_SUFFIX = ".deleting"

"""Write-ahead log: segments of checksummed, compressed records; checkpoints.

`encode_record` turns a `SeriesRecord`, `SamplesRecord` or `TombstonesRecord` into a
self-checking frame; `WAL` appends frames to numbered segment files, replays them after a
restart (repairing a torn or corrupt tail) and replaces old segments with checkpoints.
The byte format is specified in ``tsdb/docs/format/wal.md``.
"""

from .reader import UnsupportedFormatError
from .records import (
    ChecksumError,
    Record,
    SamplesRecord,
    SeriesRecord,
    TombstonesRecord,
    decode_record,
    encode_record,
)
from .wal import WAL, SyncPolicy

__all__ = [
    "WAL",
    "ChecksumError",
    "Record",
    "SamplesRecord",
    "SeriesRecord",
    "SyncPolicy",
    "TombstonesRecord",
    "UnsupportedFormatError",
    "decode_record",
    "encode_record",
]

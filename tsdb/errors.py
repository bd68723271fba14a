"""Named errors of the storage engine.

Sample rejections are not raised one by one: an append reports how many samples each
`RejectReason` dropped (see `AppendResult` in `tsdb.api`). Exceptions are for conditions
that stop an operation: corruption, a closed database, bad input to the importer.
"""

from __future__ import annotations

from enum import Enum


class RejectReason(str, Enum):
    """Why a sample was not stored. The values are the `reason` label of self-metrics."""

    #: Older than the newest sample of its series (and outside any out-of-order window).
    OUT_OF_ORDER = "out_of_order"
    #: Same timestamp as the newest sample of its series, with a different value.
    DUPLICATE = "duplicate_timestamp"
    #: Older than the head's lower bound: that range is already written to blocks.
    OUT_OF_BOUNDS = "out_of_bounds"
    #: Out of order and older than the out-of-order window allows.
    TOO_OLD = "too_old"
    #: The series reference is not (or no longer) known to the head.
    UNKNOWN_SERIES = "unknown_series"


class TSDBError(Exception):
    """Base class of the storage engine's errors."""


class ClosedError(TSDBError):
    """The database was closed."""


class CorruptionError(TSDBError):
    """A file on disk fails its checksum or does not follow its format.

    `path` names the file and `detail` what was wrong, with the values that matter
    (expected and found checksums, offsets, lengths).
    """

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail


class InputParseError(TSDBError):
    """Malformed backfill input (OpenMetrics text); `line` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message

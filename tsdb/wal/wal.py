"""The write-ahead log: numbered segment files of checksummed records, plus checkpoints.

Life cycle, as the head uses it::

    wal = WAL(directory)                 # reads nothing but the directory listing
    for rec in wal.replay():             # checkpoint, then segments; repairs a bad tail
        head.apply(rec)
    wal.log([encode_record(r), ...])     # every commit; appends to a fresh segment
    ...
    n = wal.cut_segment()                # when the head is cut into a block
    wal.checkpoint(n - 1, live_series)   # drop segments < n, keep what is still needed
    wal.close()

Durability follows `SyncPolicy`. Under every policy a record is handed to the operating
system (one ``write()`` per `WAL.log` call) before `log` returns, so it survives the
process being killed; only fsync, which makes it survive a power loss, is scheduled.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from enum import Enum
from types import TracebackType

from prometheus_client import CollectorRegistry

from ..errors import ClosedError, TSDBError
from .checkpoint import remove_obsolete, write_checkpoint
from .framing import FRAME_HEADER, SEGMENT_HEADER, check_frame
from .metrics import WALMetrics
from .reader import EndKind, SegmentEnd, SegmentReader
from .records import Record
from .segment import (
    checkpoint_name,
    create_segment,
    dir_size,
    fsync_dir,
    fsync_file,
    list_checkpoint_tmps,
    list_checkpoints,
    list_segments,
    segment_name,
    write_all,
)

#: Default segment size. Large enough that rotation (an fsync and a file creation) is
#: rare at any realistic ingest rate, small enough that a checkpoint frees space in
#: useful steps and a replay's read buffer stays modest.
DEFAULT_SEGMENT_SIZE = 64 << 20


class SyncPolicy(Enum):
    """When the WAL calls fsync on the segment being written."""

    #: On every `WAL.log` call, before it returns: no acknowledged record is lost to a
    #: power failure, at the price of one fsync per commit.
    ALWAYS = "always"
    #: On segment rotation, `WAL.sync`, `WAL.close`, and in `WAL.log` when `sync_interval`
    #: seconds have passed since the last fsync. A power failure loses at most the last
    #: interval; a killed process loses nothing.
    COMMIT = "commit"
    #: Only on `WAL.close` (and explicit `WAL.sync`). For tests and throw-away data.
    NEVER = "never"


class WAL:
    """An append-only log of encoded records in ``directory``.

    `log`, `sync`, `cut_segment`, `segments`, `size_bytes`, `checkpoint` and `close` are
    thread-safe; a checkpoint being written does not block `log`. `replay` must run (to
    completion, from one thread) before the first write: if it has not, the first write
    scans and repairs the log itself before appending, so that data written after a
    damaged tail can never be discarded by a later repair.

    The constructor only reads the directory (creating it if missing) and removes
    leftover ``checkpoint.*.tmp`` directories of an interrupted checkpoint; it never
    writes a segment. After a replay, writes go to a new segment after every existing
    one.
    """

    def __init__(
        self,
        directory: str,
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        sync: SyncPolicy = SyncPolicy.COMMIT,
        sync_interval: float = 10.0,
        registry: CollectorRegistry | None = None,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
        read_only: bool = False,
    ) -> None:
        """Open the WAL in `directory`.

        `segment_size` (bytes) is the size a segment may not exceed, unless one `log`
        batch alone is larger, in which case the batch gets a segment of its own.
        `sync_interval` (seconds) applies to `SyncPolicy.COMMIT`. `clock` returns
        monotonic seconds and exists for tests. Metrics are registered on `registry`
        unless it is None.

        With `read_only`, nothing in `directory` is ever created, changed or deleted, so
        the WAL of a running server can be inspected: a missing directory reads as empty,
        `replay` stops at a bad record instead of repairing (still logging and counting
        it), and every write raises `TSDBError`.
        """
        if segment_size < SEGMENT_HEADER.size + FRAME_HEADER.size:
            raise ValueError(f"segment_size {segment_size} is too small for one record")
        if sync_interval < 0:
            raise ValueError(f"sync_interval {sync_interval} must not be negative")
        self._dir = directory
        self._segment_size = segment_size
        self._policy = sync
        self._sync_interval = sync_interval
        self._clock = clock
        self._read_only = read_only
        self._log = logger if logger is not None else logging.getLogger(__name__)
        self._metrics = WALMetrics(registry)
        # Reentrant: the first write may run the verifying replay, which repairs under it.
        self._lock = threading.RLock()
        self._checkpoint_lock = threading.Lock()

        self._fd: int | None = None  # the segment being written
        self._index = 0  # its index (0: none open yet)
        self._seg_bytes = 0  # its size
        self._prepared = False  # the log was verified/repaired: writes may start
        self._writing = False  # a write started: replay is no longer allowed
        self._closed = False
        self._broken: BaseException | None = None  # a failed write or fsync
        self._reserved = 0  # segments up to this index belong to a checkpoint in progress
        self._last_sync = clock()

        if not read_only:
            os.makedirs(directory, exist_ok=True)
        for name in [] if read_only else list_checkpoint_tmps(directory):
            self._log.info("removing unfinished checkpoint %s", os.path.join(directory, name))
            shutil.rmtree(os.path.join(directory, name))
        self._size = self._disk_size()
        self._metrics.storage_size.set(self._size)
        existing = list_segments(directory)
        self._metrics.segment_current.set(existing[-1] if existing else 0)

    # --- reading -------------------------------------------------------------------------

    def replay(self) -> Iterator[Record]:
        """Yield the latest checkpoint's records, then those of every later segment, in order.

        A segment that ends in a torn or corrupt record is truncated after its last good
        record and every later segment is deleted; the event is logged as a warning and
        counted in ``vigilops_tsdb_wal_corruptions_total``, never raised. Damage inside
        the checkpoint skips the rest of the checkpoint (it is left as is); a missing
        segment in the sequence is reported the same way and the replay goes on. Segments
        and checkpoints that a finished checkpoint made obsolete are deleted.

        Raises `RuntimeError` if the log was already written to, `ClosedError` after
        `close`, and `UnsupportedFormatError` for a segment of an unknown format version.
        Stopping the iteration early is allowed; the first write then completes the scan.
        """
        with self._lock:
            self._check_open()
            if self._writing:
                raise RuntimeError("WAL.replay() must be called before the first write")
        return self._replay()

    def _replay(self) -> Iterator[Record]:
        checkpoints = list_checkpoints(self._dir)
        cp = checkpoints[-1] if checkpoints else None
        segments = list_segments(self._dir)
        if cp is not None:
            gone: list[int] = []
            old: list[int] = []
            if not self._read_only:
                gone, old = remove_obsolete(self._dir, cp, segments, checkpoints)
            segments = [s for s in segments if s > cp]
            if gone or old:
                self._log.info(
                    "removed %d segment(s) and %d checkpoint(s) replaced by checkpoint %08d",
                    len(gone), len(old), cp,
                )
            yield from self._replay_checkpoint(cp)
        expected = cp + 1 if cp is not None else (segments[0] if segments else 0)
        for i, index in enumerate(segments):
            if index != expected:
                self._metrics.corruptions.labels("missing_segment").inc()
                self._log.warning(
                    "WAL segments %08d to %08d are missing in %s; replaying the rest, "
                    "samples of series defined there will be unknown",
                    expected, index - 1, self._dir,
                )
            expected = index + 1
            path = os.path.join(self._dir, segment_name(index))
            try:
                data = _read_file(path)
            except FileNotFoundError:
                if not self._read_only:
                    raise
                continue  # a live writer's checkpoint removed it meanwhile
            reader = SegmentReader(data, path)
            yield from reader
            assert reader.end is not None
            if reader.end.kind is not EndKind.CLEAN:
                self._repair(index, reader.end, segments[i + 1 :])
                break
        self._prepared = True

    def _replay_checkpoint(self, cp: int) -> Iterator[Record]:
        cpdir = os.path.join(self._dir, checkpoint_name(cp))
        for index in list_segments(cpdir):
            path = os.path.join(cpdir, segment_name(index))
            reader = SegmentReader(_read_file(path), path)
            yield from reader
            end = reader.end
            assert end is not None
            if end.kind is not EndKind.CLEAN:
                self._metrics.corruptions.labels(end.reason).inc()
                self._log.warning(
                    "WAL checkpoint file %s is %s (%s); skipping the rest of the checkpoint, "
                    "series defined there will be unknown",
                    path, end.kind.value, end.detail,
                )
                return

    def _repair(self, index: int, end: SegmentEnd, later: Sequence[int]) -> None:
        path = os.path.join(self._dir, segment_name(index))
        if self._read_only:
            self._metrics.corruptions.labels(end.reason).inc()
            self._log.warning(
                "WAL segment %s is %s (%s): replay stops after %d bytes; not repaired "
                "(read-only), %d later segment(s) ignored",
                path, end.kind.value, end.detail, end.good_bytes, len(later),
            )
            return
        dropped = end.size - end.good_bytes
        with open(path, "r+b") as f:
            f.truncate(end.good_bytes)
            f.flush()
            fsync_file(f.fileno())
        for other in later:
            other_path = os.path.join(self._dir, segment_name(other))
            dropped += os.path.getsize(other_path)
            os.unlink(other_path)
        fsync_dir(self._dir)
        self._metrics.corruptions.labels(end.reason).inc()
        self._metrics.truncated_bytes.inc(dropped)
        self._log.warning(
            "WAL segment %s is %s (%s): truncated to %d bytes, %d bytes dropped, "
            "%d later segment(s) removed",
            path, end.kind.value, end.detail, end.good_bytes, dropped, len(later),
        )
        with self._lock:
            self._size = self._disk_size()
            self._metrics.storage_size.set(self._size)

    # --- writing -------------------------------------------------------------------------

    def log(self, records: Sequence[bytes]) -> None:
        """Append already-encoded records (frames from `encode_record`) with one write.

        The batch goes into a single segment: if it would push the current segment past
        `segment_size`, a new segment is started first. When `log` returns, the records
        are with the operating system (and on disk, per `SyncPolicy`). An empty batch does
        nothing. Raises `ValueError` for bytes that are not a frame, `ClosedError` after
        `close`, and the `OSError` of a failed write; after a failure that leaves the
        segment in an unknown state (a failed fsync, or a failed write that could not be
        undone) every later write raises `TSDBError` until the WAL is reopened.
        """
        if not records:
            return
        for frame in records:
            check_frame(frame)
        data = records[0] if len(records) == 1 else b"".join(records)
        with self._lock:
            self._start_write()
            if self._fd is None:
                self._open_segment(self._next_index())
            elif (
                self._seg_bytes > SEGMENT_HEADER.size
                and self._seg_bytes + len(data) > self._segment_size
            ):
                self._rotate()
            self._write(data)
            self._metrics.records_written.inc(len(records))
            self._metrics.bytes_written.inc(len(data))
            if self._policy is SyncPolicy.ALWAYS or (
                self._policy is SyncPolicy.COMMIT
                and self._clock() - self._last_sync >= self._sync_interval
            ):
                self._sync_locked()

    def sync(self) -> None:
        """fsync the segment being written, whatever the policy. A no-op after `close`."""
        with self._lock:
            if self._fd is not None and not self._closed:
                self._sync_locked()

    def cut_segment(self) -> int:
        """Close the current segment (fsynced unless the policy is NEVER), start a new one
        and return its index. Records logged afterwards go to the new segment."""
        with self._lock:
            self._start_write()
            if self._fd is not None:
                self._rotate()
            else:
                self._open_segment(self._next_index())
            return self._index

    def checkpoint(self, upto_segment: int, records: Iterable[bytes]) -> None:
        """Replace segments ``<= upto_segment`` with a checkpoint holding `records`.

        Writes ``checkpoint.{upto_segment:08d}/`` atomically (temporary directory, fsync
        of every file and of the directory, rename), then deletes the segments it replaces
        and older checkpoints. `records` are frames from `encode_record`; they are written
        as given and read back first by the next `replay`. The segment being written
        cannot be checkpointed: call `cut_segment` first and pass a smaller index.

        Raises `ValueError` if `upto_segment` is not below the segment being written or
        not above the latest checkpoint, or for a record that is not a frame; on failure
        no checkpoint is created and no segment deleted. Safe to call while other threads
        log; two checkpoints run one after the other.
        """
        with self._checkpoint_lock:
            with self._lock:
                self._start_write()
                if self._fd is not None and upto_segment >= self._index:
                    raise ValueError(
                        f"cannot checkpoint up to segment {upto_segment}: segment "
                        f"{self._index} is being written (call cut_segment() first)"
                    )
                existing = list_checkpoints(self._dir)
                if existing and upto_segment <= existing[-1]:
                    raise ValueError(
                        f"cannot checkpoint up to segment {upto_segment}: checkpoint "
                        f"{existing[-1]:08d} already covers it"
                    )
                # A segment opened while the checkpoint is written must come after it.
                self._reserved = max(self._reserved, upto_segment)
            try:
                write_checkpoint(self._dir, upto_segment, records, self._segment_size)
            except BaseException:
                self._metrics.checkpoints_failed.inc()
                raise
            self._metrics.checkpoints.inc()
            gone, old = remove_obsolete(
                self._dir, upto_segment, list_segments(self._dir), list_checkpoints(self._dir)
            )
            self._log.info(
                "WAL checkpoint %08d written; removed %d segment(s) and %d older checkpoint(s)",
                upto_segment, len(gone), len(old),
            )
            with self._lock:
                self._size = self._disk_size()
                self._metrics.storage_size.set(self._size)

    # --- state ---------------------------------------------------------------------------

    def segments(self) -> list[int]:
        """Indexes of the segment files present, ascending (the one being written included)."""
        with self._lock:
            return list_segments(self._dir)

    def size_bytes(self) -> int:
        """Bytes on disk of all segments and checkpoints."""
        with self._lock:
            return self._size

    @property
    def directory(self) -> str:
        return self._dir

    def close(self) -> None:
        """fsync and close the current segment. Idempotent; later writes raise `ClosedError`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._fd is not None:
                fd, self._fd = self._fd, None
                try:
                    if self._broken is None:
                        self._fsync(fd)
                        fsync_dir(self._dir)
                finally:
                    os.close(fd)

    def __enter__(self) -> WAL:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- internals (called with self._lock held) -----------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"WAL {self._dir} is closed")

    def _start_write(self) -> None:
        """Check that writing is possible; verify and repair the log before the first write."""
        self._check_open()
        if self._read_only:
            raise TSDBError(f"WAL {self._dir} is open read-only")
        if self._broken is not None:
            raise TSDBError(
                f"WAL {self._dir} is unusable after a failed write or fsync: {self._broken}"
            ) from self._broken
        if not self._prepared:
            for _ in self._replay():
                pass
        self._writing = True

    def _next_index(self) -> int:
        segments = list_segments(self._dir)
        checkpoints = list_checkpoints(self._dir)
        return (
            max(
                segments[-1] if segments else 0,
                checkpoints[-1] if checkpoints else 0,
                self._reserved,
            )
            + 1
        )

    def _open_segment(self, index: int) -> None:
        fd = create_segment(os.path.join(self._dir, segment_name(index)))
        if self._policy is not SyncPolicy.NEVER:
            try:
                fsync_dir(self._dir)
            except BaseException:
                os.close(fd)
                raise
        self._fd, self._index, self._seg_bytes = fd, index, SEGMENT_HEADER.size
        self._size += SEGMENT_HEADER.size
        self._metrics.segment_current.set(index)
        self._metrics.storage_size.set(self._size)

    def _rotate(self) -> None:
        assert self._fd is not None
        fd, self._fd = self._fd, None
        try:
            if self._policy is not SyncPolicy.NEVER:
                self._fsync_or_break(fd)
        finally:
            os.close(fd)
        self._open_segment(self._index + 1)

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        try:
            write_all(self._fd, data)
        except OSError as exc:
            self._metrics.writes_failed.inc()
            try:  # leave no partial record for the next batch to follow
                os.ftruncate(self._fd, self._seg_bytes)
            except OSError as undo:
                self._broken = exc
                self._log.error(
                    "WAL write to segment %08d failed (%s) and could not be undone (%s); "
                    "refusing further writes", self._index, exc, undo,
                )
            raise
        self._seg_bytes += len(data)
        self._size += len(data)
        self._metrics.storage_size.set(self._size)

    def _sync_locked(self) -> None:
        assert self._fd is not None
        self._fsync_or_break(self._fd)

    def _fsync_or_break(self, fd: int) -> None:
        try:
            self._fsync(fd)
        except OSError as exc:
            # After a failed fsync the kernel may have dropped the dirty pages: what the
            # segment holds is unknown, so nothing more may be appended to it.
            self._metrics.writes_failed.inc()
            self._broken = exc
            self._log.error(
                "fsync of WAL segment %08d failed (%s); refusing further writes",
                self._index, exc,
            )
            raise

    def _fsync(self, fd: int) -> None:
        start = time.perf_counter()
        fsync_file(fd)
        self._metrics.fsync_duration.observe(time.perf_counter() - start)
        self._last_sync = self._clock()

    def _disk_size(self) -> int:
        total = 0
        for index in list_segments(self._dir):
            try:
                total += os.path.getsize(os.path.join(self._dir, segment_name(index)))
            except FileNotFoundError:  # removed by a concurrent checkpoint
                pass
        for cp in list_checkpoints(self._dir):
            try:
                total += dir_size(os.path.join(self._dir, checkpoint_name(cp)))
            except FileNotFoundError:
                pass
        return total


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()

"""The database: one data directory holding the WAL, the head and immutable blocks.

`DB.open` replays the WAL into the head, loads blocks (moving corrupt ones aside), and
then serves the seams of `tsdb.api`: `appender()` and `querier(mint, maxt)`. `maintain()`
runs the background jobs: cut the head into blocks, merge blocks into longer ranges,
apply retention. It is safe to call from a worker thread while appends and queries go on.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry

from .api import AppendResult, Float64Array, Int64Array
from .block.meta import is_ulid
from .block.reader import BlockReader
from .block.writer import BlockWriteOptions, Chunk, StreamedSlice, write_block_slices
from .columns import SampleColumns, concat_columns
from .compaction_plan import plan_compaction
from .errors import ClosedError, CorruptionError, TSDBError
from .dirlock import is_held, try_hold
from .filenames import DELETING_SUFFIX, QUARANTINE_DIR, TMP_SUFFIX, WAL_DIR
from .head.appender import HeadAppender
from .head.cut_spool import CutSpool
from .head.head import Head, HeadOptions
from .metrics import TSDBMetrics
from .model import Labels, Matcher
from .postings import postings_for_matchers
from .querier import DBQuerier
from .wal.wal import WAL, SyncPolicy

log = logging.getLogger("vigilops.tsdb")

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@dataclass
class DBOptions:
    #: Width of the blocks the head is cut into, and the alignment of all block ranges.
    block_range_ms: int = 2 * HOUR_MS
    #: Ranges blocks are merged into, each a multiple of the previous one.
    compaction_ranges_ms: tuple[int, ...] = (2 * HOUR_MS, 6 * HOUR_MS, DAY_MS)
    #: Blocks whose whole range is older than this (relative to the newest sample) are
    #: deleted; 0 keeps everything.
    retention_ms: int = 15 * DAY_MS
    #: Largest total size of blocks (and WAL) in bytes; 0 means no size limit.
    retention_bytes: int = 0
    out_of_order_window_ms: int = 0
    wal_sync: SyncPolicy = SyncPolicy.COMMIT
    wal_segment_size: int = 64 << 20
    #: Verify every frame checksum of every block when opening (slower start, but a flipped
    #: bit is found before a query trips over it).
    verify_blocks_on_open: bool = True
    block_write: BlockWriteOptions = field(default_factory=BlockWriteOptions)
    head: HeadOptions = field(default_factory=HeadOptions)
    #: Called between the steps of a head cut (each shard decoded, each WAL checkpoint
    #: record) and after the head's seals and merges (unless `head.release_memory` is
    #: set) to hand the heap they freed back to the OS, so a peak is that of a step, not
    #: of freed memory piling up in the allocator (`vigilops server` passes
    #: glibc's malloc_trim: at 107,000 series a cut peaked 560 MiB above the head without
    #: it, 220 MiB with it).
    release_memory: Callable[[], object] | None = None


class _MeteredAppender:
    """Forwards to the head's appender and counts results in the engine's metrics."""

    def __init__(self, inner: HeadAppender, metrics: TSDBMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def refs(self, label_sets: Sequence[Labels]) -> Int64Array:
        return self._inner.refs(label_sets)

    def append(self, refs: Int64Array, t: int | Int64Array, values: Float64Array) -> AppendResult:
        return self._inner.append(refs, t, values)

    def commit(self) -> AppendResult:
        result = self._inner.commit()
        self._metrics.observe_append(result)
        return result

    def rollback(self) -> None:
        self._inner.rollback()


class DB:
    """Open with `DB.open`; `close` when done. Appenders and queriers are thread-safe to
    create from any thread."""

    def __init__(
        self, path: str, options: DBOptions, metrics: TSDBMetrics, wal: WAL | None
    ) -> None:
        self.path = path
        self.options = options
        self.metrics = metrics
        self.wal = wal
        head_options = options.head
        if head_options.release_memory is None and options.release_memory is not None:
            head_options = dataclasses.replace(head_options, release_memory=options.release_memory)
        self.head = Head(wal, head_options)
        self.blocks: list[BlockReader] = []
        self._blocks_lock = threading.Lock()
        self._maintain_lock = threading.Lock()
        self._lock_fd: int | None = None
        self.closed = False

    # -- opening and closing ---------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str,
        options: DBOptions | None = None,
        registry: CollectorRegistry | None = None,
        read_only: bool = False,
    ) -> DB:
        """Open (creating if needed) the data directory `path`.

        Takes an exclusive lock on the directory unless `read_only` (then the WAL is
        replayed into memory but never written).
        """
        opts = options or DBOptions()
        os.makedirs(path, exist_ok=True)
        lock_fd = None
        if not read_only:
            lock_fd = try_hold(path)
            if lock_fd is None:
                raise TSDBError(f"{path} is in use by another process")
        metrics = TSDBMetrics(registry)
        wal = None
        if not read_only:
            wal = WAL(
                os.path.join(path, WAL_DIR),
                segment_size=opts.wal_segment_size,
                sync=opts.wal_sync,
                registry=registry,
                logger=log,
            )
        db = cls(path, opts, metrics, wal)
        db._lock_fd = lock_fd
        try:
            db._clean_leftovers()
            db._load_blocks()
            db._replay_wal(read_only)
        except BaseException:
            db.close()
            raise
        db._update_gauges()
        return db

    def _clean_leftovers(self) -> None:
        for name in os.listdir(self.path):
            if name.endswith(TMP_SUFFIX) or name.endswith(DELETING_SUFFIX):
                full = os.path.join(self.path, name)
                if os.path.isdir(full) and is_held(full):
                    log.info("leaving %s: in use (an import running)", full)
                    continue
                log.info("removing incomplete %s", full)
                shutil.rmtree(full, ignore_errors=True)

    def _load_blocks(self) -> None:
        blocks = []
        for name in sorted(os.listdir(self.path)):
            full = os.path.join(self.path, name)
            if not is_ulid(name) or not os.path.isdir(full):
                continue
            block = self._open_block(full)
            if block is not None:
                blocks.append(block)
        blocks.sort(key=lambda b: (b.mint, b.maxt))
        self.blocks = blocks
        if blocks:
            self.head.min_valid_t = max(b.maxt for b in blocks)

    def _adopt_new_blocks(self) -> None:
        """Open the blocks that appeared in the data directory since (`vigilops tsdb
        import` moves each in whole, as Prometheus's backfill is moved in by hand)."""
        with self._blocks_lock:
            known = {os.path.basename(b.path) for b in self.blocks}
        for name in sorted(os.listdir(self.path)):
            full = os.path.join(self.path, name)
            if name in known or not is_ulid(name) or not os.path.isdir(full):
                continue
            block = self._open_block(full)
            if block is not None:
                log.info("opened block %s, written into %s by another process", name, self.path)
                self._add_block(block)

    def _open_block(self, block_dir: str) -> BlockReader | None:
        """The block in `block_dir`, checked as configured; None (and the block moved
        aside) if it is corrupt."""
        try:
            block = BlockReader(block_dir)
            if self.options.verify_blocks_on_open:
                block.verify()
        except (CorruptionError, OSError) as exc:
            self._quarantine(block_dir, str(exc))
            return None
        return block

    def _quarantine(self, block_dir: str, why: str) -> None:
        """Move a block that failed verification aside so the rest keeps working."""
        qdir = os.path.join(self.path, QUARANTINE_DIR)
        os.makedirs(qdir, exist_ok=True)
        dest = os.path.join(qdir, os.path.basename(block_dir))
        if os.path.exists(dest):
            dest += f".{int(time.time())}"
        log.error("block %s is corrupt (%s); moved to %s", block_dir, why, dest)
        self.metrics.corrupted_blocks.inc()
        try:
            os.rename(block_dir, dest)
        except OSError as exc:
            log.error("could not move corrupt block %s aside: %s", block_dir, exc)

    def _replay_wal(self, read_only: bool) -> None:
        wal_dir = os.path.join(self.path, WAL_DIR)
        if self.wal is None:
            if not os.path.isdir(wal_dir):
                return
            reader = WAL(wal_dir, registry=None, logger=log, read_only=True)
            try:
                result = self.head.replay(reader.replay())
            finally:
                reader.close()
        else:
            result = self.head.replay(self.wal.replay())
        dropped = result.rejected_total
        if dropped:
            self.metrics.wal_replay_rejected.inc(dropped)
        log.info(
            "replayed WAL: %d samples, %d series (%d samples already in blocks)",
            result.appended,
            self.head.num_series(),
            dropped,
        )

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with self._maintain_lock:
            self.head.close()
            if self.wal is not None:
                self.wal.close()
            for b in self.blocks:
                b.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> DB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the seams -------------------------------------------------------------------------
    def appender(self) -> _MeteredAppender:
        if self.closed:
            raise ClosedError("database is closed")
        return _MeteredAppender(self.head.appender(), self.metrics)

    def querier(self, mint: int, maxt: int) -> DBQuerier:
        if self.closed:
            raise ClosedError("database is closed")
        with self._blocks_lock:
            blocks = [b for b in self.blocks if b.maxt > mint and b.mint <= maxt]
        return DBQuerier(self.head, blocks, mint, maxt, self._corrupt_at_runtime)

    def _corrupt_at_runtime(self, block: BlockReader, exc: CorruptionError) -> None:
        """A query found a block failing its checksums: stop serving it, move it aside."""
        with self._blocks_lock:
            if block not in self.blocks:
                return
            self.blocks = [b for b in self.blocks if b is not block]
        self._quarantine(block.path, str(exc))

    # -- deletion --------------------------------------------------------------------------
    def delete(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> None:
        """Delete samples of matching series in [mint, maxt] (tombstones; data is dropped
        for good when the affected blocks are next compacted)."""
        with self._maintain_lock:
            with self._blocks_lock:
                blocks = [b for b in self.blocks if b.maxt > mint and b.mint <= maxt]
            for b in blocks:
                ids = b.series_in_range(b.postings(matchers), mint, maxt)
                b.add_tombstones(ids, mint, maxt)
            with self.head.lock:
                refs = postings_for_matchers(self.head.registry, matchers)
            self.head.delete(refs, mint, maxt)

    # -- background work -------------------------------------------------------------------
    def maintain(self) -> None:
        """Cut the head into blocks, merge blocks, apply retention. Safe to call any time."""
        if self.closed:
            return
        with self._maintain_lock:
            if self.closed:
                return
            try:
                self._adopt_new_blocks()
                self._cut_head()
                self._compact_blocks()
                self._apply_retention()
            except Exception:
                self.metrics.compactions_failed.inc()
                log.exception("storage maintenance failed; will retry")
            finally:
                self._update_gauges()

    def _cut_head(self, force: bool = False) -> None:
        rng = self.options.block_range_ms
        while True:
            hmin, hmax = self.head.mint, self.head.maxt
            if hmin > hmax:
                return
            if not force and hmax - hmin < rng * 3 // 2:
                return
            if force and hmax < (hmin // rng + 1) * rng:
                # Everything left is inside the newest, still open range.
                return
            start = (hmin // rng) * rng
            end = start + rng
            t0 = time.perf_counter()

            def persist(spool: CutSpool, start: int = start, end: int = end) -> None:
                # The block is readable before its samples leave the head: no read misses them.
                meta = write_block_slices(
                    self.path,
                    spool.slices(),
                    spool.labels_of,
                    start,
                    end,
                    1,
                    (),
                    self.options.block_write,
                )
                if meta is not None:
                    self._add_block(BlockReader(os.path.join(self.path, meta.ulid)))
                    self.metrics.compactions.labels("head").inc()
                    self.metrics.compaction_duration.observe(time.perf_counter() - t0)

            self.head.cut(
                end, persist, self.options.block_write.frame_span_ms, self.options.release_memory
            )
            self._checkpoint_wal()

    def sync_wal(self) -> None:
        """fsync the WAL now (the COMMIT policy otherwise syncs only when logging)."""
        if self.wal is not None and not self.closed:
            self.wal.sync()

    def flush_head(self) -> None:
        """Write every complete block range of the head to blocks now (tests, shutdown)."""
        with self._maintain_lock:
            self._cut_head(force=True)
            self._update_gauges()

    def _checkpoint_wal(self) -> None:
        if self.wal is None:
            return
        # Cutting the segment and taking the snapshot under one lock makes the checkpoint
        # exactly "everything logged before the new segment"; encoding it happens unlocked.
        with self.head.lock:
            new_segment = self.wal.cut_segment()
            state = self.head.checkpoint_state()
        records = state.records()
        release = self.options.release_memory
        if release is not None:
            records = _releasing(records, release)
        self.wal.checkpoint(new_segment - 1, records)

    def _add_block(self, block: BlockReader) -> None:
        with self._blocks_lock:
            self.blocks = sorted(self.blocks + [block], key=lambda b: (b.mint, b.maxt))

    def _remove_blocks(self, gone: Sequence[BlockReader]) -> None:
        ids = {b.ulid for b in gone}
        with self._blocks_lock:
            self.blocks = [b for b in self.blocks if b.ulid not in ids]
        for b in gone:
            # Rename first: a crash mid-delete leaves a *.deleting dir, removed at open.
            # Open queriers keep reading through their memory maps.
            doomed = b.path + DELETING_SUFFIX
            try:
                os.rename(b.path, doomed)
            except FileNotFoundError:
                continue
            shutil.rmtree(doomed, ignore_errors=True)

    # -- block compaction ------------------------------------------------------------------
    def plan_compaction(self) -> list[list[BlockReader]]:
        """Groups of blocks to merge next (see `compaction_plan.plan_compaction`)."""
        with self._blocks_lock:
            blocks = list(self.blocks)
        newest = max((b.maxt for b in blocks), default=0)
        if self.head.mint <= self.head.maxt:
            newest = max(newest, self.head.mint)
        groups = plan_compaction(
            [(b.mint, b.maxt) for b in blocks], self.options.compaction_ranges_ms, newest
        )
        return [[blocks[i] for i in g] for g in groups]

    def _compact_blocks(self) -> None:
        for _ in range(64):
            groups = self.plan_compaction()
            if not groups:
                return
            for group in groups:
                self._merge(group)

    def _merge(self, group: Sequence[BlockReader]) -> None:
        """Merge `group` into one block, one frame slice of time at a time and, within it,
        a range of series at a time: only about `BlockWriteOptions.batch_samples` of the
        blocks' samples are decoded at once, however many series and hours are merged.
        Equal (series, t) in several blocks: the later block in `group` wins, as it did
        when the whole range was merged at once (the slices partition time)."""
        t0 = time.perf_counter()
        labels, remaps = _merged_series(group)
        mint = min(b.mint for b in group)
        maxt = max(b.maxt for b in group)
        sources = sorted({s for b in group for s in (b.meta.sources or [b.ulid])})
        level = max(b.meta.level for b in group) + 1
        span = self.options.block_write.frame_span_ms
        batch = self.options.block_write.batch_samples

        def chunks(lo: int, hi: int) -> Iterator[Chunk]:
            # Series ranges of about `batch` samples, from the blocks' sample density.
            inside = [(b, remap) for b, remap in zip(group, remaps) if b.maxt > lo and b.mint < hi]
            density = sum(
                b.meta.num_samples * (min(b.maxt, hi) - max(b.mint, lo)) / max(b.maxt - b.mint, 1)
                for b, _ in inside
            ) / max(len(labels), 1)
            step = max(1, int(batch / max(density, 1.0)))
            for r0 in range(0, len(labels), step):
                parts: list[SampleColumns] = []
                for b, remap in inside:
                    a, z = np.searchsorted(remap, [r0, r0 + step]).tolist()
                    if a == z:
                        continue
                    cols = b.samples(np.arange(a, z, dtype=np.int64), lo, hi - 1)
                    if len(cols):
                        parts.append(SampleColumns(remap[cols.refs], cols.timestamps, cols.values))
                merged = concat_columns(parts)
                del parts
                if len(merged):
                    keys, starts = merged.series_bounds()
                    yield keys, np.diff(starts), merged.timestamps, merged.values

        def slices() -> Iterator[StreamedSlice]:
            for k in range(mint // span, (maxt - 1) // span + 1):
                yield StreamedSlice(chunks(max(k * span, mint), min((k + 1) * span, maxt)))

        meta = write_block_slices(
            self.path,
            slices(),
            lambda keys: [labels[i] for i in keys.tolist()],
            mint,
            maxt,
            level,
            sources,
            self.options.block_write,
        )
        if meta is not None:
            self._add_block(BlockReader(os.path.join(self.path, meta.ulid)))
        self._remove_blocks(group)
        self.metrics.compactions.labels("merge").inc()
        self.metrics.compaction_duration.observe(time.perf_counter() - t0)
        log.info(
            "compacted %d blocks into %s [%d, %d)",
            len(group),
            meta.ulid if meta else "nothing",
            mint,
            maxt,
        )

    # -- retention -------------------------------------------------------------------------
    def _apply_retention(self) -> None:
        with self._blocks_lock:
            blocks = list(self.blocks)
        if not blocks:
            return
        doomed: list[BlockReader] = []
        if self.options.retention_ms > 0:
            newest = max(b.maxt for b in blocks)
            if self.head.mint <= self.head.maxt:
                newest = max(newest, self.head.maxt)
            cutoff = newest - self.options.retention_ms
            expired = [b for b in blocks if b.maxt <= cutoff]
            if expired:
                self.metrics.retention_deletions.labels("time").inc(len(expired))
                doomed.extend(expired)
        if self.options.retention_bytes > 0:
            kept = [b for b in blocks if b not in doomed]
            total = sum(b.size_bytes() for b in kept)
            if self.wal is not None:
                total += self.wal.size_bytes()
            by_age = sorted(kept, key=lambda b: b.maxt)
            while by_age and total > self.options.retention_bytes:
                oldest = by_age.pop(0)
                total -= oldest.size_bytes()
                doomed.append(oldest)
                self.metrics.retention_deletions.labels("size").inc()
        if doomed:
            log.info("retention deletes %d blocks", len(doomed))
            self._remove_blocks(doomed)

    # -- statistics ------------------------------------------------------------------------
    def _update_gauges(self) -> None:
        m = self.metrics
        with self._blocks_lock:
            blocks = list(self.blocks)
        m.blocks.set(len(blocks))
        m.blocks_bytes.set(sum(b.size_bytes() for b in blocks))
        m.head_series.set(self.head.num_series())
        m.head_samples.set(self.head.store.num_samples())
        m.head_bytes.set(self.head.store.frame_bytes())

    def block_list(self) -> list[BlockReader]:
        with self._blocks_lock:
            return list(self.blocks)


def _releasing(items: Iterator[bytes], release: Callable[[], object]) -> Iterator[bytes]:
    """`items`, calling `release` after each is consumed."""
    for item in items:
        yield item
        release()


def _merged_series(group: Sequence[BlockReader]) -> tuple[list[Labels], list[npt.NDArray[np.int64]]]:
    """The label sets of every series of the blocks, sorted, and per block the rank in
    that list of each of its series ids."""
    per_block = [[b.labels(sid) for sid in range(b.index.num_series)] for b in group]
    labels = sorted({ls for block_labels in per_block for ls in block_labels})
    rank = {ls: i for i, ls in enumerate(labels)}
    remaps = [np.array([rank[ls] for ls in block_labels], dtype=np.int64) for block_labels in per_block]
    return labels, remaps


"""The head: recent samples in memory, written through the WAL, queryable at once.

`Head` owns the series registry, the sample store, head tombstones and the WAL; its
appenders validate batches with vectorized comparisons against each series' newest sample
and commit under one lock. `cut` hands the oldest block range to the block writer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ..api import AppendResult
from ..errors import ClosedError, RejectReason
from ..model import MAX_TIME, MIN_TIME, Labels
from ..wal.records import Record, SamplesRecord, SeriesRecord, TombstonesRecord, encode_record
from ..wal.wal import WAL
from .appender import HeadAppender, validate
from .registry import SeriesRegistry
from ..block.writer import BlockWriteOptions
from ..columns import SampleColumns
from .cut_spool import CutSpool
from .store import SampleStore, StoreSnapshot, plan_cut

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

log = logging.getLogger("vigilops.tsdb.head")


@dataclass
class HeadOptions:
    #: Samples older than the newest sample of their series by at most this many
    #: milliseconds are accepted out of order (0: none, Prometheus's default).
    out_of_order_window_ms: int = 0
    seal_samples_per_series: int = 16
    zstd_level: int = 3
    #: Seal and merge frames on a background thread, so that a commit (a scrape) never
    #: waits for encoding; False seals inside the commit (simpler, for tools and tests).
    background_seal: bool = True
    #: Called by the background sealer after each round of seals and merges, to hand the
    #: heap their temporaries freed back to the OS (`DBOptions.release_memory`).
    release_memory: Callable[[], object] | None = None


@dataclass(frozen=True)
class Batch:
    """Validated samples of one `append` call."""

    refs: I64
    timestamps: I64  # one per sample
    values: F64


@dataclass
class Tombstones:
    """Deleted intervals per series reference, inclusive on both ends."""

    intervals: dict[int, list[tuple[int, int]]] = field(default_factory=dict)

    def add(self, ref: int, mint: int, maxt: int) -> None:
        self.intervals.setdefault(ref, []).append((mint, maxt))

    def apply(self, cols: SampleColumns) -> SampleColumns:
        if not self.intervals or not len(cols):
            return cols
        keep = np.ones(len(cols), dtype=bool)
        refs, starts = cols.series_bounds()
        for i, ref in enumerate(refs.tolist()):
            spans = self.intervals.get(ref)
            if not spans:
                continue
            a, b = int(starts[i]), int(starts[i + 1])
            t = cols.timestamps[a:b]
            for lo, hi in spans:
                keep[a:b] &= ~((t >= lo) & (t <= hi))
        return cols if keep.all() else cols.select(keep)


@dataclass(frozen=True)
class HeadCheckpoint:
    refs: I64
    labels: list[Labels]
    samples: StoreSnapshot
    tombstones: dict[int, list[tuple[int, int]]]

    def records(self) -> Iterator[bytes]:
        """WAL records that rebuild this head: series, samples, tombstones. Made one at a
        time as the checkpoint writes them: only a shard's samples are ever decoded, and
        no more than one record's encoding is held."""
        step = 50_000
        for i in range(0, len(self.refs), step):
            yield encode_record(SeriesRecord(self.refs[i : i + step], self.labels[i : i + step]))
        step = 1 << 18  # a record's encoding needs ~100 bytes a sample while it is made
        for cols in self.samples.by_shard():
            for i in range(0, len(cols), step):
                yield encode_record(
                    SamplesRecord(
                        cols.refs[i : i + step],
                        cols.timestamps[i : i + step],
                        cols.values[i : i + step],
                    )
                )
        for ref, spans in self.tombstones.items():
            yield encode_record(
                TombstonesRecord(
                    np.full(len(spans), ref, dtype=np.int64),
                    np.array([lo for lo, _ in spans], dtype=np.int64),
                    np.array([hi for _, hi in spans], dtype=np.int64),
                )
            )


class Head:
    def __init__(
        self,
        wal: WAL | None,
        options: HeadOptions | None = None,
        on_append: Iterable[object] = (),
    ) -> None:
        self.options = options or HeadOptions()
        self.wal = wal
        self.lock = threading.RLock()
        self.registry = SeriesRegistry()
        self.store = SampleStore(self.options.seal_samples_per_series, self.options.zstd_level)
        self.tombstones = Tombstones()
        #: Samples older than this are out of bounds: that range is in blocks already.
        self.min_valid_t = MIN_TIME
        #: Bumped by every commit; appenders skip re-validation if nothing changed.
        self.generation = 0
        self.closed = False
        self.totals = AppendResult()
        self._seal_wakeup = threading.Event()
        self._sealer_idle = threading.Event()
        self._sealer_idle.set()
        self._sealer: threading.Thread | None = None
        #: One cut at a time; while `_cutting`, seals and merges are not published.
        self._cut_lock = threading.Lock()
        self._cutting = False

    # -- writing ---------------------------------------------------------------------------
    def appender(self) -> HeadAppender:
        if self.closed:
            raise ClosedError("head is closed")
        return HeadAppender(self)

    def commit(self, batches: Sequence[Batch], generation: int) -> AppendResult:
        """Log and apply validated batches; called by `HeadAppender.commit`."""
        result = AppendResult()
        with self.lock:
            if self.closed:
                raise ClosedError("head is closed")
            reg = self.registry
            touched = np.concatenate([b.refs for b in batches])
            saved_t = reg.last_t[touched].copy()
            saved_v = reg.last_v[touched].copy()
            try:
                final = self._settle(batches, generation, result)
                if not final:
                    return result
                records, unlogged = self._records_for(final)
                if self.wal is not None:
                    self.wal.log(records)
                reg.logged[unlogged] = True
            except BaseException:
                # Nothing reached the log: undo the bookkeeping so the batch can be retried.
                reg.last_t[touched] = saved_t
                reg.last_v[touched] = saved_v
                raise
            for b in final:
                self.store.add(b.refs, b.timestamps, b.values)
                result.appended += len(b.refs)
            self.generation += 1
            if not self._cutting and self.store.should_seal(len(reg)):
                if self.options.background_seal:
                    self.store.detach_log()
                    self._wake_sealer()
                else:
                    self.store.seal()
            self.totals.merge(result)
        return result

    # -- sealing in the background ---------------------------------------------------------
    def _wake_sealer(self) -> None:
        if self._sealer is None:
            self._sealer = threading.Thread(target=self._seal_loop, name="head-sealer", daemon=True)
            self._sealer.start()
        self._sealer_idle.clear()
        self._seal_wakeup.set()

    def wait_sealer_idle(self, timeout: float | None = None) -> bool:
        """Wait until the background sealer has finished its round (seals, merges and the
        memory release after them); False on timeout. For tools and benchmarks that model
        the pause a server has between scrapes."""
        return self._sealer_idle.wait(timeout)

    def _seal_loop(self) -> None:
        while True:
            self._seal_wakeup.wait()
            self._seal_wakeup.clear()
            if self.closed:
                self._sealer_idle.set()
                return
            try:
                self.drain_seals()
                if self.options.release_memory is not None:
                    self.options.release_memory()
            except Exception:  # never lose the thread; the data stays in `pending`
                log.exception("sealing head frames failed; will retry on the next seal")
            finally:
                if not self._seal_wakeup.is_set():
                    self._sealer_idle.set()

    def drain_seals(self) -> None:
        """Encode pending logs into frames and merge full levels; only the publishing of
        each result takes the lock. Safe to call from any thread (results of concurrent
        callers for the same part are published once)."""
        store = self.store
        while True:
            with self.lock:
                part = store.pending[0] if store.pending and not self._cutting else None
            if part is None:
                break
            frames = store.encode_part(part)
            with self.lock:
                if self._cutting:  # the cut replaces what was encoded; it wakes us after
                    return
                store.publish_sealed(part, frames)
        while True:
            with self.lock:
                group = None if self._cutting else store.merge_candidates()
            if group is None:
                return
            merged = store.encode_merge(group)
            with self.lock:
                if self._cutting:
                    return
                store.publish_merge(group, merged)

    def _settle(
        self, batches: Sequence[Batch], generation: int, result: AppendResult
    ) -> list[Batch]:
        final: list[Batch] = []
        # Batches were validated when staged. Check again against what is applied now only
        # if another commit came in between, or if a series has samples in more than one
        # batch (a scrape's samples and its report series never share one).
        recheck = generation != self.generation
        if not recheck and len(batches) > 1:
            recheck = self.registry.has_duplicates(np.concatenate([b.refs for b in batches]))
        for b in batches:
            if recheck:
                b, r = self._revalidate(b)
                result.merge(r)
            if len(b.refs):
                final.append(b)
                self._apply_last(b)
        return final

    def _records_for(self, final: list[Batch]) -> tuple[list[bytes], I64]:
        """WAL records for `final`, and the refs whose series record they include."""
        reg = self.registry
        records: list[bytes] = []
        all_refs = final[0].refs if len(final) == 1 else np.concatenate([b.refs for b in final])
        new = ~reg.logged[all_refs]
        # Usually none: np.unique costs more than the check on every commit.
        unlogged = np.unique(all_refs[new]) if new.any() else all_refs[:0]
        if len(unlogged):
            labels = [reg.labels_of(int(r)) for r in unlogged]
            records.append(
                encode_record(SeriesRecord(unlogged, [ls for ls in labels if ls is not None]))
            )
        for b in final:
            ts = b.timestamps
            if len(ts) > 1 and ts[0] == ts[-1] and (ts == ts[0]).all():
                ts = ts[:1]
            records.append(encode_record(SamplesRecord(b.refs, ts, b.values)))
        return records, unlogged

    def _apply_last(self, b: Batch) -> None:
        reg = self.registry
        # refs are unique within a validated batch except for array-timestamp batches,
        # which are sorted by (ref, t): the last write per ref is the newest sample.
        newer = b.timestamps >= reg.last_t[b.refs]
        r = b.refs[newer]
        reg.last_t[r] = b.timestamps[newer]
        reg.last_v[r] = b.values[newer].view(np.uint64)

    def _revalidate(self, b: Batch) -> tuple[Batch, AppendResult]:
        keep, result = validate(self, b.refs, b.timestamps, b.values)
        if keep.all():
            return b, result
        return Batch(b.refs[keep], b.timestamps[keep], b.values[keep]), result

    # -- reading ---------------------------------------------------------------------------
    def snapshot(self) -> tuple[StoreSnapshot, Tombstones]:
        with self.lock:
            return self.store.snapshot(), self._tombstones_copy()

    def _tombstones_copy(self) -> Tombstones:
        return Tombstones({k: list(v) for k, v in self.tombstones.intervals.items()})

    @property
    def mint(self) -> int:
        return self.store.mint

    @property
    def maxt(self) -> int:
        return self.store.maxt

    def num_series(self) -> int:
        return len(self.registry)

    # -- deletion --------------------------------------------------------------------------
    def delete(self, refs: I64, mint: int, maxt: int) -> None:
        """Tombstone [mint, maxt] of `refs` (WAL-logged, applied at read and at cut)."""
        if not len(refs):
            return
        with self.lock:
            if self.wal is not None:
                rec = TombstonesRecord(
                    refs,
                    np.full(len(refs), mint, dtype=np.int64),
                    np.full(len(refs), maxt, dtype=np.int64),
                )
                self.wal.log([encode_record(rec)])
            for r in refs.tolist():
                self.tombstones.add(r, mint, maxt)

    # -- cutting into blocks ---------------------------------------------------------------
    def cut(
        self,
        cut_t: int,
        persist: Callable[[CutSpool], None] | None = None,
        span_ms: int = BlockWriteOptions.frame_span_ms,
        release_memory: Callable[[], object] | None = None,
    ) -> CutSpool:
        """Remove samples with t < cut_t and return them (tombstones applied), spooled in
        label order for a block with frame slices of `span_ms` (`CutSpool`).

        Series left without samples and not written to since `cut_t` are forgotten.
        Raises nothing on an empty range: the spool is then empty.

        `persist(spool)`, if given, runs before the samples leave the head (the database
        writes and opens their block there), so reads never miss them; if it raises, the
        head keeps them and the exception propagates.

        `release_memory`, if given, is called after each shard is spooled.

        Appends go on throughout: the range is decoded (one shard at a time, into the
        spool) and the frames that straddle `cut_t` re-encoded on a snapshot, outside the
        lock, from the moment samples older than `cut_t` are refused; seals and merges
        wait for the cut (their results would describe frames the cut replaces), then
        resume.
        """
        with self._cut_lock:
            with self.lock:
                self.min_valid_t = max(self.min_valid_t, cut_t)
                self.generation += 1  # batches staged before are checked against it again
                self.store.detach_log()
                snap = self.store.snapshot()
                tombstones = self._tombstones_copy()
                refs = self.registry.live_refs()
                labels = [self._labels_of(r) for r in refs.tolist()]
                per_series = _samples_per_series(self.store, cut_t, len(refs))
                self._cutting = True
            try:
                spool = CutSpool.for_series(refs, labels, span_ms, per_series)

                def take(cols: SampleColumns) -> None:
                    spool.add(tombstones.apply(cols))
                    if release_memory is not None:
                        release_memory()

                plan = plan_cut(snap, cut_t, self.store.zstd_level, take)
                if persist is not None and spool.num_samples:
                    persist(spool)
                with self.lock:
                    self.store.apply_cut(plan)
                    self._after_cut(cut_t)
            finally:
                with self.lock:
                    self._cutting = False
                    if self.options.background_seal and self.store.pending:
                        self._wake_sealer()
            return spool

    def _labels_of(self, ref: int) -> Labels:
        ls = self.registry.labels_of(ref)
        assert ls is not None, f"live series {ref} without labels"
        return ls

    def _after_cut(self, cut_t: int) -> None:
        """Under the lock, once a cut's samples left: tombstones and series that ended."""
        self.tombstones.intervals = {
            r: [(lo, hi) for lo, hi in spans if hi >= cut_t]
            for r, spans in self.tombstones.intervals.items()
        }
        self.tombstones.intervals = {k: v for k, v in self.tombstones.intervals.items() if v}
        self._gc(cut_t)

    def _gc(self, cut_t: int) -> None:
        reg = self.registry
        live = reg.live_refs()
        stale = live[reg.last_t[live] < cut_t]
        if len(stale):
            reg.remove(stale)
            log.debug("head GC removed %d series", len(stale))

    def checkpoint_state(self) -> HeadCheckpoint:
        """A consistent, cheap snapshot of the head for a WAL checkpoint; encode it with
        `HeadCheckpoint.records` outside the lock so appends go on meanwhile."""
        with self.lock:
            reg = self.registry
            live = reg.live_refs()
            labels = [reg.labels_of(int(r)) for r in live]
            return HeadCheckpoint(
                refs=live,
                labels=[ls for ls in labels if ls is not None],
                samples=self.store.snapshot(),
                tombstones={k: list(v) for k, v in self.tombstones.intervals.items()},
            )

    # -- WAL replay ------------------------------------------------------------------------
    def replay(self, records: Iterable[Record]) -> AppendResult:
        """Apply WAL records (series, samples, tombstones) without logging them again."""
        result = AppendResult()
        reg = self.registry
        with self.lock:
            for rec in records:
                if isinstance(rec, SeriesRecord):
                    for ref, ls in zip(rec.refs.tolist(), rec.labels):
                        reg.create_with_ref(ls, ref)
                    reg.logged[rec.refs] = True
                elif isinstance(rec, SamplesRecord):
                    ts = rec.timestamps
                    if len(ts) == 1 and len(rec.refs) != 1:
                        ts = np.full(len(rec.refs), ts[0], dtype=np.int64)
                    keep, r = validate(self, rec.refs, ts, rec.values, replay=True)
                    result.merge(r)
                    b = Batch(rec.refs[keep], ts[keep], rec.values[keep])
                    if len(b.refs):
                        self._apply_last(b)
                        self.store.add(b.refs, b.timestamps, b.values)
                        result.appended += len(b.refs)
                        if self.store.should_seal(len(reg)):
                            self.store.seal()
                elif isinstance(rec, TombstonesRecord):
                    for r_, lo, hi in zip(rec.refs.tolist(), rec.mint.tolist(), rec.maxt.tolist()):
                        self.tombstones.add(r_, lo, hi)
            self.generation += 1
        return result

    def close(self) -> None:
        with self.lock:
            self.closed = True
        if self._sealer is not None:
            self._seal_wakeup.set()
            self._sealer.join(timeout=60)


def _samples_per_series(store: SampleStore, cut_t: int, series: int) -> int:
    """About how many samples a series has before `cut_t` (sizes a cut's spool)."""
    if store.mint > store.maxt or not series:
        return 1
    share = (cut_t - store.mint) / (store.maxt - store.mint + 1)
    return max(1, int(store.num_samples() * min(max(share, 0.0), 1.0)) // series)


def time_bounds(cols: SampleColumns) -> tuple[int, int]:
    if not len(cols):
        return MAX_TIME, MIN_TIME
    return int(cols.timestamps.min()), int(cols.timestamps.max())


__all__ = ["Head", "HeadOptions", "Batch", "Tombstones", "RejectReason", "time_bounds"]

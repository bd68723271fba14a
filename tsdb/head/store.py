"""Where the head keeps its samples: an open log of recent samples plus sealed frames.

New samples are copied into the open log (`tsdb.head.log`: compact columns of reference,
timestamp and value in fixed-size pages, arrival order): appending a scrape is a slice
assignment. When the log holds about `seal_samples_per_series` samples per live series, it
is *sealed*: its samples are sorted by (series, time) and encoded into compressed frames
(`tsdb.chunks.frame`), one per *shard*, a run of `SHARD_SERIES` consecutive series
references. Each shard's frames are merged like a binary counter: `FANOUT` frames of one
level become one frame of the next, up to `MAX_LEVEL`, so memory per sample falls to that
of a well-filled chunk while each sample is re-encoded only a few times.

Shards bound the work of every seal and merge, and of its temporaries, to one shard's
samples whatever the number of series (one frame over all series needed ~80 bytes of
temporaries per sample merged: 1.8 GB for a level-2 merge at 107,000 series), and a query
decodes only the shards of the series it asks for.

The store never modifies an array a snapshot may be reading: frames are immutable, each
shard's frame list is replaced (never mutated) when it changes, and log pages are only
written past their fill mark, so a `StoreSnapshot` taken under the head's lock stays valid
without copying.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..chunks.frame import decode_frame, encode_frame, open_frame
from ..columns import (
    AnyPart,
    DeferredPart,
    SampleColumns,
    concat_columns,
    concat_time_ordered,
    find_positions,
    sort_dedup,
    strictly_ordered_columns,
)
from ..model import MAX_TIME, MIN_TIME
from .log import LogPart, OpenLog

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
F64 = npt.NDArray[np.float64]

#: Frames merged into one of the next level. With a seal every 16 samples per series,
#: levels hold 16, 64, 256 and 1,024 samples per series: a one-hour 15 s series
#: (240 samples) ends up in a handful of frames, each sample re-encoded at most 3 times.
FANOUT = 4
MAX_LEVEL = 3

#: A shard is the series references r with r >> SHARD_BITS equal: 2,048 series. Its
#: largest merge (4 x 256 samples a series) then handles ~2 M samples; the frames of
#: 107,000 series number a few hundred.
SHARD_BITS = 11
SHARD_SERIES = 1 << SHARD_BITS


@dataclass(frozen=True)
class HeadFrame:
    """A sealed, compressed frame: the samples of series `refs` (sorted, all of one
    shard) in [mint, maxt]."""

    refs: I32
    mint: int
    maxt: int
    samples: int
    level: int
    data: bytes

    @property
    def shard(self) -> int:
        return int(self.refs[0]) >> SHARD_BITS


def encode_columns(cols: SampleColumns, level: int, zstd_level: int = 3) -> HeadFrame:
    refs, starts = cols.series_bounds()
    counts = np.diff(starts)
    data = encode_frame(counts, cols.timestamps, cols.values, level=zstd_level)
    return HeadFrame(
        refs=refs.astype(np.int32),
        mint=int(cols.timestamps.min()),
        maxt=int(cols.timestamps.max()),
        samples=len(cols),
        level=level,
        data=data,
    )


def decode_columns(frame: HeadFrame) -> SampleColumns:
    d = decode_frame(frame.data, where="head frame")
    return SampleColumns(np.repeat(frame.refs.astype(np.int64), d.counts), d.timestamps, d.values)


@dataclass(frozen=True)
class StoreSnapshot:
    #: Each shard's frames, oldest first.
    shards: Mapping[int, tuple[HeadFrame, ...]]
    #: Detached logs being sealed, oldest first, then the open log.
    logs: tuple[LogPart, ...]

    def gather(self, wanted: I64, mint: int, maxt: int) -> SampleColumns:
        """Samples of the series `wanted` (sorted refs) in [mint, maxt], sorted by (ref, t)."""
        parts_r: list[I64] = []
        parts_t: list[I64] = []
        parts_v: list[F64] = []
        if len(wanted) and self.shards:
            keys = wanted >> SHARD_BITS
            cuts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
            for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(wanted)]):
                frames = self.shards.get(int(keys[lo]), ())
                in_shard = wanted[lo:hi]
                for frame in frames:
                    if frame.maxt < mint or frame.mint > maxt:
                        continue
                    positions, found = find_positions(frame.refs.astype(np.int64), in_shard)
                    if not len(found):
                        continue
                    d = decode_frame(frame.data, where="head frame", select=positions)
                    parts_r.append(np.repeat(found, d.counts))
                    parts_t.append(d.timestamps)
                    parts_v.append(d.values)
        for log in self.logs:
            for cols in log.select_refs(wanted):
                parts_r.append(cols.refs)
                parts_t.append(cols.timestamps)
                parts_v.append(cols.values)
        if not parts_r:
            return SampleColumns.empty()
        r = np.concatenate(parts_r)
        t = np.concatenate(parts_t)
        v = np.concatenate(parts_v)
        if mint > MIN_TIME or maxt < MAX_TIME:
            m = (t >= mint) & (t <= maxt)
            r, t, v = r[m], t[m], v[m]
        return sort_dedup(r, t, v)


    def by_shard(self) -> Iterator[SampleColumns]:
        """Everything in the snapshot, one shard at a time (ascending), each sorted by
        (ref, t): what a checkpoint writes, without decoding the whole head at once."""
        log_groups = [dict(log.by_shard(SHARD_BITS)) for log in self.logs]
        for shard in sorted(set(self.shards).union(*log_groups)):
            parts = [decode_columns(f) for f in self.shards.get(shard, ())]
            # Logs are in arrival order: sort them before they join sorted frame columns.
            parts.extend(_sorted(g.pop(shard)) for g in log_groups if shard in g)
            yield concat_columns(parts)

    def all_samples(self) -> SampleColumns:
        """Everything in the snapshot, sorted by (ref, t)."""
        return concat_columns(list(self.by_shard()))


class SampleStore:
    """Not thread-safe; the head serialises writers with its lock."""

    def __init__(self, seal_samples_per_series: int = 16, zstd_level: int = 3) -> None:
        self.seal_samples_per_series = seal_samples_per_series
        self.zstd_level = zstd_level
        #: Each shard's frames, oldest first; a shard's tuple is replaced, never mutated.
        self.shards: dict[int, tuple[HeadFrame, ...]] = {}
        #: Logs detached by `detach_log`, oldest first, until their frame is published.
        self.pending: list[LogPart] = []
        self._log = OpenLog()
        self.mint = MAX_TIME
        self.maxt = MIN_TIME

    @property
    def log_len(self) -> int:
        return len(self._log)

    def num_samples(self) -> int:
        return (
            len(self._log)
            + sum(len(p) for p in self.pending)
            + sum(f.samples for f in self.frames())
        )

    def frames(self) -> Iterator[HeadFrame]:
        for shard in sorted(self.shards):
            yield from self.shards[shard]

    def frame_count(self) -> int:
        return sum(len(fs) for fs in self.shards.values())

    def frame_bytes(self) -> int:
        return sum(len(f.data) + f.refs.nbytes for f in self.frames())

    def add(self, refs: I64, ts: I64, vals: F64) -> None:
        """Append validated samples (arrays of equal length)."""
        if not len(refs):
            return
        tmin, tmax = int(ts.min()), int(ts.max())
        self._log.add(refs, ts, vals, tmin, tmax)
        self.mint = min(self.mint, tmin)
        self.maxt = max(self.maxt, tmax)

    def should_seal(self, live_series: int) -> bool:
        want = max(4096, live_series * self.seal_samples_per_series)
        # Also when pages were started for few samples each (timestamps far apart).
        return len(self._log) >= want or self._log.capacity() > 2 * want + self._log.page_samples

    def detach_log(self) -> LogPart | None:
        """Move the open log to `pending` (cheap: no copy) and start a new one."""
        if not len(self._log):
            return None
        part = self._log.detach()
        self.pending.append(part)
        return part

    def publish_sealed(self, part: LogPart, frames: list[HeadFrame]) -> bool:
        """Replace the pending `part` by its frames (one per shard it held samples of);
        False if a cut replaced the part meanwhile (the caller's work is then discarded)."""
        if not self.pending or self.pending[0] is not part:
            return False
        self.pending.pop(0)
        for frame in frames:
            shard = frame.shard
            self.shards[shard] = (*self.shards.get(shard, ()), frame)
        return True

    def merge_candidates(self) -> list[HeadFrame] | None:
        """The trailing frames of one level of one shard to merge next, if a level is full."""
        for frames in self.shards.values():
            last = frames[-1].level
            if last >= MAX_LEVEL:
                continue
            tail = 0
            for f in reversed(frames):
                if f.level != last:
                    break
                tail += 1
            if tail >= FANOUT:
                return list(frames[-tail:])
        return None

    def publish_merge(self, group: list[HeadFrame], merged: HeadFrame) -> bool:
        """Replace `group` (still its shard's trailing frames) by `merged`; False if they
        changed."""
        shard = merged.shard
        frames = self.shards.get(shard, ())
        k = len(group)
        if len(frames) < k or any(a is not b for a, b in zip(frames[-k:], group)):
            return False
        self.shards[shard] = (*frames[:-k], merged)
        return True

    def encode_part(self, part: LogPart) -> list[HeadFrame]:
        """One level-0 frame per shard the part holds samples of."""
        return [
            encode_columns(_sorted(cols), 0, self.zstd_level)
            for _, cols in part.by_shard(SHARD_BITS)
        ]

    def encode_merge(self, group: list[HeadFrame]) -> HeadFrame:
        merged = concat_columns([decode_columns(f) for f in group])
        return encode_columns(merged, group[0].level + 1, self.zstd_level)

    def seal(self) -> None:
        """Seal synchronously: the open log and everything pending, then merge levels."""
        self.detach_log()
        while self.pending:
            part = self.pending[0]
            self.publish_sealed(part, self.encode_part(part))
        while (group := self.merge_candidates()) is not None:
            self.publish_merge(group, self.encode_merge(group))

    def snapshot(self) -> StoreSnapshot:
        logs = (*self.pending, self._log.view())
        return StoreSnapshot(dict(self.shards), logs)

    def all_samples(self) -> SampleColumns:
        """Everything in the store, sorted by (ref, t)."""
        return self.snapshot().all_samples()

    def split_before(self, cut_t: int) -> SampleColumns:
        """Remove and return the samples with t < cut_t; keep the rest."""
        self.detach_log()
        taken: list[SampleColumns] = []
        plan = plan_cut(self.snapshot(), cut_t, self.zstd_level, taken.append)
        self.apply_cut(plan)
        if len(taken) <= 1:
            return taken[0] if taken else SampleColumns.empty()
        return SampleColumns(  # shards are disjoint and ascending: laid end to end, sorted
            np.concatenate([c.refs for c in taken]),
            np.concatenate([c.timestamps for c in taken]),
            np.concatenate([c.values for c in taken]),
        )

    def apply_cut(self, plan: CutPlan) -> None:
        """Put in place what `plan_cut` planned. Its snapshot must still describe the frames
        and the oldest pending logs: no seal or merge may have been published since (the
        head holds them off while it cuts); logs detached since are kept after it."""
        snap = plan.snapshot
        pending = snap.logs[:-1]  # the last is the open log's view, empty (`plan_cut`)
        same_frames = self.shards.keys() == snap.shards.keys() and all(
            self.shards[k] is v for k, v in snap.shards.items()
        )
        same_logs = len(self.pending) >= len(pending) and all(
            a is b for a, b in zip(self.pending, pending)
        )
        if not (same_frames and same_logs):
            raise RuntimeError("head frames changed during a cut")
        self.shards = plan.shards
        self.pending = [*plan.pending, *self.pending[len(pending):]]
        self._recompute_bounds()

    def _recompute_bounds(self) -> None:
        mins = [f.mint for f in self.frames()]
        maxs = [f.maxt for f in self.frames()]
        for part in (*self.pending, self._log.view()):
            b = part.bounds()
            if b is not None:
                mins.append(b[0])
                maxs.append(b[1])
        self.mint = min(mins) if mins else MAX_TIME
        self.maxt = max(maxs) if maxs else MIN_TIME


@dataclass(frozen=True)
class CutPlan:
    """A head cut worked out from a snapshot (`plan_cut`), to be put in place by
    `SampleStore.apply_cut`: what the frames and pending logs of the snapshot become."""

    snapshot: StoreSnapshot
    shards: dict[int, tuple[HeadFrame, ...]]
    pending: list[LogPart]


def plan_cut(
    snap: StoreSnapshot,
    cut_t: int,
    zstd_level: int = 3,
    take: Callable[[SampleColumns], None] | None = None,
) -> CutPlan:
    """Split the snapshot's samples at `cut_t`: those before it are taken, handed to
    `take` one shard at a time (ascending shards, each sorted by (ref, t), one sample per
    (ref, t)), so no more than a shard's are decoded at once; frames that straddle `cut_t`
    are re-encoded with the rest, and logs keep the rest. Reads the snapshot only (its
    frames and log pages are immutable), so it runs without the head's lock."""
    if len(snap.logs[-1]):
        raise ValueError("detach the open log before planning a cut")
    pending: list[LogPart] = []
    log_taken: list[tuple[I64, SampleColumns]] = []  # (each sample's shard, columns)
    for part in snap.logs[:-1]:
        cols = part.columns()
        old = cols.timestamps < cut_t
        if old.any():
            taken = _sorted(cols.select(old))
            shard_of = taken.refs >> SHARD_BITS
            log_taken.append((shard_of, taken))
        if not old.all():
            pending.append(_log_of(cols.select(~old)))
    log_shards = {int(s) for shard_of, _ in log_taken for s in np.unique(shard_of).tolist()}
    kept: dict[int, tuple[HeadFrame, ...]] = {}
    for shard in sorted(set(snap.shards) | log_shards):
        frames = snap.shards.get(shard, ())
        logs: list[SampleColumns] = []
        for shard_of, cols in log_taken:
            a, b = np.searchsorted(shard_of, [shard, shard + 1]).tolist()
            if a < b:
                logs.append(SampleColumns(cols.refs[a:b], cols.timestamps[a:b], cols.values[a:b]))
        keep = _kept_frames(frames, cut_t, zstd_level)
        if keep:
            kept[shard] = keep
        if take is not None:
            took = _taken_of_shard(frames, logs, cut_t)
            if len(took):
                take(took)
    return CutPlan(snap, kept, pending)


def _kept_frames(
    frames: Sequence[HeadFrame], cut_t: int, zstd_level: int
) -> tuple[HeadFrame, ...]:
    """What a shard's frames keep after a cut at `cut_t`, in their order: frames after it
    as they are, frames holding samples on both sides re-encoded with the later ones."""
    keep: list[HeadFrame] = []
    for f in frames:
        if f.mint >= cut_t:
            keep.append(f)
        elif f.maxt >= cut_t:
            d = decode_frame(f.data, where="head frame", mint=cut_t)
            has = d.counts > 0
            later = SampleColumns.from_runs(
                f.refs[has].astype(np.int64), d.counts[has], d.timestamps, d.values
            )
            keep.append(encode_columns(later, f.level, zstd_level))
    return tuple(keep)


def _taken_of_shard(
    frames: Sequence[HeadFrame], logs: list[SampleColumns], cut_t: int
) -> SampleColumns:
    """A shard's samples before `cut_t`, sorted by (ref, t), one per (ref, t) (the later
    frame or log wins). Frames and logs usually hold each series' samples in time order,
    one after the other: then they are joined run by run, frames wholly before the cut
    decoded in place (`concat_time_ordered`), which needs a third of the memory of
    concatenating and sorting; a rewritten or out-of-order sample sends the shard the
    sorting way."""
    parts: list[AnyPart] = []
    for f in frames:
        if f.mint >= cut_t:
            continue
        if f.maxt < cut_t:
            opened = open_frame(f.data, where="head frame")
            parts.append(DeferredPart(f.refs.astype(np.int64), opened.counts, opened.write_into))
        else:
            d = decode_frame(f.data, where="head frame", maxt=cut_t - 1)
            refs, counts = f.refs.astype(np.int64), d.counts
            parts.append((refs[counts > 0], counts[counts > 0], d.timestamps, d.values))
    for cols in logs:
        refs, starts = cols.series_bounds()
        parts.append((refs, np.diff(starts), cols.timestamps, cols.values))
    joined = concat_time_ordered(parts)
    del parts
    if strictly_ordered_columns(joined):
        return joined
    del joined
    # The frames in their order (oldest first), then the logs: the order later wins in.
    decoded = [decode_columns(f) for f in frames if f.mint < cut_t]
    return concat_columns([*(c.select(c.timestamps < cut_t) for c in decoded), *logs])


def _sorted(cols: SampleColumns) -> SampleColumns:
    return sort_dedup(cols.refs, cols.timestamps, cols.values)


def _log_of(cols: SampleColumns) -> LogPart:
    """A detached log holding `cols` (arrival order kept)."""
    log = OpenLog()
    if len(cols):
        t = cols.timestamps
        log.add(cols.refs, t, cols.values, int(t.min()), int(t.max()))
    return log.detach()

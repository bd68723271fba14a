"""Where the head keeps its samples: an open log of recent samples plus sealed frames.

New samples are copied into three growable columns (reference, timestamp, value) in arrival
order: appending a scrape is a slice assignment. When the log holds about
`seal_samples_per_series` samples per live series, it is *sealed*: sorted by (series,
time) and encoded into one compressed frame (`tsdb.chunks.frame`) covering all series.
Frames are merged like a binary counter: `FANOUT` frames of one level become one frame of
the next, up to `MAX_LEVEL`, so memory per sample falls to that of a well-filled chunk
while each sample is re-encoded only a few times.

The store never modifies an array a snapshot may be reading: sealing and growing allocate
new arrays, so a `StoreSnapshot` taken under the head's lock stays valid without copying.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from ..chunks.frame import decode_frame, encode_frame
from ..columns import SampleColumns, any_in_range, concat_columns, find_positions, sort_dedup
from ..model import MAX_TIME, MIN_TIME

I64 = npt.NDArray[np.int64]
_A = TypeVar("_A", bound=npt.NDArray[Any])
I32 = npt.NDArray[np.int32]
F64 = npt.NDArray[np.float64]

#: Frames merged into one of the next level. With a seal every 16 samples per series,
#: levels hold 16, 64, 256 and 1,024 samples per series: a one-hour 15 s series
#: (240 samples) ends up in a handful of frames, each sample re-encoded at most 3 times.
FANOUT = 4
MAX_LEVEL = 3


@dataclass(frozen=True)
class HeadFrame:
    """A sealed, compressed frame: the samples of series `refs` (sorted) in [mint, maxt]."""

    refs: I32
    mint: int
    maxt: int
    samples: int
    level: int
    data: bytes


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


@dataclass(frozen=True, eq=False)
class LogPart:
    """Samples in arrival order: the open log, or a detached log waiting to be sealed.

    Compared by identity: the sealer publishes its frame only if the part it encoded is
    still the one the store holds (a head cut may have replaced it meanwhile).
    """

    refs: I64
    timestamps: I64
    values: F64

    def sorted(self) -> SampleColumns:
        return sort_dedup(self.refs, self.timestamps, self.values)


@dataclass(frozen=True)
class StoreSnapshot:
    frames: tuple[HeadFrame, ...]
    #: Detached logs being sealed, oldest first, then the open log.
    logs: tuple[LogPart, ...]

    def gather(self, wanted: I64, mint: int, maxt: int) -> SampleColumns:
        """Samples of the series `wanted` (sorted refs) in [mint, maxt], sorted by (ref, t)."""
        parts_r: list[I64] = []
        parts_t: list[I64] = []
        parts_v: list[F64] = []
        for frame in self.frames:
            if frame.maxt < mint or frame.mint > maxt:
                continue
            frame_refs = frame.refs.astype(np.int64)
            if not any_in_range(wanted, int(frame_refs[0]), int(frame_refs[-1])):
                continue
            positions, found = find_positions(frame_refs, wanted)
            if not len(found):
                continue
            d = decode_frame(frame.data, where="head frame", select=positions)
            parts_r.append(np.repeat(found, d.counts))
            parts_t.append(d.timestamps)
            parts_v.append(d.values)
        for log in self.logs:
            if len(log.refs):
                lmask = np.isin(log.refs, wanted)
                if lmask.any():
                    parts_r.append(log.refs[lmask])
                    parts_t.append(log.timestamps[lmask])
                    parts_v.append(log.values[lmask])
        if not parts_r:
            return SampleColumns.empty()
        r = np.concatenate(parts_r)
        t = np.concatenate(parts_t)
        v = np.concatenate(parts_v)
        if mint > MIN_TIME or maxt < MAX_TIME:
            m = (t >= mint) & (t <= maxt)
            r, t, v = r[m], t[m], v[m]
        return sort_dedup(r, t, v)


    def all_samples(self) -> SampleColumns:
        """Everything in the snapshot, sorted by (ref, t)."""
        parts = [decode_columns(f) for f in self.frames]
        # Logs are in arrival order: sort them before they join sorted frame columns.
        parts.extend(log.sorted() for log in self.logs)
        return concat_columns(parts)


class SampleStore:
    """Not thread-safe; the head serialises writers with its lock."""

    def __init__(self, seal_samples_per_series: int = 16, zstd_level: int = 3) -> None:
        self.seal_samples_per_series = seal_samples_per_series
        self.zstd_level = zstd_level
        self.frames: list[HeadFrame] = []
        #: Logs detached by `detach_log`, oldest first, until their frame is published.
        self.pending: list[LogPart] = []
        self._cap = 4096
        self._refs = np.empty(self._cap, dtype=np.int64)
        self._ts = np.empty(self._cap, dtype=np.int64)
        self._vals = np.empty(self._cap, dtype=np.float64)
        self._len = 0
        self.mint = MAX_TIME
        self.maxt = MIN_TIME

    @property
    def log_len(self) -> int:
        return self._len

    def num_samples(self) -> int:
        return (
            self._len
            + sum(len(p.refs) for p in self.pending)
            + sum(f.samples for f in self.frames)
        )

    def frame_bytes(self) -> int:
        return sum(len(f.data) + f.refs.nbytes for f in self.frames)

    def add(self, refs: I64, ts: I64, vals: F64) -> None:
        """Append validated samples (arrays of equal length)."""
        n = len(refs)
        if not n:
            return
        end = self._len + n
        if end > self._cap:
            cap = max(self._cap * 2, end)
            self._refs = _grow(self._refs, cap, self._len)
            self._ts = _grow(self._ts, cap, self._len)
            self._vals = _grow(self._vals, cap, self._len)
            self._cap = cap
        self._refs[self._len : end] = refs
        self._ts[self._len : end] = ts
        self._vals[self._len : end] = vals
        self._len = end
        self.mint = min(self.mint, int(ts.min()))
        self.maxt = max(self.maxt, int(ts.max()))

    def should_seal(self, live_series: int) -> bool:
        return self._len >= max(4096, live_series * self.seal_samples_per_series)

    def detach_log(self) -> LogPart | None:
        """Move the open log to `pending` (cheap: no copy) and start a new one."""
        if not self._len:
            return None
        n = self._len
        part = LogPart(self._refs[:n], self._ts[:n], self._vals[:n])
        self.pending.append(part)
        self._refs = np.empty(self._cap, dtype=np.int64)
        self._ts = np.empty(self._cap, dtype=np.int64)
        self._vals = np.empty(self._cap, dtype=np.float64)
        self._len = 0
        return part

    def publish_sealed(self, part: LogPart, frame: HeadFrame | None) -> bool:
        """Replace the pending `part` by its frame (None: it held no samples); False if a
        cut replaced the part meanwhile (the caller's work is then discarded)."""
        if not self.pending or self.pending[0] is not part:
            return False
        self.pending.pop(0)
        if frame is not None:
            self.frames.append(frame)
        return True

    def merge_candidates(self) -> list[HeadFrame] | None:
        """The trailing frames of one level to merge next, if a level is full."""
        if not self.frames:
            return None
        last = self.frames[-1].level
        if last >= MAX_LEVEL:
            return None
        tail = 0
        for f in reversed(self.frames):
            if f.level != last:
                break
            tail += 1
        return self.frames[-tail:] if tail >= FANOUT else None

    def publish_merge(self, group: list[HeadFrame], merged: HeadFrame) -> bool:
        """Replace `group` (still the trailing frames) by `merged`; False if they changed."""
        k = len(group)
        if len(self.frames) < k or any(a is not b for a, b in zip(self.frames[-k:], group)):
            return False
        del self.frames[-k:]
        self.frames.append(merged)
        return True

    def encode_part(self, part: LogPart) -> HeadFrame | None:
        cols = part.sorted()
        return encode_columns(cols, 0, self.zstd_level) if len(cols) else None

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
        n = self._len
        logs = (*self.pending, LogPart(self._refs[:n], self._ts[:n], self._vals[:n]))
        return StoreSnapshot(tuple(self.frames), logs)

    def all_samples(self) -> SampleColumns:
        """Everything in the store, sorted by (ref, t)."""
        return self.snapshot().all_samples()

    def split_before(self, cut_t: int) -> SampleColumns:
        """Remove and return the samples with t < cut_t; keep the rest."""
        taken: list[SampleColumns] = []
        kept: list[HeadFrame] = []
        for f in self.frames:
            if f.mint >= cut_t:
                kept.append(f)
                continue
            cols = decode_columns(f)
            if f.maxt < cut_t:
                taken.append(cols)
                continue
            old = cols.timestamps < cut_t
            taken.append(cols.select(old))
            if not old.all():
                kept.append(encode_columns(cols.select(~old), f.level, self.zstd_level))
        new_pending: list[LogPart] = []
        for part in self.pending:
            old = part.timestamps < cut_t
            taken.append(sort_dedup(part.refs[old], part.timestamps[old], part.values[old]))
            if not old.all():
                new_pending.append(LogPart(part.refs[~old], part.timestamps[~old], part.values[~old]))
        self.pending = new_pending
        n = self._len
        log = SampleColumns(self._refs[:n], self._ts[:n], self._vals[:n])
        old = log.timestamps < cut_t
        taken.append(sort_dedup(log.refs[old], log.timestamps[old], log.values[old]))
        rest = log.select(~old)
        self.frames = kept
        self._refs = np.empty(self._cap, dtype=np.int64)
        self._ts = np.empty(self._cap, dtype=np.int64)
        self._vals = np.empty(self._cap, dtype=np.float64)
        self._len = 0
        self.add(rest.refs, rest.timestamps, rest.values)
        self._recompute_bounds()
        return concat_columns(taken)

    def _recompute_bounds(self) -> None:
        mins = [f.mint for f in self.frames]
        maxs = [f.maxt for f in self.frames]
        for p in self.pending:
            if len(p.timestamps):
                mins.append(int(p.timestamps.min()))
                maxs.append(int(p.timestamps.max()))
        if self._len:
            mins.append(int(self._ts[: self._len].min()))
            maxs.append(int(self._ts[: self._len].max()))
        self.mint = min(mins) if mins else MAX_TIME
        self.maxt = max(maxs) if maxs else MIN_TIME


def _grow(a: _A, cap: int, used: int) -> _A:
    # Uninitialised: only [:used] is ever read, and pages are touched only as the log fills.
    out = np.empty(cap, dtype=a.dtype)
    out[:used] = a[:used]
    return out  # type: ignore[return-value]  # same dtype as `a`

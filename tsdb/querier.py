"""The Querier over a whole database: blocks and head merged behind one interface."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np

from .api import SelectHints, SeriesData
from .block.reader import BlockReader
from .columns import (
    I64,
    AnyPart,
    DeferredPart,
    SampleColumns,
    clip_part,
    concat_time_ordered,
    part_runs,
    sort_dedup,
    sorted_unique,
    strictly_ordered_columns,
    with_ids,
)
from .errors import CorruptionError
from .model import MIN_TIME, Labels, Matcher
from .postings import Postings, postings_for_matchers

if TYPE_CHECKING:
    from .head.head import Head


class DBQuerier:
    """See `tsdb.api.Querier`. Reads a snapshot of the head taken at creation (later
    commits are not visible) and the blocks that overlapped the range at creation."""

    def __init__(
        self,
        head: Head,
        blocks: Sequence[BlockReader],
        mint: int,
        maxt: int,
        on_corrupt: Callable[[BlockReader, CorruptionError], None] | None = None,
    ) -> None:
        self.mint = mint
        self.maxt = maxt
        self._on_corrupt = on_corrupt
        #: Problems met while reading (a corrupt block skipped), for the API's warnings.
        self.warnings: list[str] = []
        self._head = head
        self._blocks = list(blocks)
        self._snapshot, self._tombstones = head.snapshot()
        head_mint, head_maxt = head.mint, head.maxt
        self._head_overlaps = head_mint <= head_maxt and head_maxt >= mint and head_mint <= maxt

    # -- samples ---------------------------------------------------------------------------
    def _head_series(self, matchers: Sequence[Matcher]) -> tuple[Postings, list[Labels]]:
        head = self._head
        with head.lock:
            refs = postings_for_matchers(head.registry, matchers)
            labels = [head.registry.labels_of(int(r)) for r in refs]
        keep = [i for i, ls in enumerate(labels) if ls is not None]
        if len(keep) != len(labels):
            refs = refs[keep]
        return refs, [ls for ls in labels if ls is not None]

    def select(
        self,
        matchers: Sequence[Matcher],
        hints: SelectHints | None = None,
        sort: bool = False,
    ) -> Iterator[SeriesData]:
        """See `Querier.select`; series always come in label order (from `select_columns`)."""
        labels, cols = self.select_columns(matchers, hints)
        _, starts = cols.series_bounds()
        limit = hints.limit if hints is not None else 0
        for i, ls in enumerate(labels):
            if limit and i >= limit:
                return
            a, b = int(starts[i]), int(starts[i + 1])
            ts, vs = cols.timestamps[a:b], cols.values[a:b]
            ts.flags.writeable = False
            vs.flags.writeable = False
            yield SeriesData(ls, ts, vs)

    def select_columns(
        self, matchers: Sequence[Matcher], hints: SelectHints | None = None
    ) -> tuple[list[Labels], SampleColumns]:
        """Like `select`, all at once: the matching series with samples in range, in label
        order, and their samples as one column set whose ``refs`` index that list.

        No per-series arrays are built: frames decoded from blocks and the head's gather
        are joined run by run (`concat_time_ordered`), so a selection of ten thousand
        series costs a few whole-array operations.
        """
        mint, maxt = self._clip(hints)
        # Per source: its parts (with source-local series ids), the ids they hold
        # (ascending) and those ids' labels.
        sources: list[tuple[list[AnyPart], I64, list[Labels]]] = []
        spans: list[tuple[int, int]] = []  # the time range each source's samples lie in
        from_blocks = 0
        for block in self._blocks:
            if block.maxt <= mint or block.mint > maxt:
                continue
            try:
                ids = block.postings(matchers)
                if not len(ids):
                    continue
                parts = block.sample_parts(ids, mint, maxt)
            except CorruptionError as exc:
                self.warnings.append(f"skipped corrupt block {block.ulid}: {exc}")
                if self._on_corrupt is not None:
                    self._on_corrupt(block, exc)
                continue
            if parts:
                local = sorted_unique(np.concatenate([part_runs(p)[0] for p in parts]))
                sources.append((parts, local, block.labels_of(local.tolist())))
                spans.append((block.mint, block.maxt - 1))
                from_blocks += 1
        if self._head_overlaps:
            refs, labels = self._head_series(matchers)
            if len(refs):
                order = np.argsort(refs, kind="stable")
                refs = refs[order]
                by_ref = dict(zip(refs.tolist(), (labels[i] for i in order.tolist())))
                cols = self._tombstones.apply(self._snapshot.gather(refs, mint, maxt))
                if len(cols):
                    present, starts = cols.series_bounds()
                    head_part: AnyPart = (present, np.diff(starts), cols.timestamps, cols.values)
                    sources.append(([head_part], present, [by_ref[r] for r in present.tolist()]))
                    ts = cols.timestamps  # each series' samples in time order
                    spans.append((int(ts[starts[:-1]].min()), int(ts[starts[1:] - 1].max())))
        if not sources:
            return [], SampleColumns.empty()
        # The rank in label order of each source's ids (they ascend). A block's ids ascend
        # in label order: with one block, the rank is the position.
        if len(sources) == 1 and from_blocks == 1:
            distinct = sources[0][2]
            source_ranks: list[I64 | None] = [None]
        else:
            distinct = sorted({ls for _, _, names in sources for ls in names})
            rank = {ls: i for i, ls in enumerate(distinct)}
            source_ranks = [
                np.fromiter((rank[ls] for ls in names), dtype=np.int64, count=len(names))
                for _, _, names in sources
            ]
        merged_parts: list[AnyPart] = []
        for (parts, local, _), ranks in zip(sources, source_ranks, strict=True):
            for part in parts:
                # A block's parts (deferred) hold only samples in the range; the head's
                # may straddle it.
                clipped = part if isinstance(part, DeferredPart) else clip_part(part, mint, maxt)
                if clipped is not None:
                    at = np.searchsorted(local, part_runs(clipped)[0])
                    merged_parts.append(with_ids(clipped, at if ranks is None else ranks[at]))
        merged = concat_time_ordered(merged_parts)
        disjoint = all(a[1] < b[0] for a, b in zip(spans, spans[1:]))
        if not disjoint and not strictly_ordered_columns(merged):
            # Overlapping sources (blocks not compacted yet): the later source wins.
            merged = sort_dedup(merged.refs, merged.timestamps, merged.values)
        if not len(merged):
            return [], SampleColumns.empty()
        present, counts = merged.series_runs()
        if len(present) < len(distinct):
            # Series whose samples all fell outside [mint, maxt]: drop them, renumber.
            distinct = [distinct[i] for i in present.tolist()]
            merged = SampleColumns.from_runs(
                np.arange(len(present), dtype=np.int64), counts, merged.timestamps, merged.values,
                merged.stale_free,
            )
        return distinct, merged

    def _clip(self, hints: SelectHints | None) -> tuple[int, int]:
        """The querier's range narrowed to what `hints` say the caller needs."""
        mint, maxt = self.mint, self.maxt
        if hints is not None and hints.start is not None and hints.end is not None:
            mint = max(mint, hints.start - hints.range_ms)
            maxt = min(maxt, hints.end)
        return mint, maxt

    # -- metadata --------------------------------------------------------------------------
    def series(self, matchers: Sequence[Matcher], limit: int = 0) -> list[Labels]:
        """Series with at least one sample in [mint, maxt] (like Prometheus, which checks
        chunks): blocks wholly inside the range answer from the index alone; a block or
        head only partly inside it has the matching series' samples looked at."""
        found: set[Labels] = set()
        for block in self._blocks:
            ids = block.postings(matchers)
            if not len(ids):
                continue
            if self.mint <= block.mint and self.maxt >= block.maxt - 1 and not len(block.tombstones):
                present = ids
            else:
                present, _ = block.samples(ids, self.mint, self.maxt).series_bounds()
            found.update(block.labels(int(s)) for s in present)
        if self._head_overlaps:
            refs, labels = self._head_series(matchers)
            if len(refs):
                order = np.argsort(refs, kind="stable")
                refs = refs[order]
                by_ref = dict(zip(refs.tolist(), (labels[i] for i in order.tolist())))
                cols = self._tombstones.apply(self._snapshot.gather(refs, self.mint, self.maxt))
                present, _ = cols.series_bounds()
                found.update(by_ref[int(r)] for r in present.tolist())
        out = sorted(found)
        return out[:limit] if limit else out

    def _indexed_series(self, matchers: Sequence[Matcher]) -> set[Labels]:
        """Series matching `matchers` in the index of every block and of the head that
        overlap the range, without looking at samples: the granularity Prometheus's label
        name/value queries with matchers have."""
        found: set[Labels] = set()
        for block in self._blocks:
            found.update(block.labels(int(s)) for s in block.postings(matchers))
        if self._head_overlaps:
            refs, labels = self._head_series(matchers)
            if len(refs):
                has_samples = self._head.registry.last_t[refs] > MIN_TIME
                found.update(ls for ls, ok in zip(labels, has_samples.tolist()) if ok)
        return found

    def label_names(
        self, matchers: Sequence[Matcher] = (), limit: int = 0
    ) -> tuple[list[str], list[str]]:
        names: set[str] = set()
        if matchers:
            for ls in self._indexed_series(matchers):
                names.update(ls.names())
        else:
            for block in self._blocks:
                names.update(block.index.label_names())
            if self._head_overlaps:
                with self._head.lock:
                    names.update(self._head.registry.label_names())
        out = sorted(names)
        return (out[:limit] if limit else out), []

    def label_values(
        self, name: str, matchers: Sequence[Matcher] = (), limit: int = 0
    ) -> tuple[list[str], list[str]]:
        values: set[str] = set()
        if matchers:
            for ls in self._indexed_series(matchers):
                v = ls.get(name)
                if v:
                    values.add(v)
        else:
            for block in self._blocks:
                values.update(block.index.label_values_of(name))
            if self._head_overlaps:
                with self._head.lock:
                    values.update(self._head.registry.label_values_of(name))
        out = sorted(values)
        return (out[:limit] if limit else out), []

    def close(self) -> None:
        self._blocks = []

    def __enter__(self) -> DBQuerier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

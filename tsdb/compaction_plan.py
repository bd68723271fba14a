"""Which blocks to merge: a pure function of block time ranges, shared by the database's
background compaction and by the importer (which writes the merged layout directly)."""

from __future__ import annotations

from collections.abc import Sequence

Span = tuple[int, int]  # [mint, maxt) in milliseconds


def plan_compaction(spans: Sequence[Span], ranges: Sequence[int], newest: int) -> list[list[int]]:
    """Groups of indexes into `spans` (sorted by mint, then maxt) to merge next.

    Overlapping blocks (a backfill into an existing range) are merged first. Otherwise,
    for each compaction range above the first, smallest first, blocks lying inside one
    aligned window of that range are merged once the window is complete — the newest data
    (`newest`, the end of the newest block or the start of the head) is past its end — and
    holds at least two blocks. The first range with anything to do wins; call again
    after merging to go up a level.
    """
    if len(spans) < 2:
        return []
    groups: list[list[int]] = []
    run = [0]
    run_max = spans[0][1]
    for i in range(1, len(spans)):
        mint, maxt = spans[i]
        if mint < run_max:
            run.append(i)
            run_max = max(run_max, maxt)
        else:
            if len(run) > 1:
                groups.append(run)
            run, run_max = [i], maxt
    if len(run) > 1:
        groups.append(run)
    if groups:
        return groups
    for rng in ranges[1:]:
        windows: dict[int, list[int]] = {}
        for i, (mint, maxt) in enumerate(spans):
            w = mint // rng
            if maxt <= (w + 1) * rng and maxt - mint < rng:
                windows.setdefault(w, []).append(i)
        for w, members in sorted(windows.items()):
            if len(members) >= 2 and newest >= (w + 1) * rng:
                groups.append(members)
        if groups:
            return groups
    return []


def final_layout(
    spans: Sequence[Span], ranges: Sequence[int], newest: int
) -> list[tuple[Span, int]]:
    """The blocks (span, compaction level) that repeated compaction of level-1 blocks
    with `spans` ends with."""
    blocks: list[tuple[Span, int]] = sorted((s, 1) for s in spans)
    while True:
        groups = plan_compaction([b[0] for b in blocks], ranges, newest)
        if not groups:
            return blocks
        merged_idx = {i for g in groups for i in g}
        new = [b for i, b in enumerate(blocks) if i not in merged_idx]
        for g in groups:
            members = [blocks[i] for i in g]
            span = (min(m[0][0] for m in members), max(m[0][1] for m in members))
            new.append((span, max(m[1] for m in members) + 1))
        blocks = sorted(new)

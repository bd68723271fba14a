"""`select_frames`: the frames a read needs and the wanted series' positions in each,
against a direct reading of the frame table."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vigilops.tsdb.block.frame_select import FrameColumns, select_frames
from vigilops.tsdb.block.index import FRAME_DTYPE, FrameTable


def _table(frames: list[tuple[int, int, list[int]]]) -> FrameTable:
    rows = np.zeros(len(frames), dtype=FRAME_DTYPE)
    start = 0
    for i, (mint, maxt, ids) in enumerate(frames):
        rows[i]["mint"], rows[i]["maxt"] = mint, maxt
        rows[i]["series_start"], rows[i]["series_count"] = start, len(ids)
        start += len(ids)
    series = np.array([s for *_, ids in frames for s in ids], dtype=np.uint32)
    return FrameTable(rows, series)


_frame = st.tuples(
    st.integers(0, 50), st.integers(0, 30), st.sets(st.integers(0, 60), max_size=25)
).map(lambda f: (f[0], f[0] + f[1], sorted(f[2])))


@settings(max_examples=300, deadline=None)
@given(st.lists(_frame, max_size=12), st.sets(st.integers(0, 60), max_size=40),
       st.integers(-5, 90), st.integers(0, 60))
def test_selection_is_every_overlapping_frame_with_a_wanted_series(
    frames: list[tuple[int, int, list[int]]], wanted: set[int], mint: int, span: int
) -> None:
    maxt = mint + span
    ids = np.array(sorted(wanted), dtype=np.int64)
    sel = select_frames(FrameColumns.of(_table(frames)), ids, mint, maxt)
    expected = []
    for i, (f_mint, f_maxt, f_ids) in enumerate(frames):
        if f_maxt < mint or f_mint > maxt:
            continue
        hits = [(p, s) for p, s in enumerate(f_ids) if s in wanted]
        if hits:
            expected.append((i, f_mint >= mint and f_maxt <= maxt, hits))
    got = [
        (i, whole, list(zip(sel.positions[a:b].tolist(), sel.found[a:b].tolist())))
        for i, whole, a, b in zip(sel.frames, sel.whole, sel.offsets, sel.offsets[1:])
    ]
    assert got == expected
    assert len(sel.offsets) == len(sel.frames) + 1

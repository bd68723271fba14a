"""A block's label index read back: every series' labels, every label's values and the
postings of every (name, value) agree with a plain dictionary built from the label sets."""

from __future__ import annotations

import os
import tempfile

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vigilops.tsdb.block.index import FrameTable, IndexReader, write_index
from vigilops.tsdb.block.writer import FRAME_DTYPE
from vigilops.tsdb.model import Labels

_label_sets = st.lists(
    st.dictionaries(
        st.sampled_from(["__name__", "a", "b", "instance", "é"]),
        st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=4),
        min_size=1,
        max_size=4,
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(_label_sets)
def test_index_agrees_with_a_dictionary(raw: list[dict[str, str]]) -> None:
    labels = sorted({Labels(d) for d in raw})
    no_frames = FrameTable(np.zeros(0, dtype=FRAME_DTYPE), np.zeros(0, dtype=np.uint32))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "index")
        write_index(path, labels, no_frames)
        idx = IndexReader(path)
        try:
            assert [idx.labels(i) for i in range(len(labels))] == labels
            postings: dict[str, dict[str, list[int]]] = {}
            for sid, ls in enumerate(labels):
                for name, value in zip(ls[0::2], ls[1::2]):
                    postings.setdefault(name, {}).setdefault(value, []).append(sid)
            assert idx.label_names() == sorted(postings)
            for name, by_value in postings.items():
                assert list(idx.label_values_of(name)) == sorted(by_value)
                for value, sids in by_value.items():
                    assert idx.postings_for(name, [value]).tolist() == sids
                every = sorted(s for sids in by_value.values() for s in sids)
                assert idx.postings_for(name, list(by_value)).tolist() == every
            assert idx.all_postings().tolist() == list(range(len(labels)))
        finally:
            idx.close()

"""The open hour's joined chunks answer a series' readings in (time, arrival) order."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_node.store.chunks import RECORD, Chunks

_record = st.tuples(st.integers(1, 4), st.integers(0, 30))  # series id, ts: many equal


def _chunks(rows: list[tuple[int, int]]) -> Chunks:
    records = np.zeros(len(rows), RECORD)
    records["sid"] = [sid for sid, _ in rows]
    records["ts"] = [ts for _, ts in rows]
    return Chunks(records, {}, {})


def _select(chunks: Chunks, sid: int, start: int, end: int) -> list[int]:
    """The records a reader takes for one series, as indexes in arrival order."""
    return chunks.by_series().order[chunks.span(sid, start, end)].tolist()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_record, max_size=60),
    st.integers(0, 30),
    st.integers(0, 31),
    st.sampled_from([1, 2**57]),
)
def test_select_is_time_then_arrival_order(
    rows: list[tuple[int, int]], a: int, b: int, scale: int
) -> None:
    """Also where only some series hold late readings, and with timestamps so far apart
    (scale 2**57) that the runs are sorted one by one."""
    rows = [(sid, ts * scale) for sid, ts in rows]
    chunks = _chunks(rows)
    start, end = min(a, b) * scale, max(a, b) * scale
    for sid in range(0, 6):
        want = sorted(
            (i for i, (s, ts) in enumerate(rows) if s == sid and start <= ts < end),
            key=lambda i: (rows[i][1], i),
        )
        assert _select(chunks, sid, start, end) == want


def test_series_in_time_order_keep_their_arrival_order() -> None:
    """One series with a late reading does not reorder its neighbours' equal timestamps."""
    rows = [(1, 5), (2, 7), (1, 5), (2, 3), (3, 9), (3, 9), (2, 7)]
    chunks = _chunks(rows)
    assert _select(chunks, 1, 0, 10) == [0, 2]
    assert _select(chunks, 2, 0, 10) == [3, 1, 6]
    assert _select(chunks, 3, 0, 10) == [4, 5]

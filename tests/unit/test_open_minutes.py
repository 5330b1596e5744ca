"""A reader's copy of the unpacked minute rollups, kept up to date from the writer's journal,
always equals the table: through upserts (late ones too), compaction, retention and a journal
trimmed behind the copy. Checked on a read-only replica, as an API process has it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_node.store import Store, open_minutes, rollups
from edge_node.store.model import HOUR_NS
from factory_common.wire import WIRE_VERSION, Batch, Reading

T0 = 1_764_000_000 * 10**9 - (1_764_000_000 * 10**9) % HOUR_NS  # a UTC hour boundary
MINUTE = 60 * 10**9
TAGS = ("temp", "flow", "level")

# (tag index, minute from T0, second) per reading; several commits, then something else.
reading = st.tuples(st.integers(0, 2), st.integers(0, 179), st.integers(0, 59))
step = st.one_of(
    st.tuples(st.just("write"), st.lists(reading, min_size=1, max_size=6)),
    st.tuples(st.just("compact"), st.integers(1, 3)),  # hours after T0
    st.tuples(st.just("drop"), st.integers(1, 180)),  # minutes after T0
    st.tuples(st.just("read"), st.sets(st.integers(0, 2), min_size=1)),
)


class Line:
    """A writer store and a read-only replica of its file, fed with readings at any time."""

    def __init__(self, path: Path) -> None:
        self.writer = Store(path)
        self.replica = Store(path, read_only=True)
        self.seq = 0

    def write(self, readings: list[tuple[int, int, int]]) -> None:
        batch = [
            Reading(device="bath", tag=TAGS[t], ts=T0 + m * MINUTE + s * 10**9, value=m + s / 8)
            for t, m, s in readings
        ]
        first = self.seq
        self.seq += len(batch)
        self.writer.write(
            [Batch(v=WIRE_VERSION, gateway="gw", boot="b", first_seq=first,
                   last_seq=self.seq - 1, readings=batch)]
        )  # fmt: skip

    def ids(self, tags: set[int]) -> list[int]:
        known = {info.name: info.id for info in self.writer.series()}
        return [known[n] for t in sorted(tags) if (n := f"gw/bath/{TAGS[t]}") in known]

    def close(self) -> None:
        self.replica.close()
        self.writer.close()


def table(store: Store, ids: list[int]) -> dict[int, np.ndarray]:
    rows = store._reader().execute(
        "SELECT series_id, minute, lo, hi, total, n, last_ts, last FROM rollup_minute"
        " ORDER BY series_id, minute"
    )
    found = rollups.by_series([r for r in rows if r[0] in ids])
    return {sid: found.get(sid, rollups.EMPTY) for sid in ids}


def the_copy(store: Store, ids: list[int]) -> dict[int, np.ndarray]:
    conn = store._reader()
    conn.execute("BEGIN")
    try:
        return store.open_minutes.rows(conn, ids)
    finally:
        conn.execute("COMMIT")


def assert_same(copy: dict[int, np.ndarray], expected: dict[int, np.ndarray]) -> None:
    assert copy.keys() == expected.keys()
    for sid, rows in expected.items():
        np.testing.assert_array_equal(copy[sid], rows, err_msg=f"series {sid}")


def run(line: Line, steps: list) -> None:
    for kind, arg in steps:
        if kind == "write":
            line.write(arg)
        elif kind == "compact":
            line.writer.compact(T0 + arg * HOUR_NS)
        elif kind == "drop":
            line.writer._writer.drop_before({"minute": T0 + arg * MINUTE})
        else:
            ids = line.ids(arg)
            if ids:
                assert_same(the_copy(line.replica, ids), table(line.replica, ids))


@settings(max_examples=60, deadline=None)
@given(st.lists(step, min_size=1, max_size=14), st.sampled_from([1, 3, 50_000]))
def test_the_copy_always_equals_the_table(steps: list, keep: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        patch.setattr(open_minutes, "JOURNAL_KEEP", keep)  # 1 and 3: copies fall behind it
        line = Line(Path(tmp) / "edge.sqlite")
        try:
            run(line, [*steps, ("read", {0, 1, 2}), ("read", {1})])
        finally:
            line.close()


def test_a_late_reading_and_an_hours_packing_reach_the_copy(tmp_path: Path) -> None:
    line = Line(tmp_path / "edge.sqlite")
    try:
        line.write([(0, 5, 0), (0, 70, 0), (1, 70, 30)])
        ids = line.ids({0, 1})
        assert_same(the_copy(line.replica, ids), table(line.replica, ids))
        line.write([(0, 5, 30)])  # late: an older minute than the last commit's
        late = the_copy(line.replica, ids)[ids[0]]
        assert late["n"][late["t"] == T0 + 5 * MINUTE].tolist() == [2]
        line.writer.compact(T0 + HOUR_NS)  # the first hour's minutes leave the table
        packed = the_copy(line.replica, ids)[ids[0]]
        assert packed["t"].tolist() == [T0 + 70 * MINUTE]
        assert line.replica.open_minutes.full_reads == 1  # one whole read, then the journal
    finally:
        line.close()


def test_a_copy_behind_a_trimmed_journal_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(open_minutes, "JOURNAL_KEEP", 2)
    line = Line(tmp_path / "edge.sqlite")
    try:
        line.write([(0, 1, 0)])
        ids = line.ids({0})
        the_copy(line.replica, ids)
        for second in range(1, 5):
            line.write([(0, 2, second)])
        line.writer.compact(T0)  # packs nothing, trims the journal to its last two rows
        assert_same(the_copy(line.replica, ids), table(line.replica, ids))
        assert line.replica.open_minutes.full_reads == 2
    finally:
        line.close()


def test_downsampling_through_the_copy_answers_as_a_fresh_reader(tmp_path: Path) -> None:
    line = Line(tmp_path / "edge.sqlite")
    try:
        line.write([(t, m, s) for t in range(3) for m in range(0, 150, 7) for s in (0, 30)])
        line.writer.compact(T0 + 2 * HOUR_NS)
        infos = line.replica.series()
        span = (T0, T0 + 3 * HOUR_NS, 40)
        line.replica.downsample(infos, *span)  # the copy is made
        line.write([(1, 149, 45), (2, 10, 5)])  # a new reading, and a late one
        kept = line.replica.downsample(infos, *span)
        fresh = Store(tmp_path / "edge.sqlite", read_only=True)
        try:
            for a, b in zip(kept, fresh.downsample(infos, *span), strict=True):
                assert a is not None and b is not None
                for field in ("t", "min", "max", "mean", "count"):
                    np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
        finally:
            fresh.close()
    finally:
        line.close()


def test_a_replica_of_a_file_without_the_journal_reads_the_table_each_time(
    tmp_path: Path,
) -> None:
    """A read-only API process may open a file an older ingest process (schema 2) writes."""
    line = Line(tmp_path / "edge.sqlite")
    try:
        line.write([(0, 1, 0), (0, 2, 0)])
        conn = line.writer._writer_conn
        assert conn is not None
        conn.execute("PRAGMA user_version = 2")
        infos = line.replica.series()
        first = line.replica.downsample(infos, T0, T0 + HOUR_NS, 10)[0]
        conn.execute("DELETE FROM minute_changes")  # as if never noted
        line.write([(0, 3, 0)])
        conn.execute("DELETE FROM minute_changes")
        second = line.replica.downsample(infos, T0, T0 + HOUR_NS, 10)[0]
        assert first is not None and second is not None
        assert (first.count.sum(), second.count.sum()) == (2, 3)
        assert line.replica.open_minutes.full_reads == 0
    finally:
        line.close()

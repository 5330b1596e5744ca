"""The durable buffer: ordering, sequence numbers across restarts, budget, ttl, corruption."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factory_common.wire import Reading
from gateway_image.firmware.buffer import DurableBuffer, rows
from gateway_image.firmware.buffer.format import (
    ROW_OVERHEAD,
    SCHEMA,
    decode_readings,
    encode_reading,
    encode_readings,
)


def reading(i: int, tag: str = "t") -> Reading:
    return Reading(device="bath1", tag=tag, ts=1_700_000_000_000_000_000 + i, value=float(i))


def readings(start: int, n: int) -> list[Reading]:
    return [reading(i) for i in range(start, start + n)]


def row_size(r: Reading) -> int:
    return len(encode_reading(r)) + ROW_OVERHEAD


def open_buffer(path: Path, **kw: object) -> DurableBuffer:
    settings_ = {"max_bytes": 10**9} | kw
    return DurableBuffer.open(path, **settings_)


def test_rows_read_back_in_one_decode_are_the_readings_written() -> None:
    mixed = [*readings(0, 3), Reading("d", "s", 1, "text", reason="x"), Reading("d", "n", 2, None)]
    assert decode_readings(encode_readings(mixed)) == mixed
    assert decode_readings([]) == []
    damaged = [encode_reading(reading(0)), b"\xc1", encode_reading(reading(1))]
    with pytest.raises(msgspec.DecodeError):
        decode_readings(damaged)


@pytest.mark.parametrize("n", [0, 1, 99, 100, 101, 250])
def test_insert_writes_many_rows_per_statement(n: int) -> None:
    """Each statement step hands the GIL to the event loop and back: a commit of n rows must
    not step once per row (whole chunks in one statement, the rest row by row)."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(SCHEMA)
    steps: list[str] = []
    conn.set_trace_callback(steps.append)
    bodies = [encode_reading(r) for r in readings(0, n)]
    rows.insert(conn, 7, 42, bodies)
    conn.set_trace_callback(None)
    stored = conn.execute("SELECT seq, stored_at, body FROM readings ORDER BY seq").fetchall()
    assert stored == [(7 + i, 42, body) for i, body in enumerate(bodies)]
    inserts = [s for s in steps if s.startswith("INSERT")]
    assert len(inserts) == n // rows.INSERT_ROWS + n % rows.INSERT_ROWS


def test_append_pending_ack_in_order(tmp_path: Path) -> None:
    buf = open_buffer(tmp_path / "b.sqlite")
    first, last = buf.append(readings(0, 5))
    assert last == first + 4
    f2, l2 = buf.append(readings(5, 3))
    assert f2 == last + 1 and l2 == f2 + 2
    pending = buf.pending(100)
    assert [s for s, _ in pending] == list(range(first, l2 + 1))
    assert [r for _, r in pending] == readings(0, 8)
    assert [s for s, _ in buf.pending(2, after_seq=first + 1)] == [first + 2, first + 3]
    assert buf.ack(first, first + 2) == 3
    assert buf.depth == 5
    assert [s for s, _ in buf.pending(100)] == list(range(first + 3, l2 + 1))
    assert buf.bytes == sum(row_size(r) for r in readings(3, 5))


def test_seq_survives_reopen_and_full_drain(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buf = open_buffer(path)
    first, last = buf.append(readings(0, 10))
    buf.ack(first, last)
    assert buf.depth == 0 and buf.bytes == 0
    buf.close()
    again = open_buffer(path)
    assert again.last_seq == last
    f2, _ = again.append(readings(10, 1))
    assert f2 == last + 1  # never reused, although the buffer was empty
    assert again.depth == 1
    again.close()


def test_fresh_buffer_starts_above_any_earlier_file(tmp_path: Path) -> None:
    """A lost buffer file must not restart at seq 1: the edge would drop new readings as dups."""
    a = open_buffer(tmp_path / "a.sqlite")
    _, last = a.append(readings(0, 1000))
    a.close()
    b = open_buffer(tmp_path / "b.sqlite")
    first, _ = b.append(readings(0, 1))
    assert first > last


def test_drop_oldest_budget_counts_exactly(tmp_path: Path) -> None:
    size = row_size(reading(0))
    buf = open_buffer(tmp_path / "b.sqlite", max_bytes=size * 10, policy="drop_oldest")
    first, _ = buf.append(readings(0, 8))
    buf.append(readings(8, 5))  # 13 readings, room for 10: the 3 oldest go
    seqs = [s for s, _ in buf.pending(100)]
    assert seqs == list(range(first + 3, first + 13))
    assert buf.dropped == {"disk_budget": 3}
    assert buf.bytes <= buf.max_bytes
    buf.close()
    assert open_buffer(tmp_path / "b.sqlite").dropped == {"disk_budget": 3}


def test_refuse_newest_budget_counts_exactly(tmp_path: Path) -> None:
    size = row_size(reading(0))
    buf = open_buffer(tmp_path / "b.sqlite", max_bytes=size * 10, policy="refuse_newest")
    first, _ = buf.append(readings(0, 8))
    f2, l2 = buf.append(readings(8, 5))  # only 2 fit
    assert (f2, l2) == (first + 8, first + 9)
    f3, l3 = buf.append(readings(13, 1))
    assert l3 == f3 - 1  # nothing stored, no seq spent
    assert [r for _, r in buf.pending(100)] == readings(0, 10)
    assert buf.dropped == {"disk_budget": 4}
    buf.ack(first, first + 1)
    assert buf.append(readings(14, 1)) == (first + 10, first + 10)


def test_ttl_drops_and_counts(tmp_path: Path) -> None:
    now = [1_000 * 10**9]
    buf = open_buffer(tmp_path / "b.sqlite", ttl=60, clock=lambda: now[0])
    first, _ = buf.append(readings(0, 4))
    now[0] += 30 * 10**9
    buf.append(readings(4, 2))
    now[0] += 40 * 10**9  # the first 4 are 70 s old, the last 2 are 40 s old
    assert buf.expire() == 4
    assert [s for s, _ in buf.pending(10)] == [first + 4, first + 5]
    assert buf.dropped == {"ttl": 4}
    assert buf.depth == 2


@pytest.mark.parametrize("policy", ["refuse_newest", "drop_oldest"])
def test_os_disk_full_is_counted_not_raised(tmp_path: Path, policy: str) -> None:
    """SQLite's max_page_count raises the same SQLITE_FULL as a full disk."""
    path = tmp_path / "b.sqlite"
    buf = open_buffer(path, policy=policy)
    assert buf._conn is not None
    pages = buf._conn.execute("PRAGMA page_count").fetchone()[0]
    buf._conn.execute(f"PRAGMA max_page_count={pages + 3}")
    stored = failed = 0
    first_seq = buf.last_seq + 1
    for i in range(200):
        first, last = buf.append([reading(i, tag="x" * 200)])
        stored += last - first + 1
        failed += first - last
    assert stored > 0
    assert buf.depth + sum(buf.dropped.values()) == 200  # every reading kept or counted
    assert buf.depth == len(buf.pending(1000))
    assert buf.dropped.get("disk_full", 0) > 0
    if policy == "refuse_newest":
        assert failed > 0 and buf.depth == stored
    else:  # the newest readings are stored; the oldest made room for them
        kept = [s for s, _ in buf.pending(1000)]
        assert kept == list(range(first_seq + stored - len(kept), first_seq + stored))
        assert failed == 0, "once the file is full, old readings make room for new ones"
    buf.close()
    assert open_buffer(path).dropped == buf.dropped  # the counters were persisted


@pytest.mark.parametrize("seed", range(6))
def test_truncated_file_keeps_intact_rows(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "b.sqlite"
    buf = open_buffer(path)
    first, last = buf.append(readings(0, 3000))
    buf._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
    buf.close()
    size = path.stat().st_size
    # Past the schema and meta pages (1-3): below that, see test_garbage_file_starts_empty.
    cut = random.Random(seed).randrange(3 * 4096 + 1, size - 1)
    with path.open("r+b") as f:
        f.truncate(cut)
    again = open_buffer(path)
    quarantine = list(tmp_path.glob("b.sqlite.corrupt-*"))
    assert quarantine and again.quarantined == [quarantine[0]]
    kept = again.pending(10_000)
    assert 0 < len(kept) < 3000
    assert all(r == reading(s - first) for s, r in kept)  # intact rows are exact
    assert again.dropped["corrupt"] == 3000 - len(kept)
    assert again.depth == len(kept)
    assert again.append(readings(0, 1))[0] == last + 1


@pytest.mark.parametrize("cut", [100, 4096, 4096 + 700, 2 * 4096 + 5, 3 * 4096])
def test_a_file_cut_before_its_meta_page_still_counts_what_it_lost(
    tmp_path: Path, cut: int
) -> None:
    path = tmp_path / "b.sqlite"
    buf = open_buffer(path)
    first, _ = buf.append(readings(0, 3000))
    buf.ack_ranges([(first, first + 99)])  # the count must follow deletes too, not only appends
    buf._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
    buf.close()
    with path.open("r+b") as f:
        f.truncate(cut)
    again = open_buffer(path)
    kept = again.pending(10_000)
    assert again.dropped["corrupt"] == 2900 - len(kept)
    assert again.depth == len(kept)


def test_garbage_file_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    path.write_bytes(b"SQLite format 3\0" + b"not a database at all" * 100)
    buf = open_buffer(path)
    assert buf.depth == 0 and buf.quarantined
    first, _ = buf.append(readings(0, 1))
    assert first > 1_000_000  # the counter restarts above anything issued before


async def test_put_group_commits_concurrent_callers(tmp_path: Path) -> None:
    buf = open_buffer(tmp_path / "b.sqlite", sync_interval=0.05)
    results = await asyncio.gather(*(buf.put(readings(i * 10, 10)) for i in range(50)))
    seqs = sorted(s for first, last in results for s in range(first, last + 1))
    assert seqs == list(range(seqs[0], seqs[0] + 500))
    assert buf.depth == 500
    await buf.aclose()
    with sqlite3.connect(tmp_path / "b.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] == 500


async def test_offer_returns_at_once_and_one_commit_takes_what_arrived(tmp_path: Path) -> None:
    buf = open_buffer(tmp_path / "b.sqlite", sync_interval=0.05, commit_delay=0.05)
    for i in range(10):
        assert buf.offer(readings(i * 10, 10)) == 0
    assert buf.depth == 0  # handed over, not committed: offer did not wait for the disk
    await buf.flush()
    assert buf.depth == 100
    assert [r for _, r in buf.pending(1000)] == readings(0, 100)
    await buf.aclose()


async def test_a_full_queue_applies_the_policy_and_counts_queue_full(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buf = open_buffer(path, queue_max=50)
    assert buf.offer(readings(0, 80)) == 30
    assert buf.stats().dropped == {"queue_full": 30}  # shown before the commit saves it
    await buf.aclose()
    again = open_buffer(path)
    assert again.dropped == {"queue_full": 30}  # saved with the commit
    assert [r for _, r in again.pending(100)] == readings(30, 50)  # drop_oldest: newest kept
    again.close()


# ---------------------------------------------------------------- contract: a model comparison

ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 20)),
        st.tuples(st.just("ack"), st.integers(0, 30)),
        st.tuples(st.just("reopen"), st.just(0)),
    ),
    max_size=25,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ops=ops,
    budget_rows=st.integers(5, 60),
    policy=st.sampled_from(["drop_oldest", "refuse_newest"]),
)
def test_contract_matches_model(
    tmp_path_factory: pytest.TempPathFactory, ops: list, budget_rows: int, policy: str
) -> None:
    """Whatever happens, the buffer holds exactly what a list model says, and counts the rest."""
    path = tmp_path_factory.mktemp("c") / "b.sqlite"
    size = row_size(reading(0, tag="q"))
    kw = {"max_bytes": size * budget_rows, "policy": policy}
    buf = open_buffer(path, **kw)
    model: list[tuple[int, Reading]] = []
    issued, dropped, n = [], 0, 0
    for op, arg in ops:
        if op == "append":
            batch = [reading(n + i, tag="q") for i in range(arg)]
            n += arg
            first, last = buf.append(batch)
            stored = list(zip(range(first, last + 1), batch, strict=False))
            model += stored
            issued += [s for s, _ in stored]
            dropped += arg - len(stored)
            if len(model) > budget_rows:
                dropped += len(model) - budget_rows
                model = model[len(model) - budget_rows :]
        elif op == "ack" and model:
            cut = model[min(arg, len(model) - 1)][0]
            buf.ack(model[0][0], cut)
            model = [m for m in model if m[0] > cut]
        elif op == "reopen":
            buf.close()
            buf = open_buffer(path, **kw)
        assert buf.pending(1000) == model
        assert buf.depth == len(model)
        assert sum(buf.dropped.values()) == dropped
        assert issued == sorted(set(issued))  # strictly increasing, never reused
    buf.close()


@pytest.mark.parametrize("page", [5, 20, 40])
def test_garbled_page_in_the_middle_loses_only_its_rows(tmp_path: Path, page: int) -> None:
    """A bad SD card sector: one page of noise; the rows before and after it are kept."""
    path = tmp_path / "b.sqlite"
    buf = open_buffer(path)
    first, _ = buf.append(readings(0, 3000))
    buf._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
    buf.close()
    with path.open("r+b") as f:
        f.seek(page * 4096)
        f.write(random.Random(page).randbytes(4096))
    again = open_buffer(path)
    kept = again.pending(10_000)
    assert again.quarantined
    assert all(r == reading(s - first) for s, r in kept)
    assert 3000 - 200 < len(kept) < 3000  # one page holds well under 200 of these rows
    assert again.dropped["corrupt"] == 3000 - len(kept)

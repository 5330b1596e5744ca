"""Store tiers: ingest-time rollups, retention per tier, chunk splitting, read-only replicas,
and the conversion of a schema-1 file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from edge_node.store import RetentionConfig, Store, StoreError
from edge_node.store.cache import size_of
from edge_node.store.model import HOUR_NS, QUALITY_CODE
from edge_node.store.reader import history
from edge_node.store.retention import parse_duration
from factory_common.wire import WIRE_VERSION, Batch, Quality, Reading

T0 = 1_764_000_000 * 10**9 - (1_764_000_000 * 10**9) % HOUR_NS
SECOND = 10**9
MINUTE = 60 * SECOND


def batch(first_seq: int, values: list, *, tag: str = "temp", step: int = SECOND) -> Batch:
    readings = [
        Reading(device="bath", tag=tag, ts=T0 + (first_seq + i) * step, value=v)
        for i, v in enumerate(values)
    ]
    return Batch(
        v=WIRE_VERSION,
        gateway="gw1",
        boot="b",
        first_seq=first_seq,
        last_seq=first_seq + len(values) - 1,
        readings=readings,
    )


def info(store: Store, name: str = "gw1/bath/temp"):
    (found,), _ = store.lookup([name])
    return found


def test_hour_rollups_are_kept_at_ingest_and_match_the_raw_values(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    values = [float(i % 97) for i in range(3 * 3600)]
    for lo in range(0, len(values), 1000):  # many commits: the upserts must merge exactly
        store.write([batch(lo, values[lo : lo + 1000])])
    (buckets,) = store.downsample([info(store)], T0, T0 + 3 * HOUR_NS, 3)
    assert buckets is not None and buckets.t.tolist() == [T0 + h * HOUR_NS for h in range(3)]
    for h in range(3):
        part = values[h * 3600 : (h + 1) * 3600]
        assert buckets.min[h] == min(part) and buckets.max[h] == max(part)
        assert buckets.count[h] == 3600 and buckets.mean[h] == pytest.approx(np.mean(part))
        assert buckets.last is not None and buckets.last[h] == part[-1]
    store.close()


def test_compaction_splits_a_chunk_at_the_cutoff_and_packs_minutes(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    store.write([batch(0, [1.0] * 5400)])  # one chunk, 1.5 hours
    assert store.compact(T0 + HOUR_NS) == 3600
    assert store.stats()["recent_rows"] == 1800
    minutes = store._writer_conn.execute("SELECT count(*) FROM rollup_minute").fetchone()[0]
    packed = store._writer_conn.execute("SELECT count(*) FROM minute_blocks").fetchone()[0]
    assert (minutes, packed) == (30, 1)  # the first hour's 60 minutes are in one blob
    (buckets,) = store.downsample([info(store)], T0, T0 + 90 * MINUTE, 90)
    assert buckets is not None and buckets.count.tolist() == [60] * 90
    (data,) = store.history([info(store)], T0, T0 + 2 * HOUR_NS)
    assert len(data) == 5400
    store.close()


def test_retention_drops_each_tier_at_its_own_age(tmp_path: Path) -> None:
    retention = RetentionConfig(raw="1h", minute="2h", hour="3h")
    store = Store(tmp_path / "s.sqlite", retention=retention)
    store.write([batch(0, [float(i) for i in range(4 * 3600)])])  # hours 0..3
    store.compact(T0 + 4 * HOUR_NS)  # packs all; retention relative to T0 + 4 h
    (raw,) = store.history([info(store)], T0, T0 + 4 * HOUR_NS)
    assert raw.ts.min() >= T0 + 3 * HOUR_NS  # raw: only the last hour
    (minutes,) = store.downsample([info(store)], T0, T0 + 4 * HOUR_NS, 240)
    assert minutes is not None and minutes.t.min() == T0 + 2 * HOUR_NS
    (hours,) = store.downsample([info(store)], T0, T0 + 4 * HOUR_NS, 4)
    assert hours is not None and hours.t.tolist() == [T0 + h * HOUR_NS for h in (1, 2, 3)]
    store.close()


def test_durations_and_their_order_are_checked() -> None:
    assert parse_duration("30d") == 30 * 86400 and parse_duration(90) == 90.0
    assert parse_duration("1.5h") == 5400 and parse_duration(None) is None
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("a month")
    with pytest.raises(ValidationError, match="must not shrink"):
        RetentionConfig(raw="30d", minute="7d")
    assert RetentionConfig(hour=None).cutoffs(10**18).keys() == {"raw", "minute"}


def test_a_read_only_store_sees_the_writers_data_and_refuses_writes(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="ingest process"):
        Store(tmp_path / "missing.sqlite", read_only=True)
    writer = Store(tmp_path / "s.sqlite")
    reader = Store(tmp_path / "s.sqlite", read_only=True)
    writer.write([batch(0, [1.0, 2.0])])
    (data,) = reader.history([info(reader)], T0, T0 + HOUR_NS)
    assert data.values.tolist() == [1.0, 2.0]
    with pytest.raises(StoreError, match="read-only"):
        reader.write([batch(2, [3.0])])
    reader.close()
    writer.close()


def test_a_file_from_a_newer_edge_node_is_refused_by_writer_and_reader(tmp_path: Path) -> None:
    """Its blocks may be laid out in a way this edge-node would misread: a read-only replica
    must refuse it as the writer does, not serve wrong readings."""
    path = tmp_path / "s.sqlite"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    for read_only in (False, True):
        with pytest.raises(StoreError, match="schema version 99, newer than this edge-node"):
            Store(path, read_only=read_only)
    (tmp_path / "garbage.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match=r"garbage\.sqlite: file is not a database"):
        Store(tmp_path / "garbage.sqlite", read_only=True)


def test_a_schema_1_file_is_converted_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE series (id INTEGER PRIMARY KEY, gateway TEXT NOT NULL, device TEXT NOT NULL,
            tag TEXT NOT NULL, kind TEXT NOT NULL, unit TEXT, first_seen INTEGER NOT NULL,
            last_ts INTEGER, last_value, last_quality INTEGER, last_reason TEXT,
            UNIQUE (gateway, device, tag));
        CREATE TABLE recent (series_id INTEGER NOT NULL, ts INTEGER NOT NULL, value,
            quality INTEGER NOT NULL, reason TEXT);
        CREATE TABLE blocks (series_id INTEGER NOT NULL, hour INTEGER NOT NULL,
            n INTEGER NOT NULL, t_min INTEGER NOT NULL, t_max INTEGER NOT NULL,
            data BLOB NOT NULL, minutes BLOB, PRIMARY KEY (series_id, hour));
        PRAGMA user_version = 1;
        """
    )
    conn.execute(
        "INSERT INTO series VALUES (1, 'gw1', 'bath', 'temp', 'num', NULL, 0, NULL,"
        " NULL, NULL, NULL)"
    )
    conn.executemany(
        "INSERT INTO recent VALUES (1, ?, ?, 0, NULL)",
        [(T0 + i * SECOND, float(i)) for i in range(120)],
    )
    conn.commit()
    conn.close()
    store = Store(path)
    (data,) = store.history([info(store)], T0, T0 + HOUR_NS)
    assert data.values.tolist() == [float(i) for i in range(120)]
    (buckets,) = store.downsample([info(store)], T0, T0 + 2 * MINUTE, 2)
    assert buckets is not None and buckets.count.tolist() == [60, 60]
    store.close()


def test_small_chunks_are_merged_in_place_keeping_arrival_order(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    for second in range(300):  # line rate: one tiny commit per second
        store.write([batch(second, [float(second % 7)])])
    # Two readings with the same ts in different commits: arrival order must survive.
    late = Reading(device="bath", tag="temp", ts=T0 + 5 * SECOND, value=99.0)
    store.write([Batch(v=WIRE_VERSION, gateway="gw1", boot="b", first_seq=300, last_seq=300,
                       readings=[late])])  # fmt: skip
    before = store.history([info(store)], T0, T0 + HOUR_NS)[0]
    assert store.compact(T0) == 0  # nothing is an hour old: only merging happens
    chunks = store._writer_conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    after = store.history([info(store)], T0, T0 + HOUR_NS)[0]
    assert chunks == 1 and store.stats()["recent_rows"] == 301
    assert after.ts.tolist() == before.ts.tolist()
    assert after.values.tolist() == before.values.tolist()
    assert after.values.tolist()[5:7] == [5.0, 99.0]
    store.close()


def test_decoded_blocks_are_cached_until_a_block_grows(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    store.write([batch(0, [float(i) for i in range(3600)])])
    store.compact(T0 + HOUR_NS)
    first = store.history([info(store)], T0, T0 + HOUR_NS)[0]
    second = store.history([info(store)], T0, T0 + HOUR_NS)[0]
    assert store.cache.hits == 1 and second.values.tolist() == first.values.tolist()
    second.values[0] = -1.0  # what callers get is theirs to change, not the cache's
    assert store.history([info(store)], T0, T0 + HOUR_NS)[0].values[0] == 0.0
    late = Reading(device="bath", tag="temp", ts=T0 + SECOND // 2, value=0.5)
    store.write([Batch(v=WIRE_VERSION, gateway="gw1", boot="b", first_seq=3600, last_seq=3600,
                       readings=[late])])  # fmt: skip
    store.compact(T0 + HOUR_NS)  # merges into the hour's block: a new key
    grown = store.history([info(store)], T0, T0 + HOUR_NS)[0]
    assert len(grown) == 3601 and grown.values[1] == 0.5
    store.close()


def test_the_cache_counts_what_it_holds_and_holds_it_read_only(tmp_path: Path) -> None:
    """Decoded blocks and runs are put in the cache sized by the reader: the count must be
    what size_of says, or the byte bound drifts; and callers must not be able to change them."""
    store = Store(tmp_path / "s.sqlite")
    for first in range(0, 3 * 3600, 1800):
        store.write([batch(first, [float(i % 50) / 4 for i in range(1800)])])
    store.write([batch(3 * 3600, ["a", "b", True, None])])  # an object block among numbers
    store.compact(T0 + 3 * HOUR_NS)
    store.history([info(store)], T0, T0 + 4 * HOUR_NS)
    store.history([info(store)], T0 + HOUR_NS // 2, T0 + 2 * HOUR_NS)  # another run
    held = list(store.cache._items.values())
    assert len(held) > 5 and store.cache._bytes == sum(size for _, size in held)
    assert all(size == size_of(value) for value, size in held)

    def arrays(value: object) -> list[np.ndarray]:
        if isinstance(value, np.ndarray):
            return [value]
        if isinstance(value, tuple):
            return [a for item in value for a in arrays(item)]
        return []

    found = [a for value, _ in held for a in arrays(value)]
    assert found and not any(a.flags.writeable for a in found)
    store.close()


def test_quality_of_packed_hours_survives_the_cache_and_the_join(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    good = [Reading(device="bath", tag="temp", ts=T0 + s * SECOND, value=float(s))
            for s in range(0, 7200, 60)]  # fmt: skip
    bad = Reading(device="bath", tag="temp", ts=T0 + 7230 * SECOND, value=None,
                  quality=Quality.BAD, reason="timeout")  # fmt: skip
    readings = [*good, bad, Reading(device="bath", tag="temp", ts=T0 + 7260 * SECOND, value=1.0)]
    store.write([Batch(v=WIRE_VERSION, gateway="gw1", boot="b", first_seq=0,
                       last_seq=len(readings) - 1, readings=readings)])  # fmt: skip
    store.compact(T0 + 3 * HOUR_NS)  # three blocks; only the last holds a bad reading
    span = (T0, T0 + 3 * HOUR_NS)
    reads = [store.history([info(store)], *span)[0] for _ in range(2)]  # decoded, then cached
    uncached = Store(tmp_path / "s.sqlite", read_only=True)
    reads.append(history(uncached._reader(), [info(uncached)], *span)[0])
    for read in reads:
        assert len(read) == 122 and read.quality.nonzero()[0].tolist() == [120]
        assert read.quality[120] == QUALITY_CODE[Quality.BAD]
    uncached.close()
    store.close()


def test_minute_summaries_are_cached_until_compaction_rewrites_their_hour(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "s.sqlite")
    store.write([batch(0, [float(i % 60) for i in range(3600)])])
    store.compact(T0 + HOUR_NS)  # the hour's minutes now lie in one minute block
    span = (T0, T0 + 2 * HOUR_NS)
    (first,) = store.downsample([info(store)], *span, 60)
    hits = store.cache.hits
    (again,) = store.downsample([info(store)], *span, 60)
    assert store.cache.hits == hits + 1  # a warm query unpacks nothing again
    assert again is not None and first is not None and again.max.tolist() == first.max.tolist()
    assert first.max[2] == 59.0 and first.count[2] == 120
    late = Reading(device="bath", tag="temp", ts=T0 + 4 * MINUTE + SECOND // 2, value=1000.0)
    store.write([Batch(v=WIRE_VERSION, gateway="gw1", boot="b", first_seq=3600, last_seq=3600,
                       readings=[late])])  # fmt: skip
    store.compact(T0 + HOUR_NS)  # merges into the hour's minute block: a rewritten row
    (grown,) = store.downsample([info(store)], *span, 60)
    assert grown is not None and grown.max[2] == 1000.0 and grown.count[2] == 121
    store.close()


def test_the_open_hour_read_through_the_cache_follows_new_and_merged_chunks(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "s.sqlite")
    one, other = info_after(store, batch(0, [0.0, 1.0])), None
    assert store.history([one], T0, T0 + HOUR_NS)[0].values.tolist() == [0.0, 1.0]
    store.write([batch(2, [2.0]), batch(3, [3.0], tag="level")])  # a new chunk, a new series
    other = info(store, "gw1/bath/level")
    first, second = store.history([one, other], T0, T0 + HOUR_NS)
    assert first.values.tolist() == [0.0, 1.0, 2.0] and second.values.tolist() == [3.0]
    for seq in range(4, 8):  # small chunks that compaction merges into the first one's id
        store.write([batch(seq, [float(seq)])])
    assert store.compact(T0) == 0
    merged = store.history([one, other], T0, T0 + HOUR_NS)
    assert merged[0].values.tolist() == [0.0, 1.0, 2.0, 4.0, 5.0, 6.0, 7.0]
    assert merged[1].values.tolist() == [3.0]
    fresh = Store(tmp_path / "s.sqlite", read_only=True)  # no cache: the same answer
    assert [d.values.tolist() for d in fresh.history([one, other], T0, T0 + HOUR_NS)] == [
        d.values.tolist() for d in merged
    ]
    fresh.close()
    store.close()


def info_after(store: Store, first: Batch):
    store.write([first])
    return info(store)


def test_a_compaction_between_a_querys_statements_neither_doubles_nor_drops(
    tmp_path: Path,
) -> None:
    """History reads the open chunks, then the blocks: compaction moving the readings from
    one to the other in between must not show them twice (one read transaction)."""
    store = Store(tmp_path / "s.sqlite")
    store.write([batch(0, [float(i) for i in range(120)])])
    conn = store._reader()
    moved: list[int] = []

    def compact_once(sql: str) -> None:  # runs as the reader starts its blocks statement
        if "FROM blocks" in sql and not moved:
            moved.append(store.compact(T0 + HOUR_NS))

    conn.set_trace_callback(compact_once)
    try:
        read = store.history([info(store)], T0, T0 + HOUR_NS)[0]
    finally:
        conn.set_trace_callback(None)
    assert moved == [120]  # compaction did run in between
    assert read.values.tolist() == [float(i) for i in range(120)]
    assert store.history([info(store)], T0, T0 + HOUR_NS)[0].values.tolist() == read.values.tolist()
    store.close()

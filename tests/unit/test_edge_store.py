"""The edge store: exactly-once ingest, ordering, compaction, downsampling, restart."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from edge_node.store import SeriesData, SeriesInfo, Store
from edge_node.store.downsample import (
    last_per_bucket,
    min_max_mean,
    min_max_mean_at,
    rollup_grid,
)
from edge_node.store.model import HOUR_NS
from edge_node.store.reader import downsample, history
from factory_common.wire import WIRE_VERSION, Batch, GatewayStatus, Quality, Reading

T0 = 1_764_000_000 * 10**9 - (1_764_000_000 * 10**9) % HOUR_NS  # a UTC hour boundary
SECOND = 10**9


def batch(
    first_seq: int,
    values: list,
    *,
    gateway: str = "gw1",
    tag: str = "temp",
    t0: int = T0,
    step: int = SECOND,
) -> Batch:
    """Reading i has seq first_seq + i and ts t0 + seq * step, so time order = seq order."""
    readings = [
        Reading(device="bath", tag=tag, ts=t0 + (first_seq + i) * step, value=v)
        for i, v in enumerate(values)
    ]
    return Batch(
        v=WIRE_VERSION,
        gateway=gateway,
        boot="b1",
        first_seq=first_seq,
        last_seq=first_seq + len(values) - 1,
        readings=readings,
    )


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "ts.sqlite")
    yield s
    s.close()


def values_of(
    store: Store, name: str = "gw1/bath/temp", start: int = T0, end: int = T0 + 10 * HOUR_NS
) -> tuple[list[int], list]:
    (info,), unknown = store.lookup([name])
    assert not unknown
    (data,) = store.history([info], start, end)
    values = data.values.tolist() if isinstance(data.values, np.ndarray) else data.values
    return [int(t) for t in data.ts], values


def test_replayed_batch_changes_nothing(store: Store) -> None:
    first = store.write([batch(0, [1.0, 2.0, 3.0])])
    again = store.write([batch(0, [1.0, 2.0, 3.0])])
    assert (first.stored, first.duplicates) == (3, 0)
    assert (again.stored, again.duplicates) == (0, 3)
    assert values_of(store)[1] == [1.0, 2.0, 3.0]
    assert store.received("gw1") == [(0, 2)]


def test_overlapping_batches_store_only_the_new_part(store: Store) -> None:
    store.write([batch(0, [float(i) for i in range(10)])])
    result = store.write([batch(5, [float(i) for i in range(5, 15)])])
    assert (result.stored, result.duplicates) == (5, 5)
    ts, values = values_of(store)
    assert values == [float(i) for i in range(15)]
    assert ts == [T0 + i * SECOND for i in range(15)]


def test_duplicates_inside_one_write_are_stored_once(store: Store) -> None:
    result = store.write([batch(0, [1.0, 2.0]), batch(0, [1.0, 2.0]), batch(1, [2.0, 3.0])])
    assert (result.stored, result.duplicates) == (3, 3)
    assert values_of(store)[1] == [1.0, 2.0, 3.0]


def test_live_before_backlog_ends_merged_and_in_time_order(store: Store) -> None:
    store.write([batch(100, [100.0, 101.0])])  # live data overtakes the backlog
    assert store.received("gw1") == [(100, 101)]
    store.write([batch(0, [float(i) for i in range(50)])])
    assert store.received("gw1") == [(0, 49), (100, 101)]
    store.write([batch(50, [float(i) for i in range(50, 100)])])
    assert store.received("gw1") == [(0, 101)]
    ts, values = values_of(store)
    assert values == [float(i) for i in range(102)]
    assert ts == sorted(ts)
    (latest,) = store.latest()
    assert latest.value == 101.0  # the older backlog did not overwrite the latest value


def test_sequences_are_per_gateway(store: Store) -> None:
    store.write([batch(0, [1.0]), batch(0, [2.0], gateway="gw2")])
    assert values_of(store, "gw2/bath/temp")[1] == [2.0]


def test_strings_bools_none_and_quality(store: Store) -> None:
    store.write(
        [
            batch(0, ["P-001", "P-002"], tag="product"),
            batch(2, [True, False, True], tag="running"),
        ]
    )
    bad = Reading(
        device="bath", tag="temp", ts=T0, value=None, quality=Quality.BAD, reason="timeout"
    )
    store.write(
        [Batch(v=WIRE_VERSION, gateway="gw1", boot="b", first_seq=5, last_seq=5, readings=[bad])]
    )
    assert values_of(store, "gw1/bath/product")[1] == ["P-001", "P-002"]
    assert values_of(store, "gw1/bath/running")[1] == [True, False, True]
    (info,), _ = store.lookup(["gw1/bath/temp"])
    (data,) = store.history([info], T0, T0 + SECOND)
    assert np.isnan(data.values[0]) and data.quality.tolist() == [2]
    latest = {v.series.name: v for v in store.latest()}
    assert latest["gw1/bath/temp"].quality == "bad"
    assert latest["gw1/bath/temp"].reason == "timeout"
    assert latest["gw1/bath/running"].value is True


def test_compaction_keeps_every_reading_and_merges_late_backlog(store: Store) -> None:
    n = 5400  # 1.5 hours of temp at 1 Hz, seqs 0..5399
    store.write([batch(0, [round(20 + i * 0.1, 1) for i in range(n)])])
    products = [f"P{i // 600}" for i in range(3 * 3600)]  # 3 hours, seqs from 100000
    store.write([batch(100_000, products, tag="product", t0=T0 - 100_000 * SECOND)])
    before = values_of(store), values_of(store, "gw1/bath/product")
    moved = store.compact(T0 + 2 * HOUR_NS + 5)  # hours 0 and 1 are complete
    assert moved == n + 2 * 3600
    assert store.stats()["blocks"] == 4 and store.stats()["recent_rows"] == 3600
    assert (values_of(store), values_of(store, "gw1/bath/product")) == before
    # A backlog for the compacted first hour arrives late: it merges into the block.
    late = batch(n, [1.5, 2.5], t0=T0 - n * SECOND + 11 * SECOND // 2)
    store.write([late])
    assert store.compact(T0 + 2 * HOUR_NS) == 2
    ts, values = values_of(store)
    assert len(values) == n + 2 and ts == sorted(ts)
    assert values[:10] == [20.0, 20.1, 20.2, 20.3, 20.4, 20.5, 1.5, 20.6, 2.5, 20.7]


def test_history_range_is_half_open_across_blocks_and_recent(store: Store) -> None:
    store.write([batch(0, [float(i) for i in range(7200)])])
    store.compact(T0 + HOUR_NS)  # first hour in a block, second hour in recent
    _ts, values = values_of(store, start=T0 + 3598 * SECOND, end=T0 + 3602 * SECOND)
    assert values == [3598.0, 3599.0, 3600.0, 3601.0]


def test_restart_keeps_data_latest_and_dedup_state(tmp_path: Path) -> None:
    store = Store(tmp_path / "ts.sqlite")
    store.write(
        [batch(0, [1.0, 2.0])], [GatewayStatus(v=WIRE_VERSION, gateway="gw1", online=True, ts=5)]
    )
    store.close()
    store = Store(tmp_path / "ts.sqlite")
    try:
        assert store.write([batch(0, [1.0, 2.0])]).stored == 0
        assert values_of(store)[1] == [1.0, 2.0]
        assert [v.value for v in store.latest()] == [2.0]
        (gw,) = store.gateways()
        assert (gw.gateway, gw.online, gw.ts) == ("gw1", True, 5)
    finally:
        store.close()


def test_min_max_mean_on_a_known_series() -> None:
    ts = T0 + np.arange(100, dtype=np.int64) * SECOND
    values = np.arange(100, dtype=np.float64)
    values[37] = 1000.0  # a spike must survive
    values[55] = np.nan  # a reading without a value is skipped
    b = min_max_mean(ts, values, T0, T0 + 100 * SECOND, 10)
    assert b.t.tolist() == [T0 + i * 10 * SECOND for i in range(10)]
    assert b.min.tolist() == [float(10 * i) for i in range(10)]
    assert b.max[3] == 1000.0 and b.max[0] == 9.0
    assert b.count.tolist() == [10, 10, 10, 10, 10, 9, 10, 10, 10, 10]
    assert b.mean[0] == 4.5 and b.mean[5] == pytest.approx((sum(range(50, 60)) - 55) / 9)


def test_min_max_mean_never_exceeds_points_and_skips_empty_buckets() -> None:
    ts = T0 + np.array([0, 1, 2, 90, 91], dtype=np.int64) * SECOND
    b = min_max_mean(ts, np.ones(5), T0, T0 + 100 * SECOND + 1, 7)
    assert len(b.t) == 2 and b.count.tolist() == [3, 2]


def test_last_per_bucket_for_strings() -> None:
    ts = T0 + np.array([0, 1, 5, 6], dtype=np.int64) * SECOND
    t, v = last_per_bucket(ts, ["a", "b", "c", "d"], T0, T0 + 10 * SECOND, 2)
    assert v == ["b", "d"] and t.tolist() == [T0 + SECOND, T0 + 6 * SECOND]


_deliveries = st.lists(
    st.tuples(st.integers(0, 60), st.integers(1, 15), st.booleans()), min_size=1, max_size=25
)


@settings(max_examples=60, deadline=None)
@given(_deliveries)
def test_any_delivery_order_stores_each_seq_exactly_once(
    deliveries: list[tuple[int, int, bool]],
) -> None:
    """Batches cut anywhere from one gateway's stream, replayed, overlapping and out of order,
    with compaction in between: the store ends with exactly the readings of the seqs seen."""
    stream = [round(i * 0.5, 1) for i in range(80)]  # seq i was taken at T0 + i * 60 s
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "ts.sqlite")
        try:
            seen: set[int] = set()
            for first, length, compact in deliveries:
                store.write([batch(first, stream[first : first + length], step=60 * SECOND)])
                seen.update(range(first, min(first + length, len(stream))))
                if compact:
                    store.compact(T0 + HOUR_NS)  # the first hour goes into a block
            ts, values = values_of(store)
            assert values == [stream[i] for i in sorted(seen)]
            assert ts == [T0 + i * 60 * SECOND for i in sorted(seen)]
        finally:
            store.close()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 3 * 3600 - 1), min_size=1, max_size=300, unique=True),
    st.integers(0, 3 * 3600),
    st.integers(1, 3 * 3600),
    st.integers(1, 200),
    st.integers(0, 3),
)
# A range off the minute grid widened to whole minutes once gave points + 1 buckets.
@example(seconds=[1, 900], start_s=1, span_s=900, points=1, compact_hours=0)
def test_minute_summaries_give_the_same_buckets_as_raw_readings(
    seconds: list[int], start_s: int, span_s: int, points: int, compact_hours: int
) -> None:
    """Blocks' minute summaries plus recent rows answer exactly what the raw readings would."""
    values = [None if s % 17 == 0 else round((s * 7919) % 1000 * 0.1, 1) for s in seconds]
    readings = [
        Reading(device="bath", tag="temp", ts=T0 + s * SECOND + 123, value=v)
        for s, v in zip(seconds, values, strict=True)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "ts.sqlite")
        try:
            half = len(readings) // 2  # some readings arrive after the compaction
            store.write(
                [
                    Batch(
                        v=WIRE_VERSION,
                        gateway="gw1",
                        boot="b",
                        first_seq=0,
                        last_seq=half - 1,
                        readings=readings[:half],
                    )
                ]
                if half
                else []
            )
            store.compact(T0 + compact_hours * HOUR_NS)
            store.write(
                [
                    Batch(
                        v=WIRE_VERSION,
                        gateway="gw1",
                        boot="b",
                        first_seq=half,
                        last_seq=len(readings) - 1,
                        readings=readings[half:],
                    )
                ]
            )
            (info,), _ = store.lookup(["gw1/bath/temp"])
            start, end = T0 + start_s * SECOND, T0 + (start_s + span_s) * SECOND
            (fast,) = store.downsample([info], start, end, points)
            if fast is None:  # buckets under a minute: the raw path answers
                assert span_s // points < 60
                return
            grid = rollup_grid(start, end, points)
            assert grid is not None
            origin, width, stop, unit = grid
            assert origin % unit == 0 and stop % unit == 0 and width % unit == 0
            assert origin <= start and end <= stop
            (raw,) = store.history([info], origin, stop)
            slow = min_max_mean_at(raw.ts, raw.values, origin, width)
            numbers = ~np.isnan(raw.values)
            index = (raw.ts[numbers] - origin) // width
            ends = np.flatnonzero(np.concatenate((index[1:] != index[:-1], [len(index) > 0])))
            assert fast.last is not None
            assert fast.last.tolist() == raw.values[numbers][ends].tolist()
            assert fast.t.tolist() == slow.t.tolist() and len(fast.t) <= points
            assert fast.count.tolist() == slow.count.tolist()
            assert fast.min.tolist() == slow.min.tolist()
            assert fast.max.tolist() == slow.max.tolist()
            assert fast.mean.tolist() == pytest.approx(slow.mean.tolist())
        finally:
            store.close()


Row = tuple[str, int, bool | int | float | str | None]  # tag, ts, value


def _series_batch(gateway: str, boot: str, seq: int, rows: list[Row]) -> Batch:
    readings = [  # a reading without a value is a bad one here
        Reading(
            device="line",
            tag=tag,
            ts=ts,
            value=v,
            quality=Quality.BAD if v is None else Quality.GOOD,
        )
        for tag, ts, v in rows
    ]
    return Batch(
        v=WIRE_VERSION,
        gateway=gateway,
        boot=boot,
        first_seq=seq,
        last_seq=seq + len(rows) - 1,
        readings=readings,
    )


def _plain(data: SeriesData) -> list[tuple[int, object]]:
    values = data.values.tolist() if isinstance(data.values, np.ndarray) else data.values
    values = [None if v != v else v for v in values]
    assert data.quality.tolist() == [0 if v is not None else 2 for v in values]
    return [(int(t), v) for t, v in zip(data.ts, values, strict=True)]


def test_history_of_many_series_is_what_was_written(tmp_path: Path) -> None:
    """Blocks decoded many at once, from the cache, with and without it, and the open hour,
    across gaps, a reboot, late backlogs merged into blocks and ones still in chunks."""
    step = 10 * SECOND
    kinds = {
        "dec": lambda i: round(20 + 0.1 * (i % 97), 1),  # decimal ints in blocks
        "flt": lambda i: 1 / (i + 3),  # float bits
        "int": lambda i: None if i % 50 == 0 else i * 7,
        "flag": lambda i: i % 3 == 0,
        "product": lambda i: f"P{i // 100}",
    }
    rows: list[Row] = []
    held: list[Row] = []  # a backlog the gateway sends late
    for hour in (0, 1, 2, 4, 5, 6):  # hour 3: the gateway was off
        for i in range(hour * 360, (hour + 1) * 360, 1 if hour != 5 else 3):
            for tag, value in kinds.items():
                row = (tag, T0 + i * step + (i % 7) * 1000, value(i))
                (held if hour in (1, 4, 6) and i % 11 == 0 else rows).append(row)
    path = tmp_path / "ts.sqlite"
    store = Store(path)
    first = [r for r in rows if r[1] < T0 + 3 * HOUR_NS]
    store.write([_series_batch("gw", "boot-1", 0, first)])
    store.write([_series_batch("gw", "boot-2", 100_000, [r for r in rows if r not in first])])
    store.compact(T0 + 6 * HOUR_NS)  # hour 6 stays open
    store.write(
        [_series_batch("gw", "boot-2", 200_000, [r for r in held if r[1] < T0 + 3 * HOUR_NS])]
    )
    store.compact(T0 + 6 * HOUR_NS)  # hour 1's backlog merges into its blocks
    store.write(
        [_series_batch("gw", "boot-2", 300_000, [r for r in held if r[1] >= T0 + 3 * HOUR_NS])]
    )
    written = {tag: sorted((ts, v) for t, ts, v in rows + held if t == tag) for tag in kinds}
    for start, end in ((T0, T0 + 7 * HOUR_NS), (T0 + HOUR_NS // 3, T0 + 6 * HOUR_NS + 7 * step)):
        want = {tag: [(t, v) for t, v in got if start <= t < end] for tag, got in written.items()}
        infos, _ = store.lookup([f"gw/line/{tag}" for tag in kinds])
        reader = Store(path, read_only=True)
        cold = reader.history(infos, start, end)
        assert {d.series.tag: _plain(d) for d in cold} == want
        for data in cold:  # the caller owns its arrays: changing them reaches no later answer
            data.ts[:] = 0
            if isinstance(data.values, np.ndarray):
                data.values[:] = 0
        answers = {
            "warm": reader.history(infos, start, end),
            "uncached": history(reader._reader(), infos, start, end),
        }
        for how, found in answers.items():
            assert {d.series.tag: _plain(d) for d in found} == want, how
        for points in (100, 7, 1):  # minute rollups of finished and open hours; hour rollups
            _rollups_answer_as_raw(reader, infos, start, end, points)
        reader.close()
    store.close()


def _rollups_answer_as_raw(
    store: Store, infos: list[SeriesInfo], start: int, end: int, points: int
) -> None:
    """All series' buckets from one call (cold, then warm, then without the cache) are
    what each series' raw readings give."""
    grid = rollup_grid(start, end, points)
    assert grid is not None
    origin, width, _stop, _unit = grid
    answers = [store.downsample(infos, start, end, points) for _ in range(2)]
    answers.append(downsample(store._reader(), infos, start, end, points))
    for found in answers:
        for info, fast in zip(infos, found, strict=True):
            if info.kind == "str":
                assert fast is None
                continue
            assert fast is not None
            (raw,) = store.history([info], origin, grid.stop)
            slow = min_max_mean_at(raw.ts, raw.values, origin, width)
            assert fast.t.tolist() == slow.t.tolist(), info.tag
            assert fast.count.tolist() == slow.count.tolist(), info.tag
            assert fast.min.tolist() == slow.min.tolist(), info.tag
            assert fast.max.tolist() == slow.max.tolist(), info.tag
            assert fast.mean.tolist() == pytest.approx(slow.mean.tolist()), info.tag

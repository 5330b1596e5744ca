"""Sync up into a real MariaDB (fresh database per test): summaries, changes, outbox records."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pymysql
import pytest

from edge_node.cloud.config import CloudConfig
from edge_node.cloud.link import CloudLink
from edge_node.cloud.mysql import CloudError, connect
from edge_node.cloud.outbox import CloudOutbox
from edge_node.cloud.up import SyncUp
from edge_node.store import Store
from edge_node.store.downsample import MINUTE_NS
from edge_node.store.model import HOUR_NS
from factory_common.wire import WIRE_VERSION, Batch, Reading
from tests.support.central import cloud_config, create_central
from tests.support.mariadb import Database

T0 = 1_764_000_000 * 10**9 - (1_764_000_000 * 10**9) % HOUR_NS  # a UTC hour boundary
SECOND = 10**9
NOW = T0 + 2 * HOUR_NS + 30 * SECOND  # both hours have settled
PRODUCTS = ["P-100"] * 30 + ["P-200"] * 30 + ["P-100"] * 10


def readings(seq: int, device: str, tag: str, values: list, step: int, t0: int = T0) -> Batch:
    rows = [
        Reading(device=device, tag=tag, ts=t0 + i * step, value=v) for i, v in enumerate(values)
    ]
    return Batch(
        v=WIRE_VERSION, gateway="gw1", boot="b1", first_seq=seq,
        last_seq=seq + len(values) - 1, readings=rows,
    )  # fmt: skip


TEMPS = [20.0 + (i % 17) * 0.1 for i in range(720)]  # every 10 s for 2 hours


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "edge.sqlite")
    s.write([readings(1, "tank1", "temperature", TEMPS, 10 * SECOND)])
    s.write([readings(1000, "line", "product", PRODUCTS, 60 * SECOND)])
    s.compact(T0 + HOUR_NS)  # hour one packed into blocks, hour two still in `recent`
    yield s
    s.close()


@pytest.fixture
def central(mariadb_db: Database) -> Database:
    create_central(mariadb_db, seed=False)
    return mariadb_db


def config(db: Database, **overrides: object) -> CloudConfig:
    return cloud_config(db, summaries_lookback=3 * 3600.0, **overrides)


def expected_minutes() -> dict[int, tuple[int, float, float, float]]:
    ts = T0 + np.arange(len(TEMPS)) * 10 * SECOND
    values = np.array(TEMPS)
    out = {}
    for minute in np.unique(ts - ts % MINUTE_NS):
        v = values[(ts >= minute) & (ts < minute + MINUTE_NS)]
        out[int(minute)] = (len(v), v.min(), v.max(), v.sum())
    return out


def cloud_minutes(db: Database) -> dict[int, tuple[int, float, float, float]]:
    rows = db.execute(
        "SELECT UNIX_TIMESTAMP(minute), n, min_value, max_value, sum_value FROM minute_summaries"
        " WHERE edge_id = 'edge1' AND series = 'gw1/tank1/temperature'"
    )
    return {int(t) * SECOND: (n, lo, hi, total) for t, n, lo, hi, total in rows}


def test_summaries_and_changes_match_the_store(central: Database, store: Store, tmp_path) -> None:
    outbox = CloudOutbox(tmp_path / "cloud.sqlite")
    pushed = SyncUp(config(central), "edge1", store, outbox).push(NOW)
    assert pushed == {"outbox": 0, "minutes": 120, "changes": 3}
    got, want = cloud_minutes(central), expected_minutes()
    assert got.keys() == want.keys()
    for minute, (n, lo, hi, total) in want.items():
        assert got[minute][0] == n
        assert got[minute][1:] == pytest.approx((lo, hi, total))
    changes = central.execute("SELECT value, UNIX_TIMESTAMP(ts) FROM events ORDER BY ts")
    assert [(v, int(t)) for v, t in changes] == [
        ("P-100", T0 // SECOND), ("P-200", T0 // SECOND + 1800), ("P-100", T0 // SECOND + 3600),
    ]  # fmt: skip
    assert outbox.mark("minutes") == T0 + 2 * HOUR_NS


def test_pushing_twice_leaves_the_same_rows(central: Database, store: Store, tmp_path) -> None:
    outbox = CloudOutbox(tmp_path / "cloud.sqlite")
    sync = SyncUp(config(central), "edge1", store, outbox)
    outbox.add("alarm", {"series": "gw1/tank1/temperature", "state": "raised"}, "a-1")
    sync.push(NOW)
    assert sync.push(NOW) == {"outbox": 0, "minutes": 0, "changes": 0}
    before = central.execute("SELECT count(*) FROM minute_summaries")
    # The edge lost its marks (a new disk): everything goes again, and the cloud is unchanged.
    again = SyncUp(config(central), "edge1", store, CloudOutbox(tmp_path / "new.sqlite"))
    again.outbox.add("alarm", {"series": "gw1/tank1/temperature", "state": "raised"}, "a-1")
    assert again.push(NOW)["minutes"] == 120
    assert central.execute("SELECT count(*) FROM minute_summaries") == before
    assert cloud_minutes(central).keys() == expected_minutes().keys()
    assert central.execute("SELECT count(*) FROM events") == [(3,)]
    assert central.execute("SELECT count(*) FROM alarms") == [(1,)]


def test_outbox_records_reach_their_tables(central: Database, store: Store, tmp_path) -> None:
    outbox = CloudOutbox(tmp_path / "cloud.sqlite")
    sync = SyncUp(config(central), "edge1", store, outbox)
    raised = {"series": "gw1/qc/colour", "rule": "beyond-3-sigma", "state": "raised",
              "severity": "high", "raised_at": "2026-11-25T08:00:00Z"}  # fmt: skip
    outbox.add("alarm", raised, "alarm-7")
    outbox.add(
        "defect",
        {"ts": 1_764_000_000_000, "product_id": "P-100", "recipe": {"id": "R-black"},
         "series": "gw1/qc/colour", "value": 3.2, "rule": "colour-defect"},
        "P-100@1764000000000",
    )  # fmt: skip
    outbox.add("event", {"kind": "label-printed", "value": "P-100"}, "label-P-100")
    assert outbox.pending_count() == 3
    assert sync.push(NOW)["outbox"] == 3
    assert outbox.pending_count() == 0
    defect = central.execute("SELECT product_id, recipe_id, value, rule FROM defects")
    assert defect == [("P-100", "R-black", 3.2, "colour-defect")]
    # The same alarm acknowledged: queued again under its key, one row in the cloud.
    outbox.add("alarm", raised | {"state": "acknowledged", "acknowledged_by": "ana"}, "alarm-7")
    assert sync.push(NOW)["outbox"] == 1
    alarms = central.execute("SELECT alarm_key, state, acknowledged_by, raised_at FROM alarms")
    assert [a[:3] for a in alarms] == [("alarm-7", "acknowledged", "ana")]
    assert str(alarms[0][3]) == "2026-11-25 08:00:00"
    assert central.execute("SELECT kind, value FROM events WHERE event_key = 'label-P-100'") == [
        ("label-printed", "P-100")
    ]


def test_late_readings_repush_their_minute(central: Database, store: Store, tmp_path) -> None:
    sync = SyncUp(config(central), "edge1", store, CloudOutbox(tmp_path / "cloud.sqlite"))
    sync.push(NOW)
    late = [Reading(device="tank1", tag="temperature", ts=T0 + 5 * SECOND, value=99.0)]
    store.write([Batch(v=WIRE_VERSION, gateway="gw1", boot="b1", first_seq=5000,
                       last_seq=5000, readings=late)])  # fmt: skip
    assert sync.push(NOW)["minutes"] == 0  # hours old: not in the quick re-check
    assert sync.push(NOW, full=True)["minutes"] == 1  # the hourly check of the lookback
    assert cloud_minutes(central)[T0][:3] == (7, 20.0, 99.0)
    recent = [Reading(device="tank1", tag="temperature", ts=NOW - 5 * 60 * SECOND, value=50.0)]
    store.write([Batch(v=WIRE_VERSION, gateway="gw1", boot="b1", first_seq=5001,
                       last_seq=5001, readings=recent)])  # fmt: skip
    assert sync.push(NOW)["minutes"] == 1  # minutes just before the mark: every push


def test_resumes_after_the_connection_dies_mid_batch(
    central: Database, store: Store, tmp_path: Path
) -> None:
    connections: list[pymysql.Connection] = []

    def connector(cfg: CloudConfig) -> pymysql.Connection:
        connections.append(connect(cfg))
        return connections[-1]

    def kill_after_first_batch(stream: str, done: int, total: int) -> None:
        if stream == "minutes" and done == 25:
            central.execute(f"KILL CONNECTION {connections[-1].thread_id()}")

    outbox = CloudOutbox(tmp_path / "cloud.sqlite")
    cfg = config(central, batch_size=25)
    broken = SyncUp(cfg, "edge1", store, outbox, connector, on_batch=kill_after_first_batch)
    with pytest.raises(CloudError, match=r"Lost connection|server has gone away|killed"):
        broken.push(NOW)
    assert central.execute("SELECT count(*) FROM minute_summaries") == [(25,)]
    resumed = SyncUp(cfg, "edge1", store, outbox).push(NOW)
    assert resumed["minutes"] == 95
    assert cloud_minutes(central).keys() == expected_minutes().keys()


async def test_a_new_record_wakes_the_push(central: Database, store: Store, tmp_path) -> None:
    link = CloudLink(config(central, up_interval=600.0, down_interval=600.0), "edge1",
                     tmp_path, store)  # fmt: skip
    task = asyncio.create_task(link.run())
    try:
        async with asyncio.timeout(10):
            while link.up.status().last_success is None:  # noqa: ASYNC110 (another task's state)
                await asyncio.sleep(0.05)
            # Added from another thread, as a rule's worker thread would.
            await asyncio.to_thread(link.outbox.add, "defect", {"product_id": "P-9"}, "P-9@1")
            while not central.execute("SELECT product_id FROM defects"):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        link.close()

"""ISA-18.2 alarm management over the HTTP API: priorities, state names, shelving with expiry
and reason, the journal of who did what, and the alarms-per-10-minutes summary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge_node.alarms import isa
from edge_node.alarms.service import AlarmService
from edge_node.alarms.shelving import Shelves
from edge_node.api import create_app
from edge_node.ingest import IngestStats
from edge_node.store import Store
from factory_common.wire import now_ns

MINUTE = 60 * 10**9


class Clock:
    def __init__(self) -> None:
        self.now = now_ns()

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def setup(tmp_path: Path, clock: Clock) -> Iterator[tuple[TestClient, AlarmService]]:
    store = Store(tmp_path / "ts.sqlite")
    alarms = AlarmService(tmp_path / "ops.sqlite")
    shelves = Shelves(tmp_path / "ops.sqlite", clock)
    app = create_app(store, IngestStats(), web=False)
    app.state.alarms, app.state.shelves = alarms, shelves
    with TestClient(app) as client:
        yield client, alarms
    shelves.close()
    alarms.close()
    store.close()


def test_shelved_alarm_leaves_the_active_list_and_returns_at_expiry(
    setup: tuple[TestClient, AlarmService], clock: Clock
) -> None:
    client, alarms = setup
    alarm = alarms.raise_("gw/bath1/temp", "spc.spec", "above USL", severity="critical")
    (shown,) = client.get("/api/alarms", params={"active": True}).json()
    assert (shown["priority"], shown["priority_name"]) == (1, "Critical")
    assert shown["state_label"] == "Active, unacknowledged" and shown["shelved"] is False
    refused = client.post(f"/api/alarms/{alarm.id}/shelve", json={"minutes": 5, "reason": " "})
    assert refused.status_code == 422 and "reason" in refused.json()["detail"]
    too_long = client.post(f"/api/alarms/{alarm.id}/shelve", json={"minutes": 900, "reason": "x"})
    assert too_long.status_code == 422
    body = {"minutes": 5, "reason": "sensor being replaced"}
    shelved = client.post(f"/api/alarms/{alarm.id}/shelve", json=body).json()
    assert shelved["state_label"] == "Shelved" and shelved["shelf"]["reason"] == body["reason"]
    visible = {"active": True, "shelved": False}
    assert client.get("/api/alarms", params=visible).json() == []
    assert len(client.get("/api/alarms", params={"active": True, "shelved": True}).json()) == 1
    # A repeat of the same alarm while shelved stays shelved.
    alarms.raise_("gw/bath1/temp", "spc.spec", "above USL again", severity="critical")
    assert client.get("/api/alarms", params=visible).json() == []
    clock.now += 5 * MINUTE + 1
    (back,) = client.get("/api/alarms", params=visible).json()
    assert back["id"] == alarm.id and back["state_label"] == "Active, unacknowledged"
    journal = client.get("/api/alarms/journal").json()
    actions = [(e["action"], e["by"], e["detail"]) for e in journal]
    assert any(a == "shelved" and d == "sensor being replaced" for a, _, d in actions)
    assert any(a == "unshelved" and by == "expiry" for a, by, _ in actions)
    assert ("raised", "system", "above USL again") in actions


def test_unshelve_and_acknowledge_are_journaled_with_the_user(
    setup: tuple[TestClient, AlarmService],
) -> None:
    client, alarms = setup
    alarm = alarms.raise_("gw/meter1/conc", "spc.rule1", "beyond 3 sigma")
    client.post(f"/api/alarms/{alarm.id}/shelve", json={"minutes": 60, "reason": "dosing test"})
    assert client.post(f"/api/alarms/{alarm.id}/unshelve").json()["shelved"] is False
    client.post(f"/api/alarms/{alarm.id}/ack")
    alarms.clear(alarm.id)
    (closed,) = client.get("/api/alarms").json()
    assert closed["state_label"] == "Normal" and closed["priority_name"] == "Medium"
    actions = [e["action"] for e in client.get("/api/alarms/journal").json()]
    assert sorted(actions) == ["acknowledged", "cleared", "raised", "shelved", "unshelved"]


def test_alarm_rate_per_ten_minutes_against_the_standard(
    setup: tuple[TestClient, AlarmService],
) -> None:
    client, alarms = setup
    for i in range(12):  # a burst: a flood by ISA-18.2 (more than 10 in 10 minutes)
        alarms.raise_(f"gw/d/t{i}", "spc.rule1", "x")
    rate = client.get("/api/alarms/rate", params={"hours": 1}).json()
    assert rate["counts"][-1] == 12 and rate["peak"] == 12 and rate["flood_windows"] == 1
    assert (rate["acceptable"], rate["manageable"], rate["flood"]) == (1, 2, 10)


def test_flood_summary_counts_windows_and_flood_time() -> None:
    start = 0
    w = isa.WINDOW_NS
    raised = [1] * 3 + [w + 1] * 11 + [2 * w + 1] * 6 + [3 * w + 1] * 4
    summary = isa.flood_summary(raised, start, 6 * w)
    assert summary.counts == [3, 11, 6, 4, 0, 0]
    assert summary.over_manageable == 4 and summary.flood_windows == 1
    # The flood starts in window 2 (11) and lasts through 6 (not below 5): 2 of 6 windows.
    assert summary.in_flood_pct == pytest.approx(33.3)
    assert summary.average == 4.0

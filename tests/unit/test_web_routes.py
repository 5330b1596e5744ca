"""Routes the page needs beyond the data API: the limits monitoring applies, the command log,
and rule counters in /metrics; each read from the real master-data, alarm and rule objects."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from edge_node.alarms.config import LimitsEntry
from edge_node.alarms.feed import Feed
from edge_node.alarms.monitor import Monitor, StaticLimits
from edge_node.alarms.service import AlarmService
from edge_node.api import create_app
from edge_node.commands import CommandLog, CommandOutcome
from edge_node.ingest import IngestStats
from edge_node.rules.engine import RuleStatus
from edge_node.store import Store
from factory_common.wire import WIRE_VERSION, Batch, Command, Reading, Write, now_ns
from tests.unit.test_web_metrics import samples


@pytest.fixture
def app(tmp_path: Path):
    store = Store(tmp_path / "ts.sqlite")
    readings = [
        Reading(device="bath", tag=tag, ts=now_ns(), value=1.0) for tag in ("temp", "ph", "flow")
    ]
    store.write(
        [Batch(v=WIRE_VERSION, gateway="gw1", boot="b", first_seq=0, last_seq=2, readings=readings)]
    )
    app = create_app(store, IngestStats(), web=False)
    yield app
    store.close()


def test_limits_are_those_monitoring_applies_to_stored_series(app, tmp_path: Path) -> None:
    alarms = AlarmService(tmp_path / "alarms.sqlite")
    entries = {
        "gw1/bath/temp": LimitsEntry(mean=20, sigma=1.5, lcl=15.5, ucl=24.5, lsl=12, usl=28),
        "gw1/bath/ph": LimitsEntry(lsl=4.0, usl=6.5),
        "gw9/other/x": LimitsEntry(usl=1.0),  # not stored here: not listed
    }
    app.state.monitor = Monitor(alarms, StaticLimits(entries), Feed("monitor"))
    with TestClient(app) as client:
        body = client.get("/api/limits").json()
    alarms.close()
    by_series = {row["series"]: row for row in body}
    assert set(by_series) == {"gw1/bath/temp", "gw1/bath/ph"}
    assert by_series["gw1/bath/temp"] == {
        "series": "gw1/bath/temp",
        "mean": 20,
        "sigma": 1.5,
        "lcl": 15.5,
        "ucl": 24.5,
        "lsl": 12,
        "usl": 28,
    }
    assert by_series["gw1/bath/ph"]["usl"] == 6.5 and by_series["gw1/bath/ph"]["lcl"] is None


def test_no_limits_source_gives_an_empty_list(app) -> None:
    with TestClient(app) as client:
        assert client.get("/api/limits").json() == []


def test_command_log_lists_recent_outcomes(app, tmp_path: Path) -> None:
    log = CommandLog(tmp_path / "alarms.sqlite")
    command = Command(
        v=WIRE_VERSION,
        id="c1",
        gateway="gw1",
        writes=[Write("bath", "sp", 21.5)],
        issued_at=now_ns(),
        expires_at=now_ns() + 10**10,
        issued_by="erin",
    )
    log.sent(command)
    log.finished(
        CommandOutcome(
            id="c1",
            gateway="gw1",
            status="done",
            writes=[],
            issued_by="erin",
            issued_at=command.issued_at,
            finished_at=now_ns(),
        )
    )
    app.state.command_log = log
    with TestClient(app) as client:
        (row,) = client.get("/api/commands").json()
    log.close()
    assert (row["id"], row["status"], row["issued_by"]) == ("c1", "done", "erin")
    assert row["writes"] == [{"device": "bath", "tag": "sp", "value": 21.5}]


def test_metrics_count_rule_firings_and_errors(app) -> None:
    app.state.rules = SimpleNamespace(
        status={"anodizing-defect": RuleStatus(fired=3, errors=1), "idle": RuleStatus()}
    )
    with TestClient(app) as client:
        got = samples(client.get("/metrics").text)
    assert got[("edge_rule_firings_total", (("rule", "anodizing-defect"),))] == 3
    assert got[("edge_rule_errors_total", (("rule", "anodizing-defect"),))] == 1
    assert got[("edge_rule_firings_total", (("rule", "idle"),))] == 0

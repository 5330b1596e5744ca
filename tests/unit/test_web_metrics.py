"""GET /metrics: Prometheus text read from the live ingest counters, store and gateway status."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from edge_node.api import create_app
from edge_node.auth import AuthService, UserStore
from edge_node.ingest import IngestStats
from edge_node.store import Store
from factory_common.wire import (
    WIRE_VERSION,
    Batch,
    ConnectorHealth,
    GatewayStatus,
    Reading,
    now_ns,
)
from tests.unit.test_auth import FAST


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def store(tmp_path: Path):
    store = Store(tmp_path / "ts.sqlite")
    readings = [
        Reading(device="bath", tag="temp", ts=now_ns() - i, value=float(i)) for i in range(7)
    ]
    status = GatewayStatus(
        v=WIRE_VERSION, gateway="gw1", online=True, buffer_depth=42, buffer_bytes=9000,
        dropped={"disk_budget": 3, "ttl": 1},
        connectors=[ConnectorHealth(name="plc", type="modbus_tcp", state="up"),
                    ConnectorHealth(name="colour", type="serial_line", state="down")],
    )  # fmt: skip
    batch = Batch(
        v=WIRE_VERSION, gateway="gw1", boot="b", first_seq=0, last_seq=6, readings=readings
    )
    store.write([batch], [status])
    yield store
    store.close()


def test_metrics_report_ingest_store_and_each_gateway(store: Store, tmp_path: Path) -> None:
    stats = IngestStats(connected=True, batches=5, readings_stored=7, readings_duplicate=2)
    stats.rejected[("gw9", "malformed")] = 4
    users = UserStore(tmp_path / "users.sqlite", hasher=FAST)
    app = create_app(store, stats, auth=AuthService(users), web=False)
    with TestClient(app) as client:
        response = client.get("/metrics")  # open, like /api/health: no login
    users.close()
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    got = samples(response.text)
    gw = (("gateway", "gw1"),)
    assert got[("edge_ingest_readings_stored_total", ())] == 7
    assert got[("edge_ingest_readings_duplicate_total", ())] == 2
    assert got[("edge_ingest_mqtt_connected", ())] == 1
    assert got[("edge_ingest_rejected_total", (("gateway", "gw9"), ("reason", "malformed")))] == 4
    assert got[("edge_store_series", ())] == 1
    assert got[("edge_store_file_bytes", ())] > 0
    assert got[("edge_gateway_online", gw)] == 1
    assert got[("edge_gateway_buffer_readings", gw)] == 42
    assert got[("edge_gateway_buffer_bytes", gw)] == 9000
    assert got[("edge_gateway_dropped_total", (("cause", "disk_budget"), *gw))] == 3
    assert got[("edge_gateway_dropped_total", (("cause", "ttl"), *gw))] == 1
    up = ("edge_gateway_connector_up", (("connector", "plc"), *gw, ("state", "up")))
    down = ("edge_gateway_connector_up", (("connector", "colour"), *gw, ("state", "down")))
    assert got[up] == 1 and got[down] == 0


def test_metrics_count_active_alarms_by_state(store: Store, tmp_path: Path) -> None:
    alarms_module = pytest.importorskip("edge_node.alarms")
    alarms = alarms_module.AlarmService(tmp_path / "alarms.sqlite")
    first = alarms.raise_("gw1/bath/temp", "usl", "above USL", value=31.0)
    alarms.raise_("gw1/bath/ph", "rule1", "beyond 3 sigma", value=9.0)
    alarms.acknowledge(first.id, "otto")
    app = create_app(store, IngestStats(), web=False)
    app.state.alarms = alarms
    with TestClient(app) as client:
        got = samples(client.get("/metrics").text)
    alarms.close()
    assert got[("edge_alarms_active", (("state", "raised"),))] == 1
    assert got[("edge_alarms_active", (("state", "acknowledged"),))] == 1

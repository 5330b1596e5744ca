"""GET /api/master/*, /api/sync and units in /api/tags, over real files (no cloud needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge_node.api import create_app
from edge_node.cloud.link import CloudLink
from edge_node.ingest import IngestStats
from edge_node.masterdata import MasterData, Pull
from edge_node.store import Store
from factory_common.wire import WIRE_VERSION, Batch, Reading

TEMP = ("gw1", "tank1", "temperature")
PULL = Pull(
    version=6,
    rows={
        "equipment": [("tank1", "Tank 1", "line1", "tank", None, 0, 1)],
        "tags": [(*TEMP, "tank1", "degC", "bath", 0, 2)],
        "recipes": [("R1", "Black", None, 0, 3)],
        "recipe_parameters": [("R1", "time", 2400.0, None, "s", 0, 3)],
        "control_limits": [(*TEMP, 18.0, 24.0, 19.5, 22.5, 21.0, 0.5, 2, None, 0, 4)],
        "products": [("P1", "Panel", "R1", 0, 5), ("P2", "Frame", "R1", 0, 6)],
    },
    full=True,
)


@pytest.fixture
def client(tmp_path: Path):
    store = Store(tmp_path / "edge.sqlite")
    reading = Reading(device="tank1", tag="temperature", ts=1_764_000_000 * 10**9, value=21.0)
    other = Reading(device="tank1", tag="level", ts=1_764_000_000 * 10**9, value=3.0)
    store.write([Batch(v=WIRE_VERSION, gateway="gw1", boot="b", first_seq=0, last_seq=1,
                       readings=[reading, other])])  # fmt: skip
    link = CloudLink(None, "edge1", tmp_path, store)
    link.masterdata.apply(PULL)
    app = create_app(store, IngestStats(), edge_id="edge1", web=False)
    app.state.cloud = link
    with TestClient(app) as test_client:
        yield test_client
    link.close()
    store.close()


def test_master_data_routes(client: TestClient) -> None:
    assert client.get("/api/master/equipment").json() == [
        {"id": "tank1", "name": "Tank 1", "line": "line1", "kind": "tank", "description": None}
    ]
    tags = client.get("/api/master/tags").json()
    assert tags[0]["name"] == "gw1/tank1/temperature" and tags[0]["unit"] == "degC"
    limits = client.get("/api/master/limits").json()
    assert limits[0]["series"] == "gw1/tank1/temperature"
    assert (limits[0]["ucl"], limits[0]["version"]) == (22.5, 2)
    assert client.get("/api/master/recipes").json() == [
        {"id": "R1", "name": "Black", "parameters": {"time": {"value": 2400.0, "unit": "s"}},
         "products": ["P1", "P2"]}
    ]  # fmt: skip


def test_units_from_master_data_reach_api_tags(client: TestClient) -> None:
    units = {t["name"]: t["unit"] for t in client.get("/api/tags").json()}
    assert units == {"gw1/tank1/temperature": "degC", "gw1/tank1/level": None}


def test_sync_status_without_a_cloud(client: TestClient) -> None:
    status = client.get("/api/sync").json()
    assert status["configured"] is False and status["up"] is None
    assert status["version"] == 6 and status["down"]["ok"] is True
    assert status["down"]["last_success"] > 0 and status["pending_outbox"] == 0
    assert client.post("/api/sync/now").status_code == 202


def test_an_api_replica_follows_the_file(tmp_path: Path) -> None:
    writer = MasterData(tmp_path / "md.sqlite")
    reader = MasterData(tmp_path / "md.sqlite")
    assert reader.refresh() is False and reader.tags() == []
    writer.apply(PULL)
    assert reader.refresh() is True
    assert reader.unit("gw1/tank1/temperature") == "degC" and reader.version() == 6
    writer.close()
    reader.close()

"""A product's whole story over the HTTP API: equipment spans, parameters, measurement,
recipe, defect with its label result, alarms meanwhile; search and the product at a moment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge_node import products
from edge_node.alarms.service import AlarmService
from edge_node.api import create_app
from edge_node.ingest import IngestStats
from edge_node.rules.store import FiringStore
from edge_node.store import Store
from factory_common.wire import WIRE_VERSION, Batch, Reading, TagCatalogue, TagInfo, TagType, now_ns

GW = "gw1"
S = 10**9
CATALOGUE = TagCatalogue(WIRE_VERSION, GW, 1, [
    TagInfo("bath1", "bath_temperature", TagType.FLOAT, unit="°C"),
    TagInfo("bath1", "recipe", TagType.INT, enum={"1": "black", "2": "blue"}),
    TagInfo("meter1", "product_delta_e", TagType.FLOAT, label="ΔE*ab"),
])  # fmt: skip


def line(t0: int) -> list[Reading]:
    """P-1 in the bath for 20 s (then idle, still showing P-1), P-2 next; the meter measures
    P-1 when it leaves the bath."""
    out = []
    for i in range(60):
        t = t0 + i * S
        pid = "P-1" if i < 40 else "P-2"
        out += [
            Reading("bath1", "product_id", t, pid),
            Reading("bath1", "in_process", t, 5 <= i < 25 or i >= 40),
            Reading("bath1", "bath_temperature", t, 20.0 + i / 100),
            Reading("bath1", "recipe", t, 2),
        ]
        if i >= 25:
            out += [
                Reading("meter1", "measured_product_id", t, "P-1"),
                Reading("meter1", "product_delta_e", t, 5.5),
            ]
    return out


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = Store(tmp_path / "ts.sqlite")
    readings = line(now_ns() - 120 * S)
    store.write([Batch(WIRE_VERSION, GW, "b", 0, len(readings) - 1, readings)], (), [CATALOGUE])
    firings = FiringStore(tmp_path / "ops.sqlite")
    fid = firings.start("anodizing-defect", "reading", '"P-1"', {}, readings[0].ts)
    defect = {"type": "cloud_event", "kind": "defect", "key": f"{GW}/P-1",
              "payload": {"product_id": "P-1", "value": 5.5, "limit": 3.0,
                          "series": f"{GW}/meter1/product_delta_e"}}  # fmt: skip
    label = {"type": "command", "status": "done", "ok": True}
    firings.finish(fid, [defect, label], "done", "", readings[0].ts)
    alarms = AlarmService(tmp_path / "ops.sqlite")
    alarms.raise_(f"{GW}/meter1/product_delta_e", "spc.spec", "above USL", ts=readings[-1].ts)
    app = create_app(store, IngestStats(), web=False)
    app.state.firings, app.state.alarms = firings, alarms
    with TestClient(app) as client:
        yield client
    alarms.close()
    firings.close()
    store.close()


def test_product_story_has_equipment_parameters_measurement_recipe_and_defect(
    client: TestClient,
) -> None:
    response = client.get("/api/products/P-1")
    assert response.status_code == 200, response.text
    story = response.json()
    bath, meter = story["equipment"]
    assert bath["device"] == f"{GW}/bath1" and meter["device"] == f"{GW}/meter1"
    assert bath["duration_s"] == 20.0 and not bath["open"]  # cut to in_process, not idle
    temp = next(p for p in bath["parameters"] if p["name"].endswith("bath_temperature"))
    assert temp["unit"] == "°C" and len(temp["t"]) == 20 and temp["v"][0] == 20.05
    measured = {v["name"].split("/")[-1]: v for v in meter["values"]}
    assert measured["product_delta_e"]["value"] == 5.5
    assert measured["product_delta_e"]["label"] == "ΔE*ab"
    assert story["recipe"]["name"] == "blue" and "bath1" in story["recipe"]["source"]
    (defect,) = story["defects"]
    assert defect["value"] == 5.5 and defect["label_status"] == "done"
    assert [a["rule"] for a in story["alarms"]] == ["spc.spec"]


def test_product_search_and_the_product_at_a_moment(client: TestClient) -> None:
    found = {p["id"]: p for p in client.get("/api/products", params={"q": "p-"}).json()}
    assert set(found) == {"P-1", "P-2"} and found["P-1"]["defect"] is True
    assert found["P-2"]["defect"] is False
    assert sorted(found["P-1"]["equipment"]) == [f"{GW}/bath1", f"{GW}/meter1"]
    moment = found["P-2"]["first"] + 1000
    params = {"at": moment, "source": f"{GW}/bath1/bath_temperature"}
    assert client.get("/api/products", params=params).json()[0]["id"] == "P-2"
    assert client.get("/api/products/P-404").status_code == 404


def test_spans_follow_the_product_id_and_in_process() -> None:
    ts = [0, 1, 2, 3, 4]
    (span,) = products.spans("g/d/product_id", ts[:3], ["A", "A", "B"], "A")
    assert (span.start, span.end, span.open) == (0, 2, False)
    reopened = products.spans("g/d/product_id", ts, ["A", "A", "B", "A", "A"], "A")
    assert [(s.start, s.end, s.open) for s in reopened] == [(0, 2, False), (3, 4, True)]
    cut = products.cut_to_process(products.Span("g/d/p", 0, 4), ts, [0, 1, 1, 0, 0])
    assert (cut.start, cut.end) == (1, 3)
    assert products.is_product_tag("measured_product_id") and not products.is_product_tag("x")

"""Tag metadata, stale values and integer types through the HTTP API over a real store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge_node import spc_chart
from edge_node.api import create_app
from edge_node.api_models import History
from edge_node.commands import CommandSender
from edge_node.config import MqttConfig
from edge_node.freshness import judge
from edge_node.ingest import IngestStats
from edge_node.spc import Limits
from edge_node.store import Store
from edge_node.tagmeta import StoredSeries, TagMeta, label_of, merge
from edge_node.writecheck import problem
from factory_common.wire import (
    WIRE_VERSION,
    Batch,
    ConnectorHealth,
    DeviceHealth,
    GatewayStatus,
    Reading,
    TagCatalogue,
    TagInfo,
    TagType,
    now_ns,
)

GW = "gw1"
CATALOGUE = TagCatalogue(
    v=WIRE_VERSION,
    gateway=GW,
    ts=1,
    tags=[
        TagInfo("bath1", "bath_temperature", TagType.FLOAT, unit="°C", precision=2,
                connector="plc", interval=1.0),
        TagInfo("bath1", "state", TagType.INT, enum={"0": "stopped", "1": "idle",
                "2": "processing"}, connector="plc", interval=1.0),
        TagInfo("bath1", "products_done", TagType.INT, connector="plc", interval=1.0),
        TagInfo("bath1", "temperature_setpoint", TagType.FLOAT, unit="°C", writable=True,
                min=10, max=30, label="Setpoint", connector="plc", interval=1.0),
        TagInfo("meter1", "concentration", TagType.FLOAT, unit="g/L", connector="meter"),
    ],
)  # fmt: skip


def batch(seq: int, readings: list[Reading]) -> Batch:
    return Batch(WIRE_VERSION, GW, "b", seq, seq + len(readings) - 1, readings)


def status(plc: str = "up", online: bool = True) -> GatewayStatus:
    connectors = [
        ConnectorHealth("plc", "modbus_tcp", plc, last_error="" if plc == "up" else "timed out"),
        ConnectorHealth("meter", "serial_line", "up"),
    ]
    return GatewayStatus(WIRE_VERSION, GW, online, ts=now_ns(), connectors=connectors)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "ts.sqlite")
    yield store
    store.close()


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(store, IngestStats(), web=False)) as client:
        yield client


def test_tags_carry_the_catalogue_before_any_reading(store: Store, client: TestClient) -> None:
    store.write([], [status()], [CATALOGUE])
    tags = {t["name"]: t for t in client.get("/api/tags").json()}
    temp = tags[f"{GW}/bath1/bath_temperature"]
    assert temp["unit"] == "°C" and temp["type"] == "float" and temp["precision"] == 2
    assert temp["label"] == "Bath temperature" and temp["has_data"] is False
    assert tags[f"{GW}/bath1/state"]["enum"]["2"] == "processing"
    setpoint = tags[f"{GW}/bath1/temperature_setpoint"]
    assert (setpoint["writable"], setpoint["min"], setpoint["max"]) == (True, 10, 30)
    assert setpoint["label"] == "Setpoint"
    # The line's first minute: a known tag without a reading is an empty series, not a 404.
    response = client.get("/api/history", params={"tag": f"{GW}/meter1/concentration"})
    assert response.status_code == 200, response.text
    (series,) = response.json()["series"]
    assert series["t"] == [] and series["v"] == [] and series["unit"] == "g/L"
    unknown = client.get("/api/history", params={"tag": f"{GW}/meter1/nope"})
    assert unknown.status_code == 404


def test_integers_stay_integers_in_latest_and_history(store: Store, client: TestClient) -> None:
    t0 = now_ns() - 10 * 10**9
    readings = [Reading("bath1", "products_done", t0 + i * 10**9, 54321 + i) for i in range(5)]
    readings += [Reading("bath1", "state", t0 + i * 10**9, 2) for i in range(5)]
    store.write([batch(0, readings)], [status()], [CATALOGUE])
    names = [f"{GW}/bath1/products_done", f"{GW}/bath1/state"]
    body = client.get("/api/history", params={"tag": names, "start": (t0 // 10**6) - 1}).json()
    done, state = body["series"]
    assert done["v"] == [54321, 54322, 54323, 54324, 54325]
    assert all(type(v) is int for v in done["v"] + state["v"])
    minmax = client.get(
        "/api/history", params={"tag": names[0], "start": (t0 // 10**6) - 1, "points": 2}
    ).json()["series"][0]
    assert minmax["mode"] == "minmax"
    assert all(type(v) is int for v in minmax["min"] + minmax["max"] if v is not None)
    latest = {x["name"]: x for x in client.get("/api/latest").json()}
    assert latest[names[0]]["value"] == 54325 and type(latest[names[0]]["value"]) is int
    assert latest[names[1]]["text"] == "processing"


def test_a_writable_tags_history_min_max_are_its_buckets_not_its_limits(
    store: Store, client: TestClient
) -> None:
    t0 = now_ns() - 10 * 10**9
    readings = [
        Reading("bath1", "temperature_setpoint", t0 + i * 10**9, 20.0 + i) for i in range(4)
    ]
    store.write([batch(0, readings)], [status()], [CATALOGUE])
    start = t0 // 10**6 - 1
    query = {"tag": f"{GW}/bath1/temperature_setpoint", "start": start, "end": start + 4001}
    (raw,) = client.get("/api/history", params=query).json()["series"]
    assert raw["mode"] == "raw" and raw["label"] == "Setpoint"
    assert not {"min", "max", "writable"} & raw.keys()  # the limits (10, 30): /api/tags
    response = client.get("/api/history", params=query | {"points": 2})
    (minmax,) = response.json()["series"]
    assert (minmax["mode"], minmax["min"], minmax["max"]) == ("minmax", [20.0, 22.0], [21.0, 23.0])
    assert History.model_validate(response.json()).series[0].min == [20.0, 22.0]


def test_a_value_of_a_down_connector_is_stale_never_good(store: Store, client: TestClient) -> None:
    now = now_ns()
    temp = Reading("bath1", "bath_temperature", now, 20.5)
    conc = Reading("meter1", "concentration", now, 180.0)
    store.write([batch(0, [temp, conc])], [status()], [CATALOGUE])
    latest = {x["name"]: x for x in client.get("/api/latest").json()}
    assert latest[f"{GW}/bath1/bath_temperature"]["quality"] == "good"
    assert latest[f"{GW}/bath1/bath_temperature"]["stale"] is False
    store.write([], [status(plc="down")])
    latest = {x["name"]: x for x in client.get("/api/latest").json()}
    dead = latest[f"{GW}/bath1/bath_temperature"]
    assert dead["stale"] is True and dead["quality"] == "uncertain"
    assert "connector plc down: timed out" in dead["reason"]
    assert latest[f"{GW}/meter1/concentration"]["stale"] is False  # its connector is up
    store.write([], [GatewayStatus(WIRE_VERSION, GW, online=False)])
    latest = {x["name"]: x for x in client.get("/api/latest").json()}
    assert all(x["stale"] and x["quality"] != "good" for x in latest.values())
    assert latest[f"{GW}/meter1/concentration"]["stale_reason"] == "gateway offline"


def test_last_will_keeps_when_the_edge_last_heard_from_the_gateway(
    store: Store, client: TestClient
) -> None:
    store.write([batch(0, [Reading("bath1", "state", now_ns(), 1)])], [status()])
    (before,) = client.get("/api/gateways").json()
    store.write([], [GatewayStatus(WIRE_VERSION, GW, online=False)])
    (after,) = client.get("/api/gateways").json()
    assert after["online"] is False
    assert after["last_heard"] == before["last_heard"] is not None


def test_staleness_rules() -> None:
    meta = merge([CATALOGUE], [])
    temp = meta[f"{GW}/bath1/bath_temperature"]
    now = now_ns()
    assert not judge(temp, now - 2 * 10**9, status(), now).stale
    late = judge(temp, now - 60 * 10**9, status(), now)
    assert late.stale and late.why == "no reading for 60 s"
    conc = meta[f"{GW}/meter1/concentration"]  # no promised interval: age alone is no proof
    assert not judge(conc, now - 3600 * 10**9, status(), now).stale
    # Without a connector name, the device's own health inside a connector decides.
    sick = {"bath1": DeviceHealth("down", last_error="no response")}
    by_device = GatewayStatus(
        WIRE_VERSION, GW, True, connectors=[ConnectorHealth("other", "x", "degraded", devices=sick)]
    )
    unnamed = merge([], [StoredSeries(GW, "bath1", "x", "num")])[f"{GW}/bath1/x"]
    found = judge(unnamed, now, by_device, now)
    assert found.stale and found.why == "device bath1 down: no response"


def test_master_data_wins_and_labels_are_readable() -> None:
    class Master:
        name = f"{GW}/bath1/bath_temperature"
        unit = "K"
        description = "Bath temperature at the sensor"
        equipment_id = "bath-1"

    meta = merge([CATALOGUE], [], [Master()])[f"{GW}/bath1/bath_temperature"]
    assert (meta.unit, meta.equipment_id, meta.precision) == ("K", "bath-1", 2)
    assert label_of("product_delta_e") == "Product delta e"
    stored = merge([], [StoredSeries(GW, "d", "count", "num", latest=7)])[f"{GW}/d/count"]
    assert stored.type == "int" and stored.has_data


def test_metadata_of_some_tags_is_theirs_in_the_whole_index() -> None:
    """A request naming a few tags merges only those: each gets what the whole merge gives it
    (catalogue, stored series with their newest value, master data), and nothing else comes."""

    class Master:
        name = f"{GW}/bath1/bath_temperature"
        unit = "K"
        description = "at the sensor"
        equipment_id = "bath-1"

    stored = [
        StoredSeries(GW, "bath1", "state", "num", latest=2),
        StoredSeries(GW, "bath1", "bath_temperature", "num", "°C", 21.5),
        StoredSeries(GW, "d", "count", "num", latest=7),  # no catalogue entry
        StoredSeries("gw2", "d", "flag", "bool", latest=True),
    ]
    whole = merge([CATALOGUE], stored, [Master()])
    for names in (
        {f"{GW}/bath1/bath_temperature", f"{GW}/d/count"},
        {f"{GW}/meter1/concentration", "gw2/d/flag", "nobody/x/y"},
        set(),
    ):
        some = merge([CATALOGUE], stored, [Master()], only=names)
        assert some == {n: whole[n] for n in sorted(names) if n in whole}


def test_a_setpoint_outside_its_limits_or_type_is_refused_before_sending(
    store: Store, client: TestClient, tmp_path: Path
) -> None:
    store.write([], [status()], [CATALOGUE])
    # A real sender that is never connected: a command that got past the checks would wait
    # for a broker and end as `timeout` (504), not 422.
    client.app.state.commands = CommandSender(MqttConfig(port=1), "t", None)  # type: ignore[attr-defined]

    def send(tag: str, value: object) -> tuple[int, str]:
        body = {"gateway": GW, "writes": [{"device": "bath1", "tag": tag, "value": value}]}
        response = client.post("/api/commands", json=body)
        return response.status_code, response.json()["detail"]

    assert send("temperature_setpoint", 35) == (
        422,
        f"35 is above the maximum 30 of {GW}/bath1/temperature_setpoint",
    )
    assert send("temperature_setpoint", "hot")[0] == 422
    assert send("bath_temperature", 20)[1] == f"{GW}/bath1/bath_temperature is not writable"


def test_write_checks_per_type() -> None:
    meta = merge([CATALOGUE], [])
    count = TagMeta(**(meta[f"{GW}/bath1/products_done"].as_dict() | {"writable": True}))
    assert problem(count, 3) == "" and problem(count, 3.0) == ""
    assert problem(count, 2.5) == f"{GW}/bath1/products_done takes a whole number, not 2.5"
    assert problem(count, True).startswith(f"{GW}/bath1/products_done takes a number")
    assert problem(None, 1e9) == ""  # no catalogue: the gateway decides alone


def test_control_chart_marks_each_violation_with_its_rule() -> None:
    limits = Limits(mean=20.0, sigma=1.0, lsl=16.0, usl=24.0)
    values = [20.0, 20.5, 19.5, 23.5, 20.0, 24.5, 20.0, "text", True, 20.1]
    chart = spc_chart.chart(list(range(len(values))), values, limits)
    assert chart["t"] == [0, 1, 2, 3, 4, 5, 6, 9]  # strings and booleans are not charted
    assert (chart["centre"], chart["sigma"]) == (20.0, 1.0)
    marked = {v["t"]: v["rules"] for v in chart["violations"]}
    assert marked == {3: ["rule1"], 5: ["spec", "rule1", "rule2"]}  # 2 of 3 beyond 2 sigma
    assert chart["mr"][:3] == [None, 0.5, 1.0]
    assert chart["mr_ucl"] == pytest.approx(spc_chart.D4_N2 * chart["mr_bar"])
    assert spc_chart.chart([1], [2.0], None)["violations"] == []

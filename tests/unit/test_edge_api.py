"""The HTTP API over a real store, in process (no broker): shapes, modes and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge_node.api import create_app, parse_time
from edge_node.ingest import IngestStats
from edge_node.store import Store
from factory_common.wire import WIRE_VERSION, Batch, Quality, Reading

T0_MS = 1_764_000_000_000
MS = 10**6


@pytest.fixture
def client(tmp_path: Path):
    store = Store(tmp_path / "ts.sqlite")
    readings = [
        Reading(device="bath", tag="temp", ts=(T0_MS + i * 1000) * MS, value=float(i))
        for i in range(600)
    ]
    readings += [
        Reading(device="bath", tag="running", ts=(T0_MS + i * 1000) * MS, value=i % 2 == 0)
        for i in range(4)
    ]
    readings += [
        Reading(device="bath", tag="product", ts=(T0_MS + i * 1000) * MS, value=f"P{i}")
        for i in range(30)
    ]
    readings.append(
        Reading(
            device="bath",
            tag="temp",
            ts=(T0_MS + 600_000) * MS,
            value=None,
            quality=Quality.BAD,
            reason="timeout",
        )
    )
    store.write(
        [
            Batch(
                v=WIRE_VERSION,
                gateway="gw1",
                boot="b",
                first_seq=0,
                last_seq=len(readings) - 1,
                readings=readings,
            )
        ]
    )
    with TestClient(create_app(store, IngestStats(), edge_id="e1", web=False)) as test_client:
        yield test_client
    store.close()


def get_history(client: TestClient, *tags: str, **params: object) -> dict:
    query = [("tag", t) for t in tags] + [("start", T0_MS), ("end", T0_MS + 3_600_000)]
    response = client.get("/api/history", params=query + list(params.items()))
    assert response.status_code == 200, response.text
    return response.json()


def test_raw_history_is_columns_with_quality_only_when_needed(client: TestClient) -> None:
    body = get_history(client, "gw1/bath/temp", "gw1/bath/running")
    temp, running = body["series"]
    assert temp["mode"] == "raw" and len(temp["t"]) == 601
    assert temp["t"][:2] == [T0_MS, T0_MS + 1000] and temp["v"][:2] == [0.0, 1.0]
    assert temp["v"][-1] is None and temp["q"][-1] == 2 and set(temp["q"][:-1]) == {0}
    assert running == {
        "name": "gw1/bath/running",
        "kind": "bool",
        "unit": None,
        "label": "Running",
        "type": "bool",
        "enum": {},
        "precision": None,
        "mode": "raw",
        "t": [T0_MS + i * 1000 for i in range(4)],
        "v": [True, False, True, False],
        "q": None,
    }


def test_downsampled_history_per_kind(client: TestClient) -> None:
    body = get_history(client, "gw1/bath/temp", "gw1/bath/product", "gw1/bath/running", points=6)
    temp, product, running = body["series"]
    # [T0, T0 + 1 h) in 6 buckets of 10 min: all 600 numbers fall in the first; the reading
    # without a value (at 600 s) is not counted.
    assert temp["mode"] == "minmax" and temp["t"] == [T0_MS]
    assert (temp["min"], temp["max"], temp["mean"], temp["count"]) == (
        [0.0],
        [599.0],
        [299.5],
        [600],
    )
    assert product["mode"] == "last" and product["v"] == ["P29"]
    assert product["t"] == [T0_MS + 29_000]
    assert running["mode"] == "raw"  # 4 readings fit in 6 points: no need to reduce


def test_latest_gateways_tags_and_health(client: TestClient) -> None:
    (latest,) = client.get("/api/latest", params={"tag": "gw1/bath/temp"}).json()
    assert (
        latest.items()
        >= {
            "name": "gw1/bath/temp",
            "t": T0_MS + 600_000,
            "ts_ns": (T0_MS + 600_000) * MS,
            "value": None,
            "quality": "bad",
            "reason": "timeout",
            "stale": False,  # no gateway status, no promised interval: nothing says it is late
            "label": "Temp",
        }.items()
    )
    assert [t["name"] for t in client.get("/api/tags").json()] == [
        "gw1/bath/product",
        "gw1/bath/running",
        "gw1/bath/temp",
    ]
    assert client.get("/api/gateways").json() == []
    health = client.get("/api/health").json()
    assert health["status"] == "degraded" and health["edge"] == "e1"
    stats = client.get("/api/stats").json()
    assert stats["store"]["recent_rows"] == 635 and stats["ingest"]["rejected_total"] == 0


def test_bad_requests_say_what_to_do(client: TestClient) -> None:
    missing = client.get("/api/history", params={"tag": "gw1/nope/x"})
    assert missing.status_code == 404 and "/api/tags" in missing.json()["detail"]
    bad_time = client.get("/api/history", params={"tag": "gw1/bath/temp", "start": "yesterday"})
    assert bad_time.status_code == 422 and "ISO 8601" in bad_time.json()["detail"]
    backwards = client.get("/api/history", params={"tag": "gw1/bath/temp", "start": 10, "end": 5})
    assert backwards.status_code == 422
    assert (
        client.get("/api/history", params={"tag": "gw1/bath/temp", "points": 0}).status_code == 422
    )


@pytest.mark.parametrize(
    ("text", "expected_ns"),
    [
        ("1764000000000", T0_MS * MS),
        ("2025-11-24T16:00:00Z", T0_MS * MS),
        ("2025-11-24T16:00:00", T0_MS * MS),  # naive means UTC
        ("2025-11-24T18:00:00.000250+02:00", T0_MS * MS + 250_000),
    ],
)
def test_parse_time_accepts_epoch_ms_and_iso(text: str, expected_ns: int) -> None:
    assert parse_time(text, 0, "start") == expected_ns


def test_downsampled_history_spans_blocks_and_recent_rows(tmp_path: Path) -> None:
    store = Store(tmp_path / "ts.sqlite")
    hour_ms = 3_600_000
    origin_ms = T0_MS - T0_MS % hour_ms
    readings = [
        Reading(device="d", tag="x", ts=(origin_ms + i * 1000) * MS, value=float(i % 600))
        for i in range(7200)
    ]
    store.write(
        [
            Batch(
                v=WIRE_VERSION,
                gateway="gw1",
                boot="b",
                first_seq=0,
                last_seq=7199,
                readings=readings,
            )
        ]
    )
    store.compact((origin_ms + hour_ms) * MS)  # first hour in blocks, second still recent
    assert store.stats()["blocks"] == 1
    with TestClient(create_app(store, IngestStats(), web=False)) as client:
        params = {
            "tag": "gw1/d/x",
            "start": origin_ms,
            "end": origin_ms + 2 * hour_ms,
            "points": 12,
        }
        (series,) = client.get("/api/history", params=params).json()["series"]
    store.close()
    assert series["mode"] == "minmax"
    assert series["t"] == [origin_ms + k * 600_000 for k in range(12)]
    assert series["count"] == [600] * 12 and series["mean"] == [299.5] * 12
    assert series["min"] == [0.0] * 12 and series["max"] == [599.0] * 12

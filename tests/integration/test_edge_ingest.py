"""The edge node against a real Mosquitto: published batches come out of the HTTP API once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_node.app import run_edge
from edge_node.config import parse_edge_config
from factory_common.wire import (
    WIRE_VERSION,
    Batch,
    GatewayStatus,
    Reading,
    data_topic,
    encode,
    status_topic,
)
from tests.support.broker import Mosquitto
from tests.support.edge_auth import add_user, log_in

T0 = 1_764_000_000_000 * 10**6  # ns, a whole millisecond
MS = 10**6


def edge_yaml(broker: Mosquitto, client_id: str = "edge-test") -> str:
    return (
        "edge: {id: test-edge}\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, client_id: {client_id},"
        " reconnect_min: 0.2, reconnect_max: 1}\n"
        "store: {path: edge.sqlite, flush_interval: 0.1}\n"
        "http: {host: 127.0.0.1, port: 0}\n"
    )


@asynccontextmanager
async def running_edge(broker: Mosquitto, data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = parse_edge_config(edge_yaml(broker))
    add_user(data_dir)  # the API needs a login (edge_node/auth)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(run_edge(config, data_dir, on_ready=ready.set_result, stop=stop))
    url = await asyncio.wait_for(ready, 10)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            await until(client, "/api/health", lambda h: h["mqtt_connected"])
            await log_in(client)
            yield client
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def until(
    client: httpx.AsyncClient,
    path: str,
    check: Callable[[Any], bool],
    params: Any = None,
    within: float = 10.0,
) -> Any:
    """Poll an API path until `check` passes on its JSON; fail with the last answer."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        body = (await client.get(path, params=params)).json()
        if check(body):
            return body
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{path} never satisfied the check; last answer: {str(body)[:500]}")
        await asyncio.sleep(0.05)


def publish(broker: Mosquitto, *messages: tuple[str, bytes, bool]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        for topic, payload, retain in messages:
            client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def make_batch(
    first_seq: int,
    values: list[Any],
    tag: str = "temp",
    v: int = WIRE_VERSION,
    gateway: str = "gw1",
) -> bytes:
    readings = [
        Reading(device="bath", tag=tag, ts=T0 + (first_seq + i) * 1000 * MS, value=x)
        for i, x in enumerate(values)
    ]
    return encode(
        Batch(
            v=v,
            gateway=gateway,
            boot="boot-1",
            first_seq=first_seq,
            last_seq=first_seq + len(values) - 1,
            readings=readings,
        )
    )


def history_params(*tags: str, **extra: Any) -> list[tuple[str, Any]]:
    params: list[tuple[str, Any]] = [("tag", t) for t in tags]
    params += [("start", T0 // MS), ("end", T0 // MS + 10_000_000)]
    return params + list(extra.items())


async def test_published_batches_and_status_come_out_of_the_api(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with running_edge(mosquitto, tmp_path) as api:
        status = GatewayStatus(v=WIRE_VERSION, gateway="gw1", online=True, ts=T0, version="1.2")
        publish(
            mosquitto,
            (data_topic("gw1"), make_batch(0, [20.5, 20.6, 20.7]), False),
            (data_topic("gw1"), make_batch(3, ["P-1", "P-2"], tag="product"), False),
            (status_topic("gw1"), encode(status), True),
        )
        body = await until(
            api,
            "/api/history",
            lambda b: len(b.get("series", [{}])[-1].get("t", [])) == 2,
            params=history_params("gw1/bath/temp", "gw1/bath/product"),
        )
        temp, product = body["series"]
        assert temp["mode"] == "raw" and temp["v"] == [20.5, 20.6, 20.7]
        assert temp["t"] == [T0 // MS, T0 // MS + 1000, T0 // MS + 2000]
        assert product["v"] == ["P-1", "P-2"] and product["kind"] == "str"
        names = [t["name"] for t in (await api.get("/api/tags")).json()]
        assert names == ["gw1/bath/product", "gw1/bath/temp"]
        latest = {x["name"]: x["value"] for x in (await api.get("/api/latest")).json()}
        assert latest == {"gw1/bath/temp": 20.7, "gw1/bath/product": "P-2"}
        gateways = await until(api, "/api/gateways", lambda g: len(g) == 1)
        assert gateways[0]["online"] is True and gateways[0]["status"]["version"] == "1.2"
        assert (await api.get("/")).status_code == 200  # the web page
        assert "/api/history" in (await api.get("/openapi.json")).json()["paths"]


async def test_batch_published_twice_is_stored_once(mosquitto: Mosquitto, tmp_path: Path) -> None:
    payload = make_batch(0, [1.0, 2.0, 3.0, 4.0])
    async with running_edge(mosquitto, tmp_path) as api:
        publish(mosquitto, (data_topic("gw1"), payload, False), (data_topic("gw1"), payload, False))
        stats = await until(
            api,
            "/api/stats",
            lambda s: s["ingest"]["readings_stored"] + s["ingest"]["readings_duplicate"] == 8,
        )
        assert stats["ingest"]["readings_stored"] == 4
        assert stats["ingest"]["readings_duplicate"] == 4
        body = (await api.get("/api/history", params=history_params("gw1/bath/temp"))).json()
        assert body["series"][0]["v"] == [1.0, 2.0, 3.0, 4.0]


async def test_bad_payloads_are_counted_and_the_next_batch_is_stored(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with running_edge(mosquitto, tmp_path) as api:
        publish(
            mosquitto,
            (data_topic("gw1"), b"{not json", False),
            (data_topic("gw1"), make_batch(0, [9.0], v=WIRE_VERSION + 1), False),
            (data_topic("gw2"), make_batch(0, [9.0], gateway="gw1"), False),  # wrong topic
            (data_topic("gw1"), make_batch(0, [7.0, 8.0]), False),
        )
        stats = await until(
            api,
            "/api/stats",
            lambda s: s["ingest"]["messages"] == 4 and s["ingest"]["readings_stored"] == 2,
        )
        assert stats["ingest"]["rejected"] == {
            "gw1": {"malformed": 1, "wrong_version": 1},
            "gw2": {"gateway_mismatch": 1},
        }
        body = (await api.get("/api/history", params=history_params("gw1/bath/temp"))).json()
        assert body["series"][0]["v"] == [7.0, 8.0]


async def test_history_downsampled_and_bad_queries(mosquitto: Mosquitto, tmp_path: Path) -> None:
    async with running_edge(mosquitto, tmp_path) as api:
        publish(
            mosquitto, (data_topic("gw1"), make_batch(0, [float(i) for i in range(1000)]), False)
        )
        await until(api, "/api/stats", lambda s: s["ingest"]["readings_stored"] == 1000)
        params = [
            ("tag", "gw1/bath/temp"),
            ("start", "2025-11-24T16:00:00Z"),
            ("end", str(T0 // MS + 1_000_000)),
            ("points", "20"),  # 50 s buckets: under a minute, reduced from raw readings
        ]
        (series,) = (await api.get("/api/history", params=params)).json()["series"]
        assert series["mode"] == "minmax" and series["count"] == [50] * 20
        assert series["min"] == [float(50 * i) for i in range(20)]
        assert series["max"] == [float(50 * i + 49) for i in range(20)]
        bad = await api.get("/api/history", params=[("tag", "gw1/bath/nope")])
        assert bad.status_code == 404 and "/api/tags" in bad.json()["detail"]
        bad = await api.get("/api/history", params=[*history_params("gw1/bath/temp"), ("end", "x")])
        assert bad.status_code == 422


async def test_messages_published_while_the_edge_is_down_arrive(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The persistent session: the broker queues QoS 1 messages for the edge's client id."""
    async with running_edge(mosquitto, tmp_path):
        pass  # first start registers the session and its subscriptions
    publish(mosquitto, (data_topic("gw1"), make_batch(0, [1.0, 2.0]), False))
    async with running_edge(mosquitto, tmp_path) as api:
        body = await until(
            api,
            "/api/history",
            lambda b: len(b.get("series", [{}])[0].get("t", [])) == 2,
            params=history_params("gw1/bath/temp"),
        )
        assert body["series"][0]["v"] == [1.0, 2.0]


def test_edge_node_command_prints_url_and_stops_on_sigterm(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text(edge_yaml(mosquitto, "edge-cli-test"))
    process = subprocess.Popen(
        [sys.executable, "-m", "edge_node.cli", "run", str(config), "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "http://127.0.0.1:" in line, line
        url = line[line.index("http://") :].split()[0]
        assert httpx.get(url + "api/health", timeout=5).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (tmp_path / "edge.sqlite").exists()


async def test_ingest_reconnects_after_the_broker_restarts(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with running_edge(mosquitto, tmp_path) as api:
        publish(mosquitto, (data_topic("gw1"), make_batch(0, [1.0]), False))
        await until(api, "/api/stats", lambda s: s["ingest"]["readings_stored"] == 1)
        mosquitto.stop()
        await until(api, "/api/health", lambda h: h["status"] == "degraded")
        await asyncio.to_thread(mosquitto.start)  # same port; backoff is capped at 1 s here
        await until(api, "/api/health", lambda h: h["mqtt_connected"])
        publish(mosquitto, (data_topic("gw1"), make_batch(0, [1.0, 2.0]), False))
        stats = await until(api, "/api/stats", lambda s: s["ingest"]["readings_stored"] == 2)
        assert stats["ingest"]["readings_duplicate"] == 1 and stats["ingest"]["connects"] == 2

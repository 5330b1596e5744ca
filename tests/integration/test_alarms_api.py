"""A running edge node (real Mosquitto): a limit violation becomes an alarm pushed over SSE;
operators (not viewers) acknowledge it; rules load, fire and refuse a bad file visibly.

Every wait is on the real condition (the stream's "connected" line, the alarms themselves,
the API's answer) with a generous deadline: the machine may be slow and loaded."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_node.app import run_edge
from edge_node.auth import Role
from edge_node.config import parse_edge_config
from factory_common.wire import WIRE_VERSION, Batch, Reading, data_topic, encode, now_ns
from tests.support.broker import Mosquitto
from tests.support.edge_auth import add_user, log_in

RULES = """rules:
  - id: hot
    trigger: {reading: {series: "gw1/bath1/temp"}}
    when: "value > 28"
    actions: [{alarm: {rule: hot, message: "='hot: ' + str(value)", severity: high}}]
"""


def edge_yaml(broker: Mosquitto) -> str:
    return (
        "edge: {id: test-edge}\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, client_id: edge-alarms,"
        " reconnect_min: 0.2, reconnect_max: 1}\n"
        "store: {path: edge.sqlite, flush_interval: 0.05}\n"
        "http: {host: 127.0.0.1, port: 0}\n"
        "monitoring: {limits: {gw1/bath1/temp: {mean: 20, sigma: 1, usl: 24}}}\n"
        "rules: {path: rules.yaml, reload_interval: 0.1}\n"
    )


@asynccontextmanager
async def running_edge(broker: Mosquitto, data_dir: Path, role: str = "all") -> AsyncIterator[str]:
    if role == "all":
        (data_dir / "rules.yaml").write_text(RULES)
        add_user(data_dir, "olga", Role.OPERATOR)
        add_user(data_dir, "vic", Role.VIEWER)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    config = parse_edge_config(edge_yaml(broker))
    task = asyncio.create_task(
        run_edge(config, data_dir, on_ready=ready.set_result, stop=stop, role=role)
    )
    try:
        yield await asyncio.wait_for(ready, 10)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def publish(broker: Mosquitto, seq: int, values: list[float]) -> None:
    t0 = now_ns()
    readings = [Reading("bath1", "temp", t0 + i * 1000, v) for i, v in enumerate(values)]
    batch = Batch(WIRE_VERSION, "gw1", "boot", seq, seq + len(values) - 1, readings)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        client.publish(data_topic("gw1"), encode(batch), qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


async def client_for(url: str, name: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=url, timeout=5)
    await log_in(client, name)
    return client


async def sse_events(
    client: httpx.AsyncClient, out: list[dict[str, Any]], connected: asyncio.Event
) -> None:
    async with client.stream("GET", "/api/alarms/stream", timeout=None) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line == ": connected":  # sent once the stream is subscribed to every change
                connected.set()
            elif line.startswith("data: "):
                out.append(json.loads(line[6:]))


async def open_stream(
    client: httpx.AsyncClient, events: list[dict[str, Any]]
) -> asyncio.Task[None]:
    """The alarm stream, once it is subscribed: nothing raised after this is missed."""
    connected = asyncio.Event()
    stream = asyncio.create_task(sse_events(client, events, connected))
    await asyncio.wait_for(connected.wait(), 30)
    return stream


def raised_rules(events: list[dict[str, Any]]) -> set[str]:
    return {e["alarm"]["rule"] for e in events if e["kind"] == "raised"}


async def until_json(
    client: httpx.AsyncClient, path: str, check: Any, params: Any = None, within: float = 30.0
) -> Any:
    """GET path until `check` passes on its JSON (the edge commits and notifies in steps)."""
    async with asyncio.timeout(within):
        while not check(body := (await client.get(path, params=params)).json()):  # noqa: ASYNC110 - polling the API from outside
            await asyncio.sleep(0.05)
    return body


async def eventually(check: Any, within: float = 30.0) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - polling what the test observes from outside
            await asyncio.sleep(0.02)


async def test_alarm_pushed_acknowledged_and_rules_visible(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with running_edge(mosquitto, tmp_path) as url:
        olga, vic = await client_for(url, "olga"), await client_for(url, "vic")
        events: list[dict[str, Any]] = []
        stream = await open_stream(vic, events)
        try:
            publish(mosquitto, 0, [20.0, 30.0])
            # Both alarms come from the same reading but reach the stream one by one.
            await eventually(lambda: {"spc.rule1", "spc.spec"} <= raised_rules(events))

            active = (await vic.get("/api/alarms", params={"active": "true"})).json()
            spec = next(a for a in active if a["rule"] == "spc.spec")
            denied = await vic.post(f"/api/alarms/{spec['id']}/ack")
            assert denied.status_code == 403
            acked = (await olga.post(f"/api/alarms/{spec['id']}/ack")).json()
            assert (acked["state"], acked["acked_by"]) == ("acknowledged", "olga")
            await eventually(lambda: any(e["kind"] == "acknowledged" for e in events))
            missing = await olga.post("/api/alarms/999999/ack")
            assert missing.status_code == 404 and "no alarm" in missing.json()["detail"]

            stats = (await vic.get("/api/monitoring")).json()
            assert stats["checked"] >= 2 and stats["feed"]["dropped_readings"] == 0
            await _rules_are_visible(vic, tmp_path)
        finally:
            stream.cancel()
            await asyncio.gather(stream, return_exceptions=True)
            await olga.aclose()
            await vic.aclose()


async def _rules_are_visible(client: httpx.AsyncClient, data_dir: Path) -> None:
    firings = await until_json(client, "/api/rules/firings", lambda f: f, {"rule": "hot"})
    assert firings[0]["outcome"] == "ok" and firings[0]["inputs"]["value"] == 30.0
    hot = await until_json(
        client, "/api/alarms", lambda a: any(x["rule"] == "hot" for x in a), {"active": "true"}
    )
    assert any(a["rule"] == "hot" and a["message"] == "hot: 30.0" for a in hot)
    (data_dir / "rules.yaml").write_text(RULES.replace("value > 28", "value >"))

    async def error() -> Any:
        return (await client.get("/api/rules")).json()["error"]

    async with asyncio.timeout(30):
        while not await error():  # noqa: ASYNC110 - polling the API from outside
            await asyncio.sleep(0.05)
    status = (await client.get("/api/rules")).json()
    assert status["error"][0].startswith(f"{data_dir / 'rules.yaml'}:4: rules[0].when")
    assert [r["id"] for r in status["rules"]] == ["hot"]  # the previous rules stay in force


async def test_reads_need_a_login(mosquitto: Mosquitto, tmp_path: Path) -> None:
    async with running_edge(mosquitto, tmp_path) as url, httpx.AsyncClient(base_url=url) as anon:
        for path in ("/api/alarms", "/api/rules", "/api/rules/firings", "/api/defects"):
            assert (await anon.get(path)).status_code == 401, path
        assert (await anon.post("/api/alarms/1/ack")).status_code == 401


async def test_an_open_alarm_stream_does_not_hold_up_shutdown(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    events: list[dict[str, Any]] = []
    async with running_edge(mosquitto, tmp_path) as url:  # its exit fails after 10 s
        vic = await client_for(url, "vic")
        stream = await open_stream(vic, events)
    await asyncio.wait_for(stream, 30)  # the server ended the stream
    await vic.aclose()


async def test_an_api_replica_pushes_alarms_the_ingest_process_raises(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    events: list[dict[str, Any]] = []
    async with running_edge(mosquitto, tmp_path), running_edge(mosquitto, tmp_path, "api") as url:
        vic = await client_for(url, "vic")
        stream = await open_stream(vic, events)
        try:
            publish(mosquitto, 0, [30.0])
            await eventually(lambda: "hot" in raised_rules(events))
            firings = await until_json(vic, "/api/rules/firings", lambda f: f)
            assert [f["rule_id"] for f in firings] == ["hot"]  # read from the shared file
            assert (await vic.get("/api/rules")).status_code == 503  # no engine on a replica
        finally:
            stream.cancel()
            await asyncio.gather(stream, return_exceptions=True)
            await vic.aclose()

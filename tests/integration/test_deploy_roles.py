"""`edge-node run --role ingest` and `--role api` as separate processes on one store file:
what the API replica serves is what the ingest process stored, and it never writes."""

from __future__ import annotations

from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from factory_common.wire import WIRE_VERSION, Batch, Reading, data_topic, encode
from tests.support.broker import Mosquitto
from tests.support.ports import free_port
from tests.support.processes import Child, python_module, wait_until

T0 = 1_764_000_000_000 * 10**6


def config(broker: Mosquitto, port: int) -> str:
    return (
        "edge: {id: roles-edge}\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, client_id: edge-roles-test}}\n"
        "store: {path: edge.sqlite, flush_interval: 0.1}\n"
        f"http: {{host: 127.0.0.1, port: {port}}}\n"
        "auth: {enabled: false}\n"
    )


def get(url: str) -> object:
    try:
        response = httpx.get(url, timeout=2)
    except httpx.TransportError:
        return None
    return response.json() if response.status_code == 200 else None


def test_api_replica_serves_what_the_ingest_process_stored(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    ports = {"ingest": free_port(), "api": free_port()}
    children = {}
    for role, port in ports.items():
        (tmp_path / f"{role}.yaml").write_text(config(mosquitto, port))
        args = ["run", str(tmp_path / f"{role}.yaml"), "--data-dir", str(tmp_path / "data")]
        children[role] = Child(
            role, python_module("edge_node.cli", *args, "--role", role), tmp_path
        )
    ingest, api = children["ingest"], children["api"]
    try:
        ingest.start()
        base = {role: f"http://127.0.0.1:{port}/api" for role, port in ports.items()}
        wait_until(
            lambda: (get(base["ingest"] + "/health") or {}).get("mqtt_connected"),
            15,
            "ingest connected",
            (ingest,),
        )
        api.start()
        wait_until(lambda: get(base["api"] + "/health"), 15, "api replica up", (api,))
        readings = [
            Reading(device="bath", tag="temp", ts=T0 + i * 10**9, value=20.0 + i) for i in range(5)
        ]
        batch = Batch(
            v=WIRE_VERSION, gateway="gw1", boot="b", first_seq=0, last_seq=4, readings=readings
        )
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="roles-publisher")
        client.connect("127.0.0.1", mosquitto.port)
        client.loop_start()
        client.publish(data_topic("gw1"), encode(batch), qos=1).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()
        url = (
            f"{base['api']}/history?tag=gw1/bath/temp&start={T0 // 10**6}"
            f"&end={T0 // 10**6 + 60_000}"
        )
        body = wait_until(
            lambda: (get(url) or {"series": [{"v": []}]})["series"][0]["v"] or None,
            15,
            "history on the api replica",
            (ingest, api),
        )
        assert body == [20.0, 21.0, 22.0, 23.0, 24.0]
        health = get(base["api"] + "/health")
        assert isinstance(health, dict) and health["mqtt_connected"] is False  # never ingests
    finally:
        assert api.stop() == 0, api.log()[-2000:]
        assert ingest.stop() == 0, ingest.log()[-2000:]

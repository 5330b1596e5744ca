"""MQTT-in connector against a private real Mosquitto: topic patterns and JSON paths to readings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.publish as publish
import pytest

from factory_common.wire import TimeSource
from gateway_image.firmware.connectors.base import ConnectorError
from gateway_image.firmware.connectors.mqtt_in.config import MqttInConfig
from gateway_image.firmware.connectors.mqtt_in.connector import build
from tests.integration.streaming import Sink, running
from tests.support.broker import Mosquitto
from tests.support.pki import TestCA
from tests.support.requirements import require_binary

pytestmark = pytest.mark.timeout(60)


def config(port: int, **extra: Any) -> MqttInConfig:
    return MqttInConfig.model_validate(
        {
            "type": "mqtt_in",
            "name": "wifi-sensors",
            "port": port,
            "timeout": 3,
            "subscriptions": [
                {
                    "topic": "plant/+/env",
                    "mappings": [
                        {
                            "device": "{1}",
                            "tag": "temperature",
                            "path": "sensors[0].temp",
                            "timestamp": "ts",
                            "unit": "°C",
                        },
                        {"device": "{1}", "tag": "humidity", "path": "sensors[0].rh"},
                    ],
                },
                {
                    "topic": "line/oven3/#",
                    "qos": 0,
                    "mappings": [{"device": "oven3", "tag": "door_open", "path": "door.open"}],
                },
            ],
            **extra,
        }
    )


async def send(port: int, topic: str, payload: object, retain: bool = False) -> None:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    await asyncio.to_thread(
        publish.single, topic, body, qos=1, retain=retain, hostname="127.0.0.1", port=port
    )


async def test_topic_levels_and_paths_map_to_readings(mosquitto: Mosquitto) -> None:
    port = mosquitto.port
    # Retained, so it is delivered as soon as the connector has subscribed.
    await send(
        port,
        "plant/bath1/env",
        {"ts": 1_700_000_000_123, "sensors": [{"temp": 21.5, "rh": 40}]},
        retain=True,
    )
    connector, sink = build(config(port)), Sink()
    async with running(connector, sink, "mqtt_in"):
        first = await sink.wait_for(lambda r: r.tag == "temperature")
        await send(port, "plant/bath2/env", b"{not json")
        await send(
            port,
            "plant/bath2/env",
            {"sensors": [{"temp": 19.0}], "ts": "2026-01-02T03:04:05.5+01:00"},
        )
        await send(port, "line/oven3/doors/left", {"door": {"open": True}})
        second = await sink.wait_for(lambda r: r.device == "bath2" and r.tag == "temperature")
        door = await sink.wait_for(lambda r: r.tag == "door_open")
        await send(port, "plant/bath3/env", {"sensors": [{"temp": 18.0, "rh": 50}]})  # no ts
        third = await sink.wait_for(lambda r: r.device == "bath3" and r.tag == "humidity")

    assert (first.device, first.value, first.src) == ("bath1", 21.5, TimeSource.DEVICE)
    assert first.ts == 1_700_000_000_123 * 10**6
    assert (second.value, second.ts) == (19.0, 1_767_319_445_500_000_000)
    assert (door.device, door.value, door.src) == ("oven3", True, TimeSource.GATEWAY)
    assert (third.value, third.src) == (50, TimeSource.GATEWAY)
    # The garbled message was counted and the next one still mapped; bath2 had no `rh`.
    assert connector.counters["not_json"] == 1
    assert connector.counters["missing_path"] == 1
    assert not [r for r in sink.readings if r.device == "bath2" and r.tag == "humidity"]


async def test_bad_values_are_counted_never_fatal(mosquitto: Mosquitto) -> None:
    port = mosquitto.port
    connector, sink = build(config(port)), Sink()
    async with running(connector, sink, "mqtt_in") as runner:
        await send(port, "plant/ready/env", {"sensors": [{"temp": 1, "rh": 1}]}, retain=True)
        await sink.wait_for(lambda r: r.device == "ready")
        await send(port, "plant/bad device!/env", {"sensors": [{"temp": 1, "rh": 1}]})
        await send(port, "plant/b4/env", {"sensors": [{"temp": [1, 2], "rh": 3}]})
        await send(port, "plant/b6/env", {"sensors": [{"temp": 6.0}], "ts": "yesterday"})
        await send(port, "plant/b5/env", {"sensors": [{"temp": 5.0, "rh": 5}]})
        last = await sink.wait_for(lambda r: r.device == "b5" and r.tag == "humidity")
    assert connector.counters["bad_device"] == 2
    assert connector.counters["not_scalar"] == 1
    # `ts` missing (ready, b5) or unreadable (b6): counted, the value kept with gateway time.
    assert connector.counters["bad_timestamp"] == 3
    b4 = [r for r in sink.readings if r.device == "b4"]
    assert [(r.tag, r.value) for r in b4] == [("humidity", 3)]
    b6 = [r for r in sink.readings if r.device == "b6"]
    assert [(r.tag, r.value, r.src) for r in b6] == [("temperature", 6.0, TimeSource.GATEWAY)]
    assert last.value == 5
    assert runner.health().errors == 0  # bad messages are counted, never a connector failure


async def test_broker_restart_ends_run_and_the_next_run_resumes(mosquitto: Mosquitto) -> None:
    port = mosquitto.port
    connector, sink = build(config(port)), Sink()
    async with running(connector, sink, "mqtt_in") as runner:
        await send(port, "plant/a/env", {"sensors": [{"temp": 1, "rh": 1}]}, retain=True)
        await sink.wait_for(lambda r: r.device == "a")
        mosquitto.stop()
        async with asyncio.timeout(5):
            while runner.health().state != "down":  # noqa: ASYNC110 - health is polled state
                await asyncio.sleep(0.05)
        down = runner.health()
        mosquitto.start()
        # The restarted broker kept nothing (persistence off): retained again for the resubscribe.
        await send(port, "plant/b/env", {"sensors": [{"temp": 2, "rh": 2}]}, retain=True)
        await sink.wait_for(lambda r: r.device == "b", within=10)
    assert "lost the broker" in down.last_error
    assert runner.health().state == "up"


async def test_unreachable_broker_is_a_connector_error(mosquitto: Mosquitto) -> None:
    mosquitto.stop()
    connector = build(config(mosquitto.port, timeout=2))
    with pytest.raises(ConnectorError, match=r"broker 127\.0\.0\.1"):
        await connector.run(Sink())


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, TestCA]]:
    binary = require_binary("mosquitto", "run `sudo apt-get install mosquitto`")
    ca = TestCA(tmp_path / "pki")
    server = ca.issue("localhost", server=True)
    tls = f"cafile {ca.cert_path}\ncertfile {server.cert}\nkeyfile {server.key}\n"
    broker = Mosquitto(binary, tmp_path / "broker", extra_config=tls)
    broker.start()
    yield broker, ca
    broker.stop()


async def test_tls_broker(tls_broker: tuple[Mosquitto, TestCA], tmp_path: Path) -> None:
    broker, ca = tls_broker
    connector, sink = build(config(broker.port, tls={"ca": str(ca.cert_path)})), Sink()
    body = json.dumps({"sensors": [{"temp": 30.5, "rh": 1}]})
    tls = {"ca_certs": str(ca.cert_path)}
    async with running(connector, sink, "mqtt_in"):
        await asyncio.to_thread(
            publish.single, "plant/t1/env", body, qos=1, retain=True, port=broker.port, tls=tls
        )
        reading = await sink.wait_for(lambda r: r.device == "t1" and r.tag == "temperature")
    assert reading.value == 30.5
    # A gateway that does not trust the broker's CA refuses to talk to it.
    stranger = TestCA(tmp_path / "other-ca")
    untrusting = build(config(broker.port, timeout=2, tls={"ca": str(stranger.cert_path)}))
    with pytest.raises(ConnectorError, match=r"cannot connect to broker 127\.0\.0\.1"):
        await untrusting.run(Sink())

"""The uplink against the shipped TLS + ACL broker config: its own certificate works; with
another gateway's certificate it is refused, so nothing leaves the buffer."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from factory_common import wire
from gateway_image.firmware.buffer import DurableBuffer
from gateway_image.firmware.config import MqttConfig, TlsConfig
from gateway_image.firmware.uplink import Uplink
from tests.support.broker import Mosquitto
from tests.support.pki import TestCA
from tests.support.processes import wait_until


@pytest.fixture
def broker(secure_broker: Mosquitto) -> Mosquitto:
    return secure_broker


def tls_config(broker: Mosquitto, pki: TestCA, cert_name: str) -> MqttConfig:
    identity = pki.issue(cert_name)
    tls = TlsConfig(ca=pki.cert_path, cert=identity.cert, key=identity.key)
    # PUBACK semantics over TLS: the subscriber here sends no receipts (confirm: edge has
    # its ACL tests in test_broker_security.py and tests/fault/test_gateway_identity.py).
    return MqttConfig(port=broker.port, tls=tls, batch_max_delay=0.01, confirm="broker")


def reading(i: int) -> wire.Reading:
    return wire.Reading(device="d", tag="t", ts=1_700_000_000 * 10**9 + i, value=i)


async def run_uplink(tmp_path: Path, gateway: str, config: MqttConfig) -> tuple[Uplink, int]:
    """Start an uplink with 20 buffered readings; returns it once online, with the depth."""
    buffer = DurableBuffer.open(tmp_path / f"{gateway}.sqlite", max_bytes=10**8)
    await buffer.put([reading(i) for i in range(20)])
    uplink = Uplink(gateway, config, buffer, boot="b")
    uplink.task = asyncio.create_task(uplink.run())  # type: ignore[attr-defined]
    async with asyncio.timeout(10):
        await uplink.wait_online()
    return uplink, buffer.depth


async def stop(uplink: Uplink) -> None:
    uplink.task.cancel()  # type: ignore[attr-defined]
    with pytest.raises(asyncio.CancelledError):
        await uplink.task  # type: ignore[attr-defined]
    uplink.buffer.close()


def edge_subscriber(broker: Mosquitto, pki: TestCA) -> mqtt.Client:
    """The edge's side (ACL user edge-anodizing): without a subscriber the broker would answer
    'No matching subscribers' and the uplink would rightly keep the readings."""
    identity = pki.issue("edge-anodizing")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="edge-anodizing")
    client.tls_set(
        ca_certs=str(pki.cert_path), certfile=str(identity.cert), keyfile=str(identity.key)
    )
    subscribed = threading.Event()
    client.on_connect = lambda c, *_: c.subscribe(wire.data_topic("gw-a"), qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    assert subscribed.wait(10)
    return client


async def test_own_certificate_delivers(tmp_path: Path, broker: Mosquitto, pki: TestCA) -> None:
    edge = await asyncio.to_thread(edge_subscriber, broker, pki)
    uplink, _ = await run_uplink(tmp_path, "gw-a", tls_config(broker, pki, "gw-a"))
    try:
        await asyncio.to_thread(wait_until, lambda: uplink.buffer.depth == 0, 10, "acked")
        assert uplink.counters.readings_acked == 20
    finally:
        await stop(uplink)
        edge.disconnect()
        edge.loop_stop()


async def test_borrowed_certificate_is_refused_and_keeps_data(
    tmp_path: Path, broker: Mosquitto, pki: TestCA
) -> None:
    """gw-b's certificate connecting as gw-a: the broker refuses the client id (CONNACK), so
    the uplink never comes online and every reading stays buffered. (A publish under another
    gateway's topic is refused by the ACL: test_broker_security.py.)"""
    buffer = DurableBuffer.open(tmp_path / "gw-a.sqlite", max_bytes=10**8)
    await buffer.put([reading(i) for i in range(20)])
    uplink = Uplink("gw-a", tls_config(broker, pki, "gw-b"), buffer, boot="b")
    uplink.task = asyncio.create_task(uplink.run())  # type: ignore[attr-defined]
    log = broker.workdir / "mosquitto.log"
    try:
        refusal = "refused client id 'gw-a'"
        await asyncio.to_thread(wait_until, lambda: refusal in log.read_text(), 10, "refusal")
        assert not uplink.connected
        assert uplink.buffer.depth == 20
        assert uplink.counters.readings_acked == 0
    finally:
        await stop(uplink)

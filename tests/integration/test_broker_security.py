"""The shipped Mosquitto config: TLS client certificates required, each gateway fenced to its id."""

from __future__ import annotations

import queue
import ssl
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from factory_common import wire
from tests.support.broker import Mosquitto
from tests.support.pki import Identity, TestCA


@pytest.fixture
def broker(secure_broker: Mosquitto) -> Mosquitto:
    return secure_broker


def connect(
    broker: Mosquitto, ca: Path, identity: Identity | None, client_id: str, wait: float = 5
) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.tls_set(
        ca_certs=str(ca),
        certfile=str(identity.cert) if identity else None,
        keyfile=str(identity.key) if identity else None,
        cert_reqs=ssl.CERT_REQUIRED,
    )
    connected: queue.Queue[ReasonCode] = queue.Queue()
    client.on_connect = lambda _c, _u, _f, rc, _p: connected.put(rc)
    client.connect("127.0.0.1", broker.port, keepalive=10)
    client.loop_start()
    code = connected.get(timeout=wait)  # queue.Empty: the broker never let us in
    assert not code.is_failure, f"connect refused: {code}"
    return client


def subscriber(broker: Mosquitto, pki: TestCA, topic: str) -> tuple[mqtt.Client, queue.Queue]:
    edge = connect(broker, pki.cert_path, pki.issue("edge-anodizing"), "edge-anodizing")
    received: queue.Queue[tuple[str, bytes]] = queue.Queue()
    granted: queue.Queue[list[ReasonCode]] = queue.Queue()
    edge.on_message = lambda _c, _u, msg: received.put((msg.topic, msg.payload))
    edge.on_subscribe = lambda _c, _u, _m, codes, _p: granted.put(codes)
    edge.subscribe(topic, qos=1)
    assert not granted.get(timeout=5)[0].is_failure
    return edge, received


def publish_reason(client: mqtt.Client, topic: str) -> ReasonCode:
    acks: queue.Queue[ReasonCode] = queue.Queue()
    client.on_publish = lambda _c, _u, _mid, rc, _p: acks.put(rc)
    client.publish(topic, b"{}", qos=1)
    return acks.get(timeout=5)


def test_gateway_publishes_under_its_own_id(broker: Mosquitto, pki: TestCA) -> None:
    edge, received = subscriber(broker, pki, wire.subscription(wire.TopicKind.DATA))
    gw1 = connect(broker, pki.cert_path, pki.issue("gw1"), "gw1")
    assert not publish_reason(gw1, wire.data_topic("gw1")).is_failure
    assert received.get(timeout=5)[0] == wire.data_topic("gw1")
    for client in (gw1, edge):
        client.loop_stop()


def test_gateway_cannot_publish_as_another_gateway(broker: Mosquitto, pki: TestCA) -> None:
    edge, received = subscriber(broker, pki, wire.subscription(wire.TopicKind.DATA))
    # gw2's certificate publishing under gw1's id in the topic (gw1's client id is refused
    # outright: tests/integration/test_session_takeover.py).
    impostor = connect(broker, pki.cert_path, pki.issue("gw2"), "gw2")
    reason = publish_reason(impostor, wire.data_topic("gw1"))
    assert reason.is_failure and reason.getName() == "Not authorized"
    with pytest.raises(queue.Empty):
        received.get(timeout=1)
    for client in (impostor, edge):
        client.loop_stop()


@pytest.mark.parametrize("kind", [wire.TopicKind.COMMAND, wire.TopicKind.STORED])
def test_gateway_reads_only_its_own_commands_and_receipts(
    broker: Mosquitto, pki: TestCA, kind: wire.TopicKind
) -> None:
    # Mosquitto's ACL file grants every SUBSCRIBE and filters on delivery, so what counts is
    # which messages arrive.
    edge = connect(broker, pki.cert_path, pki.issue("edge-anodizing"), "edge-anodizing")
    inboxes: dict[str, queue.Queue[str]] = {}
    clients = []
    for gateway in ("gw1", "gw2"):
        client = connect(broker, pki.cert_path, pki.issue(gateway), gateway)
        inbox: queue.Queue[str] = queue.Queue()
        granted: queue.Queue[list[ReasonCode]] = queue.Queue()
        client.on_message = lambda _c, _u, msg, inbox=inbox: inbox.put(msg.topic)
        client.on_subscribe = lambda _c, _u, _m, codes, _p, granted=granted: granted.put(codes)
        client.subscribe(wire.subscription(kind), qos=1)
        granted.get(timeout=5)
        inboxes[gateway] = inbox
        clients.append(client)
    assert not publish_reason(edge, wire.topic(kind, "gw2")).is_failure
    assert inboxes["gw2"].get(timeout=5) == wire.topic(kind, "gw2")
    with pytest.raises(queue.Empty):
        inboxes["gw1"].get(timeout=1)
    for client in (*clients, edge):
        client.loop_stop()


def test_gateway_cannot_forge_a_receipt_for_itself(broker: Mosquitto, pki: TestCA) -> None:
    """Receipts decide what a gateway deletes: only an edge identity may write them."""
    gw1 = connect(broker, pki.cert_path, pki.issue("gw1"), "gw1")
    reason = publish_reason(gw1, wire.stored_topic("gw1"))
    assert reason.is_failure and reason.getName() == "Not authorized"
    gw1.loop_stop()


def test_client_without_certificate_is_refused(broker: Mosquitto, pki: TestCA) -> None:
    with pytest.raises((ssl.SSLError, ConnectionError, OSError, queue.Empty)):
        connect(broker, pki.cert_path, None, "anonymous", wait=2)


def test_certificate_from_another_ca_is_refused(
    broker: Mosquitto, pki: TestCA, tmp_path: Path
) -> None:
    rogue = TestCA(tmp_path / "rogue", name="rogue-ca").issue("gw1")
    with pytest.raises((ssl.SSLError, ConnectionError, OSError, queue.Empty)):
        connect(broker, pki.cert_path, rogue, "gw1", wait=2)


def test_only_fleet_identities_may_ask_a_gateway_to_update(broker: Mosquitto, pki: TestCA) -> None:
    """An update request replaces a gateway's software: a gateway may not ask one of itself."""
    gw1 = connect(broker, pki.cert_path, pki.issue("gw1"), "gw1")
    fleet = connect(broker, pki.cert_path, pki.issue("fleet"), "fleet")
    refused = publish_reason(gw1, wire.update_request_topic("gw1"))
    assert refused.is_failure and refused.getName() == "Not authorized"
    assert not publish_reason(fleet, wire.update_request_topic("gw1")).is_failure
    # The agent reports its own state; the fleet may not forge one, nor a status.
    assert not publish_reason(gw1, wire.update_topic("gw1")).is_failure
    for forged in (wire.update_topic("gw1"), wire.status_topic("gw1")):
        assert publish_reason(fleet, forged).is_failure
    for client in (gw1, fleet):
        client.loop_stop()

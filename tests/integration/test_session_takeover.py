"""No certificate can take over another client's MQTT session on the shipped broker.

Mosquitto keys sessions on the client id: a second connection with an id already in use closes
the first and, with a clean start, discards its queued messages. The shipped config's
clientid-binding plugin (deploy/mosquitto/clientid-binding) admits a certificate only under
`<CN>` or `<CN>:<suffix>` and makes the CN the username, whatever the client claims. Each
attack here is refused at CONNACK; the victim stays connected and still gets every message
queued for it while it was away."""

from __future__ import annotations

import queue
import ssl
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from factory_common import wire
from tests.support.broker import Mosquitto
from tests.support.pki import TestCA

EDGE = "edge-anodizing"
QUEUED = 5


@dataclass
class Session:
    """A client with its CONNACK codes, disconnects and received payloads, each in a queue."""

    client: mqtt.Client
    connacks: queue.Queue[tuple[ReasonCode, bool]]
    disconnects: queue.Queue[ReasonCode]
    received: queue.Queue[bytes]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def open_session(
    broker: Mosquitto,
    pki: TestCA,
    cn: str,
    client_id: str,
    *,
    clean: bool = True,
    v5: bool = False,
    login: tuple[str, str] | None = None,
    auth_method: str | None = None,
) -> tuple[Session, ReasonCode]:
    """Connects with `cn`'s certificate as `client_id`; the session and the CONNACK's code."""
    identity = pki.issue(cn)
    protocol = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        clean_session=None if v5 else clean,
    )
    client.tls_set(
        ca_certs=str(pki.cert_path),
        certfile=str(identity.cert),
        keyfile=str(identity.key),
        cert_reqs=ssl.CERT_REQUIRED,
    )
    if login:
        client.username_pw_set(*login)
    session = Session(client, queue.Queue(), queue.Queue(), queue.Queue())
    client.on_connect = lambda _c, _u, flags, rc, _p: session.connacks.put(
        (rc, flags.session_present)
    )
    client.on_disconnect = lambda _c, _u, _f, rc, _p: session.disconnects.put(rc)
    client.on_message = lambda _c, _u, msg: session.received.put(msg.payload)
    client.reconnect_delay_set(60, 60)  # a refused client must not come back within the test
    properties = None
    if auth_method:
        properties = Properties(PacketTypes.CONNECT)
        properties.AuthenticationMethod = auth_method
    if v5:
        client.connect(
            "127.0.0.1", broker.port, keepalive=30, clean_start=clean, properties=properties
        )
    else:
        client.connect("127.0.0.1", broker.port, keepalive=30)
    client.loop_start()
    code, _present = session.connacks.get(timeout=10)
    return session, code


def publish(session: Session, topic: str, payload: bytes) -> None:
    """QoS 1, returns once the broker has acknowledged it (it is then queued or delivered)."""
    session.client.publish(topic, payload, qos=1).wait_for_publish(10)


@dataclass(frozen=True)
class Victim:
    """Whose session is attacked, what it subscribes to and who publishes there."""

    cn: str
    client_id: str
    topic: str
    publisher: tuple[str, str]  # certificate CN and client id


EDGE_SESSION = Victim(EDGE, EDGE, wire.data_topic("gw1"), ("gw1", "gw1"))
EDGE_COMMANDS = Victim(EDGE, f"{EDGE}:x", wire.data_topic("gw1"), ("gw1", "gw1"))
GW2 = Victim("gw2", "gw2", wire.command_topic("gw2"), (EDGE, EDGE))
GW10 = Victim("gw10", "gw10", wire.command_topic("gw10"), (EDGE, EDGE))


@dataclass(frozen=True)
class Attack:
    client_id: str
    victim: Victim
    refusal: str = "Not authorized"
    login: tuple[str, str] | None = None
    auth_method: str | None = None


ATTACKS = {
    "the edge's id": Attack(EDGE, EDGE_SESSION),
    "an id under the edge's": Attack(f"{EDGE}:x", EDGE_COMMANDS),
    "another gateway's id": Attack("gw2", GW2),
    "an id its CN is a prefix of": Attack("gw10", GW10),
    "the edge's id as a prefix without separator": Attack(f"{EDGE}-cmd-1a2b", EDGE_SESSION),
    "an empty id": Attack("", EDGE_SESSION),
    "its own login claiming the edge": Attack(EDGE, EDGE_SESSION, login=(EDGE, "secret")),
    # MQTT 5 extended authentication bypasses basic authentication: no method is offered.
    "extended authentication": Attack(
        EDGE, EDGE_SESSION, refusal="Bad authentication method", auth_method="SCRAM-SHA-1"
    ),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_a_gateway_certificate_cannot_take_over_a_session(
    secure_broker: Mosquitto, pki: TestCA, name: str
) -> None:
    attack = ATTACKS[name]
    victim = attack.victim

    def attempt() -> None:
        # A clean start: had it been let in, the victim's queued messages would be gone.
        intruder, code = open_session(
            secure_broker,
            pki,
            "gw1",
            attack.client_id,
            v5=attack.auth_method is not None,
            login=attack.login,
            auth_method=attack.auth_method,
        )
        intruder.client.loop_stop()
        assert code.is_failure and code.getName() == attack.refusal, code

    owner, code = open_session(secure_broker, pki, victim.cn, victim.client_id, clean=False)
    assert not code.is_failure, code
    owner.client.subscribe(victim.topic, qos=1)
    publisher, code = open_session(secure_broker, pki, *victim.publisher)
    assert not code.is_failure, code
    publish(publisher, victim.topic, b"before")
    assert owner.received.get(timeout=10) == b"before"  # subscribed and delivering

    attempt()
    publish(publisher, victim.topic, b"live")
    assert owner.received.get(timeout=10) == b"live"
    assert owner.disconnects.empty(), "the victim was disconnected"

    # Away: the broker queues for the persistent session; a clean-start takeover would drop it.
    owner.close()
    payloads = [f"queued-{i}".encode() for i in range(QUEUED)]
    for payload in payloads:
        publish(publisher, victim.topic, payload)
    attempt()
    owner, code = open_session(secure_broker, pki, victim.cn, victim.client_id, clean=False)
    assert not code.is_failure, code
    assert [owner.received.get(timeout=10) for _ in payloads] == payloads
    for session in (owner, publisher):
        session.close()


def publish_reason(session: Session, topic: str) -> ReasonCode:
    """The broker's PUBACK reason (MQTT 5) for a QoS 1 publish."""
    acks: queue.Queue[ReasonCode] = queue.Queue()
    session.client.on_publish = lambda _c, _u, _mid, rc, _p: acks.put(rc)
    session.client.publish(topic, b"{}", qos=1)
    return acks.get(timeout=10)


def test_the_agent_id_writes_only_its_own_gateways_update_state(
    secure_broker: Mosquitto, pki: TestCA
) -> None:
    """`gw1:agent` is admitted and the ACL's %u is gw1: the plugin set the username."""
    agent, code = open_session(secure_broker, pki, "gw1", "gw1:agent", v5=True)
    assert not code.is_failure, code
    assert not publish_reason(agent, wire.update_topic("gw1")).is_failure
    refused = publish_reason(agent, wire.update_topic("gw2"))
    assert refused.is_failure and refused.getName() == "Not authorized"
    agent.close()


def test_the_gateway_and_its_agent_are_connected_at_once(
    secure_broker: Mosquitto, pki: TestCA
) -> None:
    gateway, code = open_session(secure_broker, pki, "gw1", "gw1", v5=True)
    assert not code.is_failure, code
    agent, code = open_session(secure_broker, pki, "gw1", "gw1:agent", v5=True)
    assert not code.is_failure, code
    assert not publish_reason(gateway, wire.data_topic("gw1")).is_failure
    assert gateway.disconnects.empty() and agent.disconnects.empty()
    for session in (gateway, agent):
        session.close()


def test_a_command_sender_id_has_the_edges_rights_only(
    secure_broker: Mosquitto, pki: TestCA
) -> None:
    sender, code = open_session(secure_broker, pki, EDGE, f"{EDGE}:cmd-1a2b3c4d", v5=True)
    assert not code.is_failure, code
    assert not publish_reason(sender, wire.command_topic("gw1")).is_failure
    refused = publish_reason(sender, wire.data_topic("gw1"))
    assert refused.is_failure and refused.getName() == "Not authorized"
    sender.close()


def test_a_clients_own_login_does_not_change_its_identity(
    secure_broker: Mosquitto, pki: TestCA
) -> None:
    """gw1's certificate with the edge's username is admitted as gw1 and has gw1's rights only:
    the certificate's CN wins over the username it sent."""
    gw1, code = open_session(secure_broker, pki, "gw1", "gw1", v5=True, login=(EDGE, "secret"))
    assert not code.is_failure, code
    assert not publish_reason(gw1, wire.data_topic("gw1")).is_failure
    for edge_only in (wire.stored_topic("gw1"), wire.command_topic("gw1")):
        refused = publish_reason(gw1, edge_only)
        assert refused.is_failure and refused.getName() == "Not authorized", edge_only
    gw1.close()

"""The real gateway process against the shipped TLS + ACL broker config (deploy/mosquitto):
with its own certificate its readings get through; with another gateway's certificate, or
none, nothing is published under its id and every reading stays in its buffer."""

from __future__ import annotations

import queue
import ssl
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from edge_node.receipts import Receipts
from edge_node.store.intervals import IntervalSet
from factory_common import wire
from gateway_image.firmware.buffer import DurableBuffer
from tests.fault.rig import buffer_meta, note
from tests.support.broker import Mosquitto
from tests.support.pki import Identity, TestCA
from tests.support.processes import Child, console_script, wait_until

GW = "gw-a"
N = 1000


@pytest.fixture
def broker(secure_broker: Mosquitto) -> Mosquitto:
    return secure_broker


class EdgeSubscriber:
    """Reads every gateway's data with the edge's certificate (the ACL's `edge-anodizing`) and
    answers with receipts, as the edge does, through the same ACL: the gateway deletes only
    what a receipt lists."""

    def __init__(self, broker: Mosquitto, pki: TestCA) -> None:
        identity = pki.issue("edge-anodizing")
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="edge-anodizing")
        client.tls_set(
            ca_certs=str(pki.cert_path),
            certfile=str(identity.cert),
            keyfile=str(identity.key),
            cert_reqs=ssl.CERT_REQUIRED,
        )
        self.ledger = IntervalSet()
        client.on_message = self._on_message
        client.on_connect = lambda c, *_: c.subscribe(wire.subscription(wire.TopicKind.DATA), 1)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        self.client = client

    def _on_message(self, client: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        self.messages.put(message)
        batch = wire.decode(message.payload, wire.Batch)
        self.ledger.add(batch.first_seq, batch.last_seq)
        receipt = Receipts("edge-anodizing").receipt(batch.gateway, self.ledger.ranges())
        client.publish(wire.stored_topic(batch.gateway), wire.encode(receipt), 1, retain=True)

    def seqs(self) -> set[int]:
        found: set[int] = set()
        while not self.messages.empty():
            batch = wire.decode(self.messages.get_nowait().payload, wire.Batch)
            assert batch.gateway == GW
            found.update(range(batch.first_seq, batch.last_seq + 1))
        return found

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def start_gateway(tmp_path: Path, broker: Mosquitto, pki: TestCA, cert: Identity | None) -> Child:
    """`gateway run` with N readings already buffered and no connector (only those are sent)."""
    data = tmp_path / "gateway"
    buffer = DurableBuffer.open(data / "buffer.sqlite", max_bytes=10**8)
    ts = time.time_ns()
    buffer.append([wire.Reading(device="d", tag="t", ts=ts + i, value=i) for i in range(N)])
    buffer.close()
    tls: dict[str, str] = {"ca": str(pki.cert_path)}
    if cert is not None:
        tls |= {"cert": str(cert.cert), "key": str(cert.key)}
    config = {
        "gateway": {"id": GW},
        "mqtt": {"port": broker.port, "tls": tls, "status_interval": 1},
        "buffer": {"path": "buffer.sqlite"},
        # No connector: a down device would add its own "connector down" readings.
        "connectors": [],
    }
    (data / "gateway.yaml").write_text(yaml.safe_dump(config))
    args = console_script(
        "gateway", "run", str(data / "gateway.yaml"), "--data-dir", str(data), "--log-json"
    )
    return Child("gateway", args, tmp_path).start()


@pytest.mark.slow
@pytest.mark.parametrize("whose", ["own", "another gateway's", "no"])
def test_only_its_own_certificate_lets_a_gateway_publish(
    tmp_path: Path, broker: Mosquitto, pki: TestCA, whose: str
) -> None:
    cert = {"own": pki.issue(GW), "another gateway's": pki.issue("gw-b"), "no": None}[whose]
    edge = EdgeSubscriber(broker, pki)
    gateway = start_gateway(tmp_path, broker, pki, cert)
    buffer = tmp_path / "gateway" / "buffer.sqlite"
    try:
        if whose == "own":
            wait_until(lambda: buffer_meta(buffer).get("depth") == 0, 30, "acked", (gateway,))
            time.sleep(0.5)
            first = buffer_meta(buffer)["next_seq"] - N
            assert edge.seqs() == set(range(first, first + N))
        else:
            # Another gateway's certificate may not use this gateway's client id at all.
            evidence = '"mqtt_refused"' if cert else '"mqtt_unreachable"'
            wait_until(lambda: evidence in gateway.log(), 30, evidence, (gateway,))
            time.sleep(2.0)  # long enough for a wrongly accepted batch to show up
            assert edge.seqs() == set(), "nothing is published under another id"
            assert buffer_meta(buffer)["depth"] == N, "every reading stays buffered"
            assert '"mqtt_connected"' not in gateway.log()
        note(f"{whose} certificate: {'delivered' if whose == 'own' else 'refused, kept'}")
    finally:
        gateway.stop()
        edge.close()

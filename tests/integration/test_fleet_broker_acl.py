"""The fleet's broker identity under the shipped ACL: reads statuses, receipts and update states;
publishes nothing but update requests."""

from __future__ import annotations

import json
import queue
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from factory_common import wire
from fleet.cli import app
from tests.integration.test_broker_security import connect, publish_reason
from tests.support.broker import Mosquitto
from tests.support.fleet import make_fleet_dir
from tests.support.pki import TestCA


def test_fleet_reads_every_status_receipt_and_update_state(
    secure_broker: Mosquitto, pki: TestCA
) -> None:
    fleet = connect(secure_broker, pki.cert_path, pki.issue("fleet"), "fleet")
    inbox: queue.Queue[str] = queue.Queue()
    fleet.on_message = lambda _c, _u, msg: inbox.put(msg.topic)
    for kind in (wire.TopicKind.STATUS, wire.TopicKind.STORED, wire.TopicKind.UPDATE):
        fleet.subscribe(wire.subscription(kind), qos=1)
    gw1 = connect(secure_broker, pki.cert_path, pki.issue("gw1"), "gw1")
    edge = connect(secure_broker, pki.cert_path, pki.issue("edge-anodizing"), "edge-anodizing")
    assert not publish_reason(gw1, wire.status_topic("gw1")).is_failure
    assert not publish_reason(edge, wire.stored_topic("gw1")).is_failure
    assert not publish_reason(gw1, wire.update_topic("gw1")).is_failure
    got = {inbox.get(timeout=5) for _ in range(3)}
    assert got == {wire.status_topic("gw1"), wire.stored_topic("gw1"), wire.update_topic("gw1")}
    for client in (fleet, gw1, edge):
        client.loop_stop()


def test_fleet_publishes_nothing_but_update_requests(secure_broker: Mosquitto, pki: TestCA) -> None:
    fleet = connect(secure_broker, pki.cert_path, pki.issue("fleet"), "fleet")
    for kind in wire.TopicKind:
        reason = publish_reason(fleet, wire.topic(kind, "gw1"))
        if kind is wire.TopicKind.UPDATE_REQUEST:
            assert not reason.is_failure
        else:
            assert reason.is_failure and reason.getName() == "Not authorized", kind
    fleet.loop_stop()


def test_update_request_reaches_only_its_gateway(secure_broker: Mosquitto, pki: TestCA) -> None:
    fleet = connect(secure_broker, pki.cert_path, pki.issue("fleet"), "fleet")
    inboxes: dict[str, queue.Queue[str]] = {}
    clients = [fleet]
    for gateway in ("gw1", "gw2"):
        client = connect(secure_broker, pki.cert_path, pki.issue(gateway), gateway)
        inbox: queue.Queue[str] = queue.Queue()
        client.on_message = lambda _c, _u, msg, inbox=inbox: inbox.put(msg.topic)
        subscribed: queue.Queue[object] = queue.Queue()
        client.on_subscribe = lambda *_a, s=subscribed: s.put(True)
        client.subscribe(wire.subscription(wire.TopicKind.UPDATE_REQUEST), qos=1)
        subscribed.get(timeout=5)
        inboxes[gateway] = inbox
        clients.append(client)
    assert not publish_reason(fleet, wire.update_request_topic("gw2")).is_failure
    assert inboxes["gw2"].get(timeout=5) == wire.update_request_topic("gw2")
    with pytest.raises(queue.Empty):
        inboxes["gw1"].get(timeout=1)
    # A gateway cannot ask another (or itself) to update.
    reason = publish_reason(clients[1], wire.update_request_topic("gw2"))
    assert reason.is_failure and reason.getName() == "Not authorized"
    for client in clients:
        client.loop_stop()


def test_fleet_status_reads_through_the_shipped_tls_and_acl(
    secure_broker: Mosquitto, pki: TestCA, tmp_path: Path
) -> None:
    fleet_id = pki.issue("fleet")
    tls = {
        "ca": str(pki.cert_path),
        "cert": str(fleet_id.cert),
        "key": str(fleet_id.key),
        "insecure_hostname": True,
    }
    layout = make_fleet_dir(tmp_path / "fleet", secure_broker.port, ["gw1"])
    config = yaml.safe_load(layout.fleet_file.read_text())
    config["broker"] = {"host": "127.0.0.1", "port": secure_broker.port, "tls": tls}
    layout.fleet_file.write_text(yaml.safe_dump(config))
    gw1 = connect(secure_broker, pki.cert_path, pki.issue("gw1"), "gw1")
    status = wire.GatewayStatus(v=wire.WIRE_VERSION, gateway="gw1", online=True, version="1.0")
    gw1.publish(wire.status_topic("gw1"), wire.encode(status), qos=1, retain=True).wait_for_publish(
        5
    )
    gw1.loop_stop()
    result = CliRunner().invoke(app, ["status", "--json", "-C", str(layout.root)])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert (row["id"], row["version"], row["online"]) == ("gw1", "1.0", True)

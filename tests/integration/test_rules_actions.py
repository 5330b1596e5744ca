"""Rule actions against real servers: commands over Mosquitto (acked by a gateway-side client),
webhooks to a local HTTP server, and one rule's failure or timeout leaving the others alone."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_node.commands import CommandLog, CommandSender
from edge_node.config import MqttConfig
from edge_node.rules.actions import Services
from edge_node.rules.engine import RuleEngine
from edge_node.rules.model import RulesFile
from edge_node.rules.store import FiringStore
from factory_common import wire
from factory_common.config import parse_yaml_model
from factory_common.wire import AckStatus, Batch, CommandAck, Reading, Write, WriteResult
from tests.support.broker import Mosquitto


class GatewaySide:
    """Answers commands on gw1's command topic like a gateway: done, with the read-back."""

    def __init__(self, port: int, status: AckStatus = AckStatus.DONE) -> None:
        self.received: list[wire.Command] = []
        self.status = status
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw1-test")
        self.client.on_connect = lambda c, *_: c.subscribe(wire.command_topic("gw1"), qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        command = wire.decode(msg.payload, wire.Command)
        self.received.append(command)
        results = [WriteResult(w.device, w.tag, True, readback=w.value) for w in command.writes]
        ack = CommandAck(wire.WIRE_VERSION, command.id, "gw1", self.status, wire.now_ns(), results)
        client.publish(wire.ack_topic("gw1"), wire.encode(ack), qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
async def sender(mosquitto: Mosquitto, tmp_path: Path) -> AsyncIterator[CommandSender]:
    log = CommandLog(tmp_path / "ops.sqlite")
    config = MqttConfig(port=mosquitto.port, reconnect_min=0.1, reconnect_max=0.5)
    sender = CommandSender(config, "edge-test-cmd", log)
    task = asyncio.create_task(sender.run())
    yield sender
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    log.close()


async def test_command_is_acked_and_recorded(mosquitto: Mosquitto, sender: CommandSender) -> None:
    gateway = GatewaySide(mosquitto.port)
    try:
        writes = [Write("bath1", "print_label", True)]
        outcome = await sender.send("gw1", writes, issued_by="olga", timeout=5)
    finally:
        gateway.close()
    assert outcome.ok and outcome.status == "done" and outcome.issued_by == "olga"
    assert outcome.ack is not None and outcome.ack["results"][0]["readback"] is True
    assert [c.id for c in gateway.received] == [outcome.id]
    (logged,) = sender.log.recent()
    assert (logged["id"], logged["status"], logged["writes"]) == (
        outcome.id, "done", [{"device": "bath1", "tag": "print_label", "value": True}],
    )  # fmt: skip


async def test_no_gateway_is_a_timeout_outcome(sender: CommandSender) -> None:
    started = time.monotonic()
    outcome = await sender.send("gw-absent", [Write("d", "t", 1)], issued_by="x", timeout=0.5)
    assert outcome.status == "timeout" and not outcome.ok
    assert "no ack from gw-absent within 0.5 s" in outcome.detail
    assert time.monotonic() - started < 2
    assert sender.log.recent()[0]["status"] == "timeout"


async def test_unreachable_broker_is_a_timeout_naming_the_broker(tmp_path: Path) -> None:
    from tests.support.ports import free_port

    sender = CommandSender(MqttConfig(port=free_port()), "edge-x", None)
    task = asyncio.create_task(sender.run())
    try:
        outcome = await sender.send("gw1", [Write("d", "t", 1)], issued_by="x", timeout=0.3)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert outcome.status == "timeout" and "not connected to the broker" in outcome.detail


# ---------------------------------------------------------------- webhooks and isolation


class Hooks(BaseHTTPRequestHandler):
    received: list[tuple[str, Any]] = []

    def do_POST(self) -> None:  # http.server calls do_<METHOD>
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Hooks.received.append((self.path, body))
        if self.path == "/slow":
            time.sleep(1.0)
        self.send_response(500 if self.path == "/broken" else 204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def hook_server() -> Iterator[str]:
    Hooks.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


RULES = """
rules:
  - id: hook
    trigger: {{reading: {{series: "gw1/bath1/temp"}}}}
    when: "value > 25"
    actions:
      - webhook: {{url: "{url}/ok", payload: {{series: "=series", value: "=value"}}}}
  - id: broken-hook
    trigger: {{reading: {{series: "gw1/bath1/temp"}}}}
    actions: [{{webhook: {{url: "{url}/broken"}}}}]
  - id: slow-hook
    trigger: {{reading: {{series: "gw1/bath1/temp"}}}}
    timeout: 0.3
    actions: [{{webhook: {{url: "{url}/slow", timeout: 5}}}}]
  - id: label
    trigger: {{reading: {{series: "gw1/bath1/temp"}}}}
    when: "value > 25"
    actions: [{{command: {{writes: [{{device: bath1, tag: print_label, value: true}}]}}}}]
"""


async def test_webhooks_and_commands_from_rules_each_isolated(
    mosquitto: Mosquitto, sender: CommandSender, hook_server: str, tmp_path: Path
) -> None:
    gateway = GatewaySide(mosquitto.port)
    firings = FiringStore(tmp_path / "ops.sqlite")
    engine = RuleEngine(firings, Services(commands=sender))
    engine.set_rules(parse_yaml_model(RULES.format(url=hook_server), RulesFile))
    run = asyncio.create_task(engine.run())  # gives the engine its HTTP client
    try:
        await asyncio.sleep(0.05)
        engine.process([Batch(1, "gw1", "b", 0, 0, [Reading("bath1", "temp", 1, 26.5)])])
        await asyncio.wait_for(engine.drain(), 10)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        gateway.close()
    outcome = {f["rule_id"]: f for f in firings.recent()}
    assert outcome["hook"]["outcome"] == "ok"
    assert ("/ok", {"series": "gw1/bath1/temp", "value": 26.5}) in Hooks.received
    assert outcome["broken-hook"]["outcome"] == "failed"
    assert outcome["broken-hook"]["actions"][0]["status_code"] == 500
    assert outcome["slow-hook"]["outcome"] == "timeout"
    label = outcome["label"]
    assert label["outcome"] == "ok" and label["actions"][0]["status"] == "done"
    assert label["actions"][0]["results"][0]["readback"] is True
    assert gateway.received[0].issued_by == "rule:label"
    firings.close()

"""The line's broker: Mosquitto with a generated config, or amqtt in its own process."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from line_sim import broker as broker_mod
from line_sim.broker import BrokerUnavailable, plan_broker
from tests.support.ports import free_port, wait_for_port
from tests.support.requirements import require_binary


def _round_trip(port: int) -> bytes:
    """Publish QoS 1 and receive it back through the broker on `port`."""
    got: list[bytes] = []
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="line-sim-test")

    def on_connect(c: mqtt.Client, *_: object) -> None:
        c.subscribe("line/test", qos=1)

    def on_subscribe(c: mqtt.Client, *_: object) -> None:
        c.publish("line/test", b"hello", qos=1)

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        got.append(msg.payload)
        done.set()

    client.on_connect, client.on_subscribe, client.on_message = (
        on_connect,
        on_subscribe,
        on_message,
    )
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert done.wait(5), "no message came back through the broker"
    finally:
        client.loop_stop()
        client.disconnect()
    return got[0]


def _serve(argv: list[str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
    except TimeoutError:
        process.kill()
        raise
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(10)


def test_mosquitto_plan_runs_a_private_persistent_broker(tmp_path: Path) -> None:
    require_binary("mosquitto", "sudo apt-get install mosquitto")
    port = free_port()
    plan = plan_broker("auto", port, tmp_path / "broker")
    assert plan.kind == "mosquitto" and "Mosquitto" in plan.describe()
    config = (tmp_path / "broker" / "mosquitto.conf").read_text()
    assert f"listener {port} 127.0.0.1" in config and "persistence true" in config
    process = _serve(plan.argv, port)
    try:
        assert _round_trip(port) == b"hello"
    finally:
        _stop(process)


def test_embedded_plan_runs_amqtt_in_its_own_process(tmp_path: Path) -> None:
    port = free_port()
    plan = plan_broker("embedded", port, tmp_path)
    assert plan.kind == "amqtt" and "amqtt" in plan.describe()
    process = _serve(plan.argv, port)
    try:
        assert _round_trip(port) == b"hello"
    finally:
        _stop(process)


def test_asking_for_mosquitto_without_it_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broker_mod, "find_mosquitto", lambda: None)
    with pytest.raises(BrokerUnavailable, match="apt-get install mosquitto"):
        plan_broker("mosquitto", 1883, tmp_path)
    assert plan_broker("auto", 1883, tmp_path).kind == "amqtt"

"""Pure parts of `factory-line run`: port choice, config rewriting and log rendering."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from edge_node.config import load_edge_config
from gateway_image.firmware.config import load_gateway_config
from line_sim.orchestrator import (
    Ports,
    RunOptions,
    StartupError,
    choose_ports,
    gateway_mqtt_overrides,
    write_configs,
)
from line_sim.processes import readable


def test_configs_are_rewritten_for_the_chosen_ports_and_still_validate(tmp_path: Path) -> None:
    ports = Ports(http=18080, mqtt=18830, modbus=15020)
    gateway_path, edge_path = write_configs(RunOptions(tmp_path), ports, tmp_path / "config")
    gateway = load_gateway_config(gateway_path)
    edge = load_edge_config(edge_path)
    assert (gateway.mqtt.host, gateway.mqtt.port) == ("127.0.0.1", 18830)
    assert gateway.connectors[0].port == 15020
    assert (edge.mqtt.port, edge.http.port) == (18830, 18080)
    # Everything else is the example's.
    assert gateway.gateway.id == "anodizing-gw1"
    assert len(gateway.connectors[0].devices[0].tags) > 10


def test_default_ports_avoid_a_taken_one(tmp_path: Path) -> None:
    ports = choose_ports(RunOptions(tmp_path))
    assert len({ports.http, ports.mqtt, ports.modbus}) == 3
    assert 1883 not in (ports.mqtt, ports.modbus)


def test_a_taken_port_that_was_asked_for_is_an_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(StartupError, match=f"port {port} \\(--mqtt-port\\) is in use"):
            choose_ports(RunOptions(tmp_path, mqtt_port=port))


def test_a_missing_template_says_how_to_pass_one(tmp_path: Path) -> None:
    options = RunOptions(tmp_path, gateway_template=tmp_path / "nope.yaml")
    with pytest.raises(StartupError, match="--gateway-config FILE"):
        write_configs(options, Ports(1, 2, 3), tmp_path)


def test_json_log_lines_are_shown_readably_and_others_untouched() -> None:
    line = json.dumps(
        {"event": "write", "level": "info", "timestamp": "2026", "tag": "recipe", "value": 2}
    )
    assert readable(line) == "info    write tag=recipe value=2"
    assert readable("Traceback (most recent call last):") == "Traceback (most recent call last):"
    assert readable('{"not": "structlog"}') == '{"not": "structlog"}'
    assert readable("{broken") == "{broken"


def test_embedded_broker_gets_a_gateway_speaking_its_protocol_or_a_clear_refusal(
    tmp_path: Path,
) -> None:
    from gateway_image.firmware.config import MqttConfig

    assert gateway_mqtt_overrides("mosquitto") == {}
    if "protocol" not in MqttConfig.model_fields:
        with pytest.raises(StartupError, match=r"MQTT 3\.1\.1 only.*install Mosquitto"):
            gateway_mqtt_overrides("amqtt")
        return
    overrides = gateway_mqtt_overrides("amqtt")
    gateway_path, _ = write_configs(RunOptions(tmp_path), Ports(1, 2, 3), tmp_path, overrides)
    assert str(load_gateway_config(gateway_path).mqtt.protocol) == "3.1.1"


def test_external_broker_needs_one_listening_on_the_given_port(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="--broker external needs --mqtt-port"):
        choose_ports(RunOptions(tmp_path, broker="external"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert choose_ports(RunOptions(tmp_path, broker="external", mqtt_port=port)).mqtt == port

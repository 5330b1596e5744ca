"""Pure parts of `factory-line run`: port choice, config rewriting and log rendering."""

from __future__ import annotations

import itertools
import json
import socket
import types
from pathlib import Path
from typing import ClassVar

import pytest

from edge_node.config import load_edge_config
from gateway_image.firmware.config import load_gateway_config
from line_sim import orchestrator
from line_sim.orchestrator import (
    EXAMPLES,
    Ports,
    RunOptions,
    StartupError,
    choose_ports,
    edge_mqtt_overrides,
    gateway_mqtt_overrides,
    prepare_logins,
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


class _LowestFreeSocket:
    """A socket whose bind to port 0 gets the lowest port no open socket holds, as a kernel
    may hand out a port again as soon as it is let go."""

    held: ClassVar[set[int]] = set()

    def __init__(self) -> None:
        self.port = 0

    def __enter__(self) -> _LowestFreeSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.held.discard(self.port)

    def bind(self, address: tuple[str, int]) -> None:
        port = address[1] or next(p for p in itertools.count(40_000) if p not in self.held)
        if port in self.held:
            raise OSError(f"port {port} is in use")
        self.port = port
        self.held.add(port)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


def test_picked_ports_differ_even_when_a_freed_port_comes_straight_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orchestrator, "socket", types.SimpleNamespace(socket=_LowestFreeSocket))
    ports = choose_ports(RunOptions(tmp_path, http_port=0))
    assert len({ports.http, ports.mqtt, ports.modbus}) == 3
    asked = choose_ports(RunOptions(tmp_path, http_port=0, mqtt_port=40_001))
    assert asked.mqtt == 40_001 and len({asked.http, asked.mqtt, asked.modbus}) == 3


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
    edge_overrides = edge_mqtt_overrides("amqtt")
    gateway_path, edge_path = write_configs(
        RunOptions(tmp_path), Ports(1, 2, 3), tmp_path, overrides, edge_overrides
    )
    gateway = load_gateway_config(gateway_path)
    assert str(gateway.mqtt.protocol) == "3.1.1"
    # amqtt queues for a persistent session only when its client is not anonymous.
    assert gateway.mqtt.username and load_edge_config(edge_path).mqtt.username
    assert edge_mqtt_overrides("mosquitto") == {}


def test_external_broker_needs_one_listening_on_the_given_port(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="--broker external needs --mqtt-port"):
        choose_ports(RunOptions(tmp_path, broker="external"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert choose_ports(RunOptions(tmp_path, broker="external", mqtt_port=port)).mqtt == port


def test_the_defect_rule_is_copied_and_named_by_the_edge_config(tmp_path: Path) -> None:
    from edge_node.rules.model import RulesFile
    from factory_common.config import load_yaml_model

    _, edge_path = write_configs(RunOptions(tmp_path), Ports(1, 2, 3), tmp_path / "config")
    edge = load_edge_config(edge_path)
    assert edge.rules is not None
    rules_path = edge.rules.resolve_path(tmp_path / "edge")
    assert rules_path == tmp_path / "config" / "rules" / "anodizing-defect.yaml"
    assert rules_path.read_bytes() == (EXAMPLES / "rules" / "anodizing-defect.yaml").read_bytes()
    assert [r.id for r in load_yaml_model(rules_path, RulesFile).rules] == ["anodizing-defect"]
    assert edge.auth.enabled and edge.monitoring.limits  # login on, demo limits in


def test_an_edge_template_with_its_own_rules_keeps_them(tmp_path: Path) -> None:
    template = tmp_path / "edge.yaml"
    template.write_text("edge: {id: e1}\nrules: {path: mine.yaml}\n")
    options = RunOptions(tmp_path, edge_template=template)
    _, edge_path = write_configs(options, Ports(1, 2, 3), tmp_path / "config")
    rules = load_edge_config(edge_path).rules
    assert rules is not None and rules.path == Path("mine.yaml")
    assert not (tmp_path / "config" / "rules").exists()


async def test_logins_are_made_unless_the_edge_config_turns_login_off(tmp_path: Path) -> None:
    _, edge_path = write_configs(RunOptions(tmp_path), Ports(1, 2, 3), tmp_path / "config")
    credentials = tmp_path / "credentials.txt"
    logins = await prepare_logins(edge_path, tmp_path / "edge", credentials)
    assert [x.name for x in logins] == ["engineer", "viewer"]
    assert (tmp_path / "edge" / "users.sqlite").exists() and credentials.exists()
    off = tmp_path / "off.yaml"
    off.write_text("edge: {id: e1}\nauth: {enabled: false}\n")
    assert await prepare_logins(off, tmp_path / "edge2", tmp_path / "c2.txt") == []
    assert not (tmp_path / "c2.txt").exists()

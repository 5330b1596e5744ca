"""`gateway run --only`: by connector name, or by protocol (`type:NAME`) for container groups."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway_image.firmware.app import GatewaySetupError, group_identity, select_connectors
from gateway_image.firmware.config import GatewayConfig, load_gateway_config
from gateway_image.firmware.connectors.registry import BUILDERS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config() -> GatewayConfig:
    return load_gateway_config(ROOT / "examples" / "anodizing-gateway.yaml")


def test_type_selects_every_connector_of_that_protocol(config: GatewayConfig) -> None:
    chosen = select_connectors(config, ["type:modbus_tcp"])
    assert chosen and {c.type for c in chosen} == {"modbus_tcp"}
    assert group_identity(config, ["type:modbus_tcp"], "plc") == f"{config.gateway.id}.plc"


def test_a_type_this_gateway_lacks_selects_nothing(config: GatewayConfig) -> None:
    assert select_connectors(config, ["type:gpio"]) == []


def test_unknown_names_and_types_are_named(config: GatewayConfig) -> None:
    with pytest.raises(GatewaySetupError, match=r"'nope', type:canbus"):
        select_connectors(config, ["nope", "type:canbus"])


def test_the_compose_groups_cover_every_protocol_once() -> None:
    """Each balena service runs one protocol group; no connector type is left without one."""
    compose = yaml.safe_load((ROOT / "gateway_image" / "docker-compose.yml").read_text())
    seen: list[str] = []
    for service in compose["services"].values():
        command = service["command"]
        entries = command[command.index("--only") + 1].split(",")
        assert all(e.startswith("type:") for e in entries)
        seen += [e.removeprefix("type:") for e in entries]
    assert sorted(seen) == sorted(BUILDERS)

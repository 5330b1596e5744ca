"""Prepare a config rollout: validate CONFIG for every gateway, render and keep each copy.

Nothing is sent unless every gateway's copy passes the gateway's own models and wiring checks
(gateway_image.firmware.config, hardware/wiring_checks.py). Each copy is kept by the template's
hash under configs/history/, beside the gateway's current config, so a revert always has the
last good one to send.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import yaml

from factory_common.config import ConfigError
from fleet.inventory import GatewayEntry, Inventory
from fleet.rollout.targets import config_history, history_file
from gateway_image.firmware.config import parse_gateway_config


def config_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def render(text: str, gateway: GatewayEntry) -> str:
    """The gateway's own copy: its id, and its board from the inventory when CONFIG names none."""
    data = yaml.safe_load(text)
    info = data.setdefault("gateway", {})
    info["id"] = gateway.id
    if gateway.board and not info.get("board"):
        info["board"] = gateway.board
    return yaml.safe_dump(data, sort_keys=False)


def validate_all(source: Path, text: str, gateways: list[GatewayEntry]) -> dict[str, str]:
    """Every gateway's rendered copy, or ConfigError listing every problem in every copy."""
    parse_gateway_config(text, str(source))  # file:line errors against the file as written
    rendered, problems = {}, []
    for gateway in gateways:
        copy = render(text, gateway)
        try:
            parse_gateway_config(copy, f"{source} (as {gateway.id})")
        except ConfigError as exc:
            problems += exc.problems
        rendered[gateway.id] = copy
    if problems:
        raise ConfigError(str(source), problems)
    return rendered


def keep(inventory: Inventory, rendered: dict[str, str], value: str) -> dict[str, str]:
    """Write each copy into the history; return each gateway's previous config hash."""
    config_history(inventory.layout).mkdir(parents=True, exist_ok=True)
    previous = {}
    for gw, copy in rendered.items():
        history_file(inventory.layout, gw, value).write_text(copy)
        previous[gw] = _previous(inventory, inventory.gateways[gw])
    return previous


def _previous(inventory: Inventory, gateway: GatewayEntry) -> str:
    """The last good config's hash; a config found on file but never pushed joins the history."""
    if gateway.config_hash:
        return gateway.config_hash
    current = inventory.layout.gateway_config(gateway.id)
    if not current.exists():
        return ""  # nothing to return to: the agent's own last good config is the fallback
    value = config_hash(current.read_text())
    shutil.copyfile(current, history_file(inventory.layout, gateway.id, value))
    return value

"""Connector registry: an explicit map from a config's `type` to the function that builds it.

Builders are named as "module:function" and imported on first use, so a gateway loads only
the protocol libraries its config names: a Modbus-only gateway never imports asyncua (about
half the firmware's start-up import time) or gpiozero.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Final

from gateway_image.firmware.config import ConnectorConfig
from gateway_image.firmware.connectors.base import PollingConnector, StreamingConnector

Connector = PollingConnector | StreamingConnector

_PACKAGE: Final = "gateway_image.firmware.connectors"

# One line per connector type; the config union in config/gateway.py lists the same types.
BUILDERS: Final[dict[str, str]] = {
    "modbus_tcp": f"{_PACKAGE}.modbus.tcp:build",
    "opcua": f"{_PACKAGE}.opcua.connector:build",
    "mqtt_in": f"{_PACKAGE}.mqtt_in.connector:build",
    "modbus_rtu": f"{_PACKAGE}.modbus.rtu:build",
    "serial_line": f"{_PACKAGE}.serial_line.connector:build",
    "gpio": f"{_PACKAGE}.gpio.connector:build",
}


def builder_for(connector_type: str) -> Callable[[Any], Connector]:
    """Import (once; Python caches modules) and return the builder registered for a type."""
    module_name, _, function = BUILDERS[connector_type].partition(":")
    builder: Callable[[Any], Connector] = getattr(importlib.import_module(module_name), function)
    return builder


def build_connector(config: ConnectorConfig) -> Connector:
    """Build (without any I/O) the connector for one entry of `connectors:`."""
    if config.type not in BUILDERS:
        raise ValueError(
            f"connector {config.name}: no implementation registered for type {config.type!r}"
        )
    return builder_for(config.type)(config)

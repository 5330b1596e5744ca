"""Connector registry: an explicit map from a config's `type` to the function that builds it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway_image.firmware.config import ConnectorConfig
from gateway_image.firmware.connectors import (
    gpio,
    modbus_rtu,
    modbus_tcp,
    mqtt_in,
    opcua,
    serial_line,
)
from gateway_image.firmware.connectors.base import PollingConnector, StreamingConnector

Connector = PollingConnector | StreamingConnector

# One line per connector type; the config union in config/gateway.py lists the same types.
BUILDERS: dict[str, Callable[[Any], Connector]] = {
    "modbus_tcp": modbus_tcp.build,
    "opcua": opcua.build,
    "mqtt_in": mqtt_in.build,
    "modbus_rtu": modbus_rtu.build,
    "serial_line": serial_line.build,
    "gpio": gpio.build,
}


def build_connector(config: ConnectorConfig) -> Connector:
    """Build (without any I/O) the connector for one entry of `connectors:`."""
    try:
        builder = BUILDERS[config.type]
    except KeyError:
        raise ValueError(
            f"connector {config.name}: no implementation registered for type {config.type!r}"
        ) from None
    return builder(config)

"""Gateway config models, validated from one YAML file per gateway (see GATEWAY_CONFIG.md)."""

from factory_common.mqtt_settings import TlsConfig
from gateway_image.firmware.config.gateway import (
    BufferConfig,
    ConnectorConfig,
    GatewayConfig,
    GatewayInfo,
    MqttConfig,
    load_gateway_config,
    parse_gateway_config,
    parse_size,
)

__all__ = [
    "BufferConfig",
    "ConnectorConfig",
    "GatewayConfig",
    "GatewayInfo",
    "MqttConfig",
    "TlsConfig",
    "load_gateway_config",
    "parse_gateway_config",
    "parse_size",
]

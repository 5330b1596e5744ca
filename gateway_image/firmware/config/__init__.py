"""Gateway config models, validated from one YAML file per gateway (see GATEWAY_CONFIG.md)."""

from gateway_image.firmware.config.gateway import (
    BufferConfig,
    ConnectorConfig,
    GatewayConfig,
    GatewayInfo,
    MqttConfig,
    TlsConfig,
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

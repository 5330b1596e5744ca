"""Gateway firmware: device connectors, the durable buffer and the MQTT uplink."""

__version__ = "0.1.0"

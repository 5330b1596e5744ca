"""The uplink's paho client as the gateway config describes it: protocol, TLS, login, backoff."""

from __future__ import annotations

import importlib.metadata

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from factory_common.mqtt_settings import apply_login_and_tls
from gateway_image.firmware.config import MqttConfig

BACKOFF_MIN = 1.0  # seconds before the first reconnect attempt (then doubled per failure)
BACKOFF_MAX = 30.0
PROTOCOLS = {"5": MQTTProtocolVersion.MQTTv5, "3.1.1": MQTTProtocolVersion.MQTTv311}


def firmware_version() -> str:
    try:
        return importlib.metadata.version("factory-edge")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def build_client(client_id: str, cfg: MqttConfig, will_topic: str, will: bytes) -> mqtt.Client:
    """A client with everything but the callbacks; the last will is a retained status."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=PROTOCOLS[cfg.protocol]
    )
    client.connect_timeout = 5.0
    # Our own window bounds the batches; leave paho room for status and acks too.
    client.max_inflight_messages_set(cfg.inflight_batches + 8)
    # paho sleeps fractional seconds though its hints say int.
    client.reconnect_delay_set(BACKOFF_MIN, BACKOFF_MAX)  # type: ignore[arg-type]
    apply_login_and_tls(client, cfg)
    client.will_set(will_topic, will, qos=1, retain=True)
    return client

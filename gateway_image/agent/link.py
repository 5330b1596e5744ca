"""The agent's MQTT side: reads its gateway's status and update requests, publishes its state.

It connects with the gateway's own identity (the gateway config's broker and TLS settings)
under the client id `<gateway>:agent` (the shipped broker admits a certificate only under
`<CN>` or `<CN>:<suffix>`, deploy/mosquitto/clientid-binding). Requests are written to the
agent's request folder before paho acknowledges them (QoS 1, persistent session), so a request
the broker handed over survives a power cut. Connection trouble never stops the agent: updates
asked for over SSH still work, and without statuses a trial simply is not healthy and returns.
"""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from factory_common import wire
from factory_common.logs import get_logger
from factory_common.mqtt_settings import BrokerConfig, apply_login_and_tls
from gateway_image.agent.requests import spool

KEEP_STATUSES = 200


class AgentLink:
    def __init__(self, gateway: str, broker: BrokerConfig, requests: Path) -> None:
        self.gateway = gateway
        self.requests = requests
        self.statuses: deque[wire.GatewayStatus] = deque(maxlen=KEEP_STATUSES)
        self.lock = threading.Lock()
        self.log = get_logger(component="agent-link", gateway=gateway)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{gateway}:agent",
            protocol=mqtt.MQTTv5,
        )
        apply_login_and_tls(self.client, broker)
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.broker = broker

    def start(self) -> None:
        clean = mqtt.MQTT_CLEAN_START_FIRST_ONLY
        props = mqtt.Properties(mqtt.PacketTypes.CONNECT)
        props.SessionExpiryInterval = 7 * 24 * 3600  # keep requests queued across a reboot
        self.client.connect_async(
            self.broker.host,
            self.broker.port,
            self.broker.keepalive,
            clean_start=clean,
            properties=props,
        )
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, state: wire.UpdateState) -> None:
        self.client.publish(wire.update_topic(self.gateway), wire.encode(state), qos=1, retain=True)

    def recent_statuses(self) -> list[wire.GatewayStatus]:
        with self.lock:
            return list(self.statuses)

    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, rc: object, _p: object
    ) -> None:
        client.subscribe(
            [(wire.status_topic(self.gateway), 1), (wire.update_request_topic(self.gateway), 1)]
        )
        self.log.info("agent_connected", code=str(rc))

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            if message.topic == wire.status_topic(self.gateway):
                status = wire.decode(message.payload, wire.GatewayStatus)
                with self.lock:
                    self.statuses.append(status)
            else:
                request = wire.decode(message.payload, wire.UpdateRequest)
                if request.gateway != self.gateway:
                    raise wire.WireError(f"request for {request.gateway}, this is {self.gateway}")
                spool(self.requests, request)
        except wire.WireError as exc:
            self.log.warning("agent_message_refused", topic=message.topic, error=str(exc))

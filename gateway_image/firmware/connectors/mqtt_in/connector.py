"""MQTT-in connector: Wi-Fi sensors publish JSON to a broker; topic patterns and paths map to tags.

paho-mqtt runs its network thread (loop_start); every paho callback is bridged into asyncio
through one function, `_post`, with loop.call_soon_threadsafe, and everything else happens
on the event loop. paho's own reconnect is off: a lost connection ends run() with
ConnectorError and the runner reconnects with its back-off, as for every other connector.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from factory_common.logs import get_logger
from factory_common.mqtt_settings import apply_login_and_tls
from factory_common.wire import Reading, now_ns
from gateway_image.firmware.connectors.base import ConnectorError, Emit
from gateway_image.firmware.connectors.mqtt_in.config import MqttInConfig
from gateway_image.firmware.connectors.mqtt_in.mapping import (
    CompiledSubscription,
    decode_payload,
    map_message,
)

# Messages waiting for the sink. Beyond this the sensors outrun the gateway: further
# messages are dropped and counted as `overflow` instead of growing memory on a Pi.
_QUEUE_MAX: Final = 10_000
_BATCH_MAX: Final = 500


@dataclass(frozen=True)
class _Message:
    topic: str
    payload: bytes
    received_ns: int


@dataclass(frozen=True)
class _Event:
    kind: str  # connect | subscribe | disconnect
    failed: bool
    detail: str


class MqttInConnector:
    """StreamingConnector: subscribe, map every message, emit its readings."""

    def __init__(self, config: MqttInConfig) -> None:
        self.name = config.name
        self.config = config
        self.subscriptions = [CompiledSubscription.of(s) for s in config.subscriptions]
        # messages, readings; errors by kind: not_json, missing_path, bad_device,
        # not_scalar, bad_timestamp, unmatched, overflow.
        self.counters: Counter[str] = Counter()
        self._logged: set[tuple[str, str]] = set()
        self._log = get_logger(connector=config.name, broker=f"{config.host}:{config.port}")

    def _client(self) -> mqtt.Client:
        """Build the paho client (reads TLS files: call it off the event loop)."""
        config = self.config
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=config.client_id or f"{config.name}-{uuid.uuid4().hex[:12]}",
            clean_session=True,
            reconnect_on_failure=False,
        )
        apply_login_and_tls(client, config)
        return client

    async def run(self, emit: Emit) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[_Message | _Event] = asyncio.Queue(_QUEUE_MAX)

        def offer(item: _Message | _Event) -> None:  # runs on the event loop
            if queue.full() and isinstance(item, _Message):
                self.counters["overflow"] += 1
                return
            queue.put_nowait(item)

        def post(item: _Message | _Event) -> None:  # the one bridge from paho's thread
            loop.call_soon_threadsafe(offer, item)

        try:
            client = await asyncio.to_thread(self._client)
        except (OSError, ValueError) as exc:
            raise ConnectorError(f"cannot set up TLS for {self.config.host}: {exc}") from None
        self._wire_callbacks(client, post)
        try:
            client.connect_async(self.config.host, self.config.port, self.config.keepalive)
            client.loop_start()
            await self._handshake(client, queue)
            await self._consume(queue, emit)
        finally:
            await asyncio.to_thread(self._stop, client)

    @staticmethod
    def _wire_callbacks(client: mqtt.Client, post: Any) -> None:
        def on_connect(c: Any, u: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
            post(_Event("connect", reason.is_failure, str(reason)))

        def on_connect_fail(c: Any, u: Any) -> None:
            post(_Event("connect", True, "refused, unreachable, or the TLS handshake failed"))

        def on_subscribe(c: Any, u: Any, mid: int, reasons: list[ReasonCode], props: Any) -> None:
            bad = [str(r) for r in reasons if r.is_failure]
            post(_Event("subscribe", bool(bad), ", ".join(bad)))

        def on_disconnect(c: Any, u: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
            post(_Event("disconnect", True, str(reason)))

        def on_message(c: Any, u: Any, message: mqtt.MQTTMessage) -> None:
            # Stamp on arrival: the gateway time of a reading is when the broker delivered it.
            post(_Message(message.topic, bytes(message.payload), now_ns()))

        client.on_connect = on_connect
        client.on_connect_fail = on_connect_fail
        client.on_subscribe = on_subscribe
        client.on_disconnect = on_disconnect
        client.on_message = on_message

    @staticmethod
    def _stop(client: mqtt.Client) -> None:
        client.disconnect()
        client.loop_stop()  # joins paho's thread: hence off the event loop

    async def _handshake(
        self, client: mqtt.Client, queue: asyncio.Queue[_Message | _Event]
    ) -> None:
        """Wait for CONNACK, then SUBACK of every topic, within the configured timeout."""
        where = f"{self.config.host}:{self.config.port}"
        try:
            async with asyncio.timeout(self.config.timeout):
                event = await self._next_event(queue)
                if event.kind != "connect" or event.failed:
                    raise ConnectorError(
                        f"cannot connect to broker {where}: {event.detail}; check host, port, "
                        "credentials and TLS settings"
                    )
                result, _ = client.subscribe([(s.topic, s.qos) for s in self.subscriptions])
                if result != mqtt.MQTT_ERR_SUCCESS:
                    raise ConnectorError(
                        f"subscribing at {where} failed: {mqtt.error_string(result)}"
                    )
                event = await self._next_event(queue)
                if event.kind != "subscribe" or event.failed:
                    raise ConnectorError(
                        f"broker {where} refused a subscription ({event.detail}): check the "
                        "topics and the broker's ACL for this user"
                    )
        except TimeoutError:
            raise ConnectorError(
                f"broker {where} did not answer within {self.config.timeout}s"
            ) from None
        self._log.info("subscribed", topics=[s.topic for s in self.subscriptions])

    @staticmethod
    async def _next_event(queue: asyncio.Queue[_Message | _Event]) -> _Event:
        while True:
            item = await queue.get()
            if isinstance(item, _Event):
                return item  # messages cannot arrive before SUBACK; nothing is lost here

    async def _consume(self, queue: asyncio.Queue[_Message | _Event], emit: Emit) -> None:
        while True:
            batch = [await queue.get()]
            while not queue.empty() and len(batch) < _BATCH_MAX:
                batch.append(queue.get_nowait())
            readings: list[Reading] = []
            for item in batch:
                if isinstance(item, _Event):
                    if item.kind == "disconnect":
                        if readings:
                            await emit(readings)
                        raise ConnectorError(
                            f"lost the broker {self.config.host}:{self.config.port} "
                            f"({item.detail}); reconnecting"
                        )
                    continue
                readings += self._map(item)
            if readings:
                await emit(readings)

    def _map(self, message: _Message) -> list[Reading]:
        self.counters["messages"] += 1
        matching = [s for s in self.subscriptions if mqtt.topic_matches_sub(s.topic, message.topic)]
        if not matching:
            self._count("unmatched", message.topic, "no subscription matches the topic")
            return []
        try:
            document = decode_payload(message.payload)
        except ValueError as exc:
            self._count("not_json", message.topic, str(exc))
            return []
        readings: list[Reading] = []
        for subscription in matching:
            errors: Counter[str] = Counter()
            readings += map_message(
                subscription, message.topic, document, message.received_ns, errors
            )
            for kind, count in errors.items():
                self._count(
                    kind, message.topic, f"{count} mapping(s) of {subscription.topic}", count
                )
        self.counters["readings"] += len(readings)
        return readings

    def _count(self, kind: str, topic: str, detail: str, count: int = 1) -> None:
        """Count every bad message; log the first of each kind per topic, not every one."""
        self.counters[kind] += count
        if (kind, topic) not in self._logged and len(self._logged) < 1000:
            self._logged.add((kind, topic))
            self._log.warning("mqtt_in_bad_message", kind=kind, topic=topic, detail=detail[:200])


def build(config: MqttInConfig) -> MqttInConnector:
    return MqttInConnector(config)

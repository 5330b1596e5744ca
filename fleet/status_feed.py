"""The fleet's MQTT connection: every retained status and receipt in one wildcard subscription.

One subscription per kind brings every gateway's retained message at once, so 1,000 statuses
arrive in one burst instead of 1,000 round trips. paho's network thread only files messages
into a dict under a lock; readers take snapshots. The same connection publishes update
requests, the one thing the fleet's broker identity may publish.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from factory_common import wire
from factory_common.errors import FleetError
from factory_common.mqtt_settings import BrokerConfig, apply_login_and_tls

KINDS = (wire.TopicKind.STATUS, wire.TopicKind.STORED, wire.TopicKind.UPDATE)
# A status topic no gateway can own (ids start with a letter or digit): subscribed to after
# the wildcards, its SUBACK comes back behind every retained message those brought, which
# marks the end of the burst without guessing from a quiet spell.
SENTINEL = f"{wire.TOPIC_ROOT}/gw/-end-of-retained/status"


class FeedError(FleetError, RuntimeError):
    """The broker could not be reached or refused the fleet; the message says what to check."""


@dataclass(frozen=True)
class Heard:
    """The newest status, receipt and update-agent state heard from one gateway."""

    status: wire.GatewayStatus | None = None
    stored_seq: int = 0
    status_received: float = 0.0
    update: wire.UpdateState | None = None


class StatusFeed:
    def __init__(self, broker: BrokerConfig, client_id: str = "fleet") -> None:
        self.broker = broker
        self._lock = threading.Lock()
        self._heard: dict[str, Heard] = {}
        self._last_message = 0.0
        self._subscribed = threading.Event()
        self._changed = threading.Condition(self._lock)
        self._connected = threading.Event()
        self._refused: str | None = None
        self.malformed = 0
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"{client_id}:{time.time_ns() % 10**9}"
        )
        apply_login_and_tls(self._client, broker)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._sentinel_mid: int | None = None
        self._burst_done = threading.Event()
        self._client.on_message = self._on_message

    # ------------------------------------------------------------ paho thread

    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, rc: object, _p: object
    ) -> None:
        if getattr(rc, "is_failure", False):
            self._refused = str(rc)
            self._connected.set()
            return
        self._connected.set()
        # QoS 0: retained state, sent at once in order (QoS 1 beyond the broker's in-flight
        # window would queue, and the sentinel's SUBACK could overtake it).
        client.subscribe([(wire.subscription(kind), 0) for kind in KINDS])
        self._sentinel_mid = client.subscribe(SENTINEL, 0)[1]

    def _on_subscribe(self, _c: object, _u: object, mid: int, *_rest: object) -> None:
        self._subscribed.set()
        if mid == self._sentinel_mid:
            self._burst_done.set()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            gateway, kind = wire.parse_topic(msg.topic)
            if kind is wire.TopicKind.STATUS:
                status = wire.decode(bytes(msg.payload), wire.GatewayStatus)
            elif kind is wire.TopicKind.STORED:
                stored = wire.decode(bytes(msg.payload), wire.Stored)
            elif kind is wire.TopicKind.UPDATE:
                update = wire.decode(bytes(msg.payload), wire.UpdateState)
            else:
                return
        except wire.WireError:
            self.malformed += 1  # counted and skipped: one bad gateway must not blind the fleet
            return
        now = time.monotonic()
        with self._lock:
            old = self._heard.get(gateway, Heard())
            if kind is wire.TopicKind.STATUS:
                new = replace(old, status=status, status_received=now)
            elif kind is wire.TopicKind.STORED:
                top = max((hi for _, hi in stored.ranges), default=0)
                new = replace(old, stored_seq=max(old.stored_seq, top))
            else:
                new = replace(old, update=update)
            self._heard[gateway] = new
            self._last_message = now
            self._changed.notify_all()

    # ------------------------------------------------------------ caller's thread

    def start(self, timeout: float = 10.0) -> StatusFeed:
        where = f"{self.broker.host}:{self.broker.port}"
        try:
            self._client.connect(self.broker.host, self.broker.port, self.broker.keepalive)
        except OSError as exc:
            raise FeedError(
                f"cannot reach the broker at {where}: {exc}; check broker: in fleet.yaml"
            ) from None
        self._client.loop_start()
        if not self._connected.wait(timeout) or self._refused:
            self.stop()
            raise FeedError(
                f"the broker at {where} did not accept the fleet ({self._refused or 'no answer'}): "
                "check broker.tls in fleet.yaml and that the fleet's certificate is not revoked"
            )
        if not self._subscribed.wait(timeout):
            self.stop()
            raise FeedError(f"the broker at {where} did not confirm the subscription")
        return self

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until every retained status, receipt and update state has arrived."""
        self._burst_done.wait(timeout)

    def wait_for_news(self, since: float, timeout: float) -> None:
        """Block until a message arrives after `since` (monotonic) or `timeout` passes: a
        rollout re-checks its gates as soon as a gateway says something, not on a fixed tick."""
        with self._changed:
            self._changed.wait_for(lambda: self._last_message > since, timeout)

    def snapshot(self) -> dict[str, Heard]:
        with self._lock:
            return dict(self._heard)

    def publish(self, request: wire.UpdateRequest, timeout: float = 10.0) -> None:
        """Publish an update request and wait until the broker has it (PUBACK)."""
        # Not retained: the request id makes a repeat harmless, and a stale retained request
        # must not greet an agent that reconnects after its gateway was rolled back by hand.
        info = self._client.publish(
            wire.update_request_topic(request.gateway), wire.encode(request), qos=1
        )
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise FeedError(
                f"the broker did not acknowledge the update request for {request.gateway}"
            )

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

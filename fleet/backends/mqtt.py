"""The MQTT backend: a retained update request on the gateway's `update` topic, nothing else.

It needs nothing but the broker the fleet already reads statuses from, so it also serves
gateways the fleet cannot reach directly; the agent fetches what the request names.
"""

from __future__ import annotations

from factory_common import wire
from fleet.backends.base import BackendError, Target
from fleet.inventory import GatewayEntry
from fleet.status_feed import FeedError, StatusFeed


class MqttBackend:
    name = "mqtt"

    def __init__(self, feed: StatusFeed, artifact_url: str = "") -> None:
        self.feed = feed
        self.artifact_url = artifact_url  # e.g. http://fleet-host/releases/{file}

    def request(self, gateway: GatewayEntry, target: Target, rollout_id: str) -> None:
        url = ""
        if target.path is not None and self.artifact_url:
            url = self.artifact_url.format(file=target.path.name)
        request = wire.UpdateRequest(
            v=wire.WIRE_VERSION,
            gateway=gateway.id,
            ts=wire.now_ns(),
            rollout=rollout_id,
            kind=target.kind,
            target=target.value,
            url=url,
            sha256=target.sha256,
            downgrade=target.downgrade,
        )
        try:
            self.feed.publish(request)
        except FeedError as exc:
            raise BackendError(f"gateway {gateway.id}: {exc}; check the broker") from None

    def problems(self, gateways: list[GatewayEntry]) -> dict[str, str]:
        return {}

"""The MQTT backend: a retained update request on the gateway's `update` topic, nothing else.

It needs nothing but the broker the fleet already reads statuses from, so it also serves
gateways the fleet cannot reach directly; the agent fetches what the request names.
"""

from __future__ import annotations

from fleet.backends.base import BackendError, Target, update_request
from fleet.inventory import GatewayEntry
from fleet.status_feed import FeedError, StatusFeed


class MqttBackend:
    name = "mqtt"

    def __init__(self, feed: StatusFeed, operator: str, artifact_url: str = "") -> None:
        self.feed = feed
        self.operator = operator
        self.artifact_url = artifact_url  # e.g. http://fleet-host/releases/{file}

    def request(self, gateway: GatewayEntry, target: Target, request_id: str) -> None:
        artifact = ""
        if target.path is not None and target.kind == "release":
            name = target.path.name
            artifact = self.artifact_url.format(file=name) if self.artifact_url else name
        elif target.kind == "release":
            artifact = target.value  # already on the gateway (e.g. the image's first slot)
        request = update_request(gateway.id, target, request_id, self.operator, artifact)
        try:
            self.feed.publish(request)
        except FeedError as exc:
            raise BackendError(f"gateway {gateway.id}: {exc}; check the broker") from None

    def problems(self, gateways: list[GatewayEntry]) -> dict[str, str]:
        return {}

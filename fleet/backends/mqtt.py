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

    def __init__(self, feed: StatusFeed, operator: str, artifact_url: str, staged_dir: str) -> None:
        self.feed = feed
        self.operator = operator
        self.artifact_url = artifact_url  # e.g. http://fleet-host/releases/{file}
        self.staged_dir = staged_dir.rstrip("/")

    def request(self, gateway: GatewayEntry, target: Target, request_id: str) -> None:
        artifact = ""
        if target.kind == "release" and target.path is not None:
            name = target.path.name
            url = self.artifact_url
            artifact = url.format(file=name) if url else f"{self.staged_dir}/{name}"
        elif target.kind == "release":
            artifact = target.value  # no file in releases/: the agent knows it (e.g. slot A)
        request = update_request(gateway.id, target, request_id, self.operator, artifact)
        try:
            self.feed.publish(request)
        except FeedError as exc:
            raise BackendError(f"gateway {gateway.id}: {exc}; check the broker") from None

    def problems(self, gateways: list[GatewayEntry]) -> dict[str, str]:
        return {}

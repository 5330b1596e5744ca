"""What the MQTT backend asks an agent for: the artifact where the agent can find it."""

from __future__ import annotations

from pathlib import Path

from factory_common import wire
from fleet.backends.base import Target
from fleet.backends.mqtt import MqttBackend
from fleet.inventory import GatewayEntry


class Published:
    """Stands in for the broker connection: keeps what would be published."""

    def __init__(self) -> None:
        self.requests: list[wire.UpdateRequest] = []

    def publish(self, request: wire.UpdateRequest) -> None:
        # Through the wire codec, as the agent would receive it.
        self.requests.append(wire.decode(wire.encode(request), wire.UpdateRequest))


GW = GatewayEntry(id="gw-01")
ARTIFACT = Target(
    "release",
    "1.1.0",
    Path("/fleet/releases/factory-edge-1.1.0.release.tar"),
    "ab" * 32,
    downgrade=True,
    health_timeout_s=90,
)


def test_release_from_a_url_or_from_where_it_was_staged() -> None:
    feed = Published()
    MqttBackend(feed, "alice", "http://fleet:8000/releases/{file}", "/in").request(  # type: ignore[arg-type]
        GW, ARTIFACT, "r1/gw-01/release"
    )
    MqttBackend(feed, "alice", "", "/var/lib/in/").request(GW, ARTIFACT, "r1/gw-01/revert")  # type: ignore[arg-type]
    first, second = feed.requests
    assert first.artifact == "http://fleet:8000/releases/factory-edge-1.1.0.release.tar"
    assert second.artifact == "/var/lib/in/factory-edge-1.1.0.release.tar"
    assert (first.id, first.action, first.release, first.sha256) == (
        "r1/gw-01/release",
        wire.UpdateAction.INSTALL,
        "1.1.0",
        "ab" * 32,
    )
    assert first.downgrade and first.health_timeout_s == 90 and first.issued_by == "alice"


def test_config_carries_the_whole_file(tmp_path: Path) -> None:
    config = tmp_path / "gw-01-abc.yaml"
    config.write_text("gateway: {id: gw-01}\n")
    feed = Published()
    MqttBackend(feed, "bob", "", "/in").request(  # type: ignore[arg-type]
        GW, Target("config", "abc", config, "cd" * 32), "r2/gw-01/config"
    )
    [request] = feed.requests
    assert (request.action, request.config) == (wire.UpdateAction.CONFIG, config.read_text())

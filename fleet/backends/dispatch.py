"""Route each gateway to the backend its inventory entry names (ssh, balena or mqtt)."""

from __future__ import annotations

from collections.abc import Callable

from fleet.backends.base import Ask, Backend, BackendError, Target, send_parallel
from fleet.backends.mqtt import MqttBackend
from fleet.inventory import GatewayEntry, Inventory
from fleet.status_feed import StatusFeed


class Dispatch:
    name = "dispatch"

    def __init__(self, factories: dict[str, Callable[[], Backend]]) -> None:
        self._factories = factories
        self._made: dict[str, Backend] = {}

    def _for(self, gateway: GatewayEntry) -> Backend:
        if gateway.backend not in self._made:
            factory = self._factories.get(gateway.backend)
            if factory is None:
                raise BackendError(
                    f"gateway {gateway.id}: backend {gateway.backend!r} is not configured in "
                    "fleet.yaml (backends:)"
                )
            self._made[gateway.backend] = factory()
        return self._made[gateway.backend]

    def request(self, gateway: GatewayEntry, target: Target, request_id: str) -> None:
        self._for(gateway).request(gateway, target, request_id)

    def request_many(self, asks: list[Ask], workers: int) -> dict[str, str]:
        """Each backend's batch at once (balena pins a whole wave in one call), the rest in
        parallel; a backend that cannot even be built fails its gateways, not the wave."""
        groups: dict[str, list[Ask]] = {}
        for ask in asks:
            groups.setdefault(ask.gateway.backend, []).append(ask)
        errors: dict[str, str] = {}
        for group in groups.values():
            try:
                backend = self._for(group[0].gateway)
            except BackendError as exc:
                errors.update({a.gateway.id: str(exc) for a in group})
                continue
            many = getattr(backend, "request_many", None)
            errors.update(many(group) if many else send_parallel(backend, group, workers))
        return errors

    def problems(self, gateways: list[GatewayEntry]) -> dict[str, str]:
        found: dict[str, str] = {}
        by_backend: dict[str, list[GatewayEntry]] = {}
        for gw in gateways:
            by_backend.setdefault(gw.backend, []).append(gw)
        for group in by_backend.values():
            try:
                found.update(self._for(group[0]).problems(group))
            except BackendError as exc:
                found.update({g.id: str(exc) for g in group})
        return found


def backends_for(inventory: Inventory, feed: StatusFeed, operator: str) -> Dispatch:
    """Every backend fleet.yaml configures, each built on first use (fabric and balena-sdk
    take a while to import, and a rollout over MQTT needs neither)."""

    def ssh() -> Backend:
        from fleet.backends.ssh import SshBackend

        return SshBackend(inventory, operator)

    def balena() -> Backend:
        from fleet.backends.balena import BalenaBackend

        if inventory.config.backends.balena is None:
            raise BackendError("no backends.balena in fleet.yaml: name the balena fleet there")
        return BalenaBackend(inventory, feed)

    backends = inventory.config.backends

    def mqtt() -> Backend:
        return MqttBackend(feed, operator, backends.mqtt.artifact_url, backends.ssh.incoming_dir)

    return Dispatch({"mqtt": mqtt, "ssh": ssh, "balena": balena})

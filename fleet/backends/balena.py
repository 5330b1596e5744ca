"""The balena backend (balena-sdk 17.x): gateways are devices of a balena fleet, pinned per wave.

A wave is one batched `device.pin_to_release` call (the SDK groups devices by fleet and chunks
the ids itself). balena never rolls a fleet release back on its own, so a revert pins the last
good release again. A config push sets two device environment variables: the config's hash,
and its text, which the container's entrypoint writes out and runs with. Health comes from the
gateway's own MQTT status (the gate) plus what balena knows of the device (`problems`:
offline, not found).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from typing import Any

import requests
from balena import Balena
from balena.exceptions import BalenaException

from fleet.backends.base import Ask, BackendError, Target
from fleet.inventory import GatewayEntry, Inventory
from fleet.rollout.targets import history_file
from fleet.status_feed import StatusFeed

# A config push sets both: the hash names which config (what the gate and the audit compare),
# the base64 text is what the container's entrypoint writes out and runs with
# (gateway_image/os/container-entrypoint.sh).
CONFIG_ENV = "FACTORY_GATEWAY_CONFIG"
CONFIG_TEXT_ENV = "FACTORY_GATEWAY_CONFIG_B64"


class BalenaBackend:
    name = "balena"

    def __init__(self, inventory: Inventory, feed: StatusFeed | None = None) -> None:
        settings = inventory.config.backends.balena
        if settings is None:
            raise BackendError("no backends.balena in fleet.yaml: name the balena fleet there")
        self.fleet = settings.fleet
        data = settings.data_directory
        if data is not None and not data.is_absolute():
            data = inventory.layout.root / data
        # balena-sdk reads its API endpoint from balena.cfg in this directory, not from here.
        self.sdk = Balena({"data_directory": str(data)} if data is not None else None)
        self.key_env = settings.api_key_env
        token = os.environ.get(settings.api_key_env)
        if token:
            self.sdk.auth.login_with_token(token)
        self.feed = feed
        self.layout = inventory.layout
        self._releases: dict[str, dict[str, Any]] = {}

    def _release(self, version: str) -> dict[str, Any]:
        if version not in self._releases:
            found = self.sdk.models.release.get_all_by_application(
                self.fleet,
                {
                    "$select": ["id", "commit", "raw_version"],
                    "$filter": {"raw_version": version, "status": "success"},
                },
            )
            if not found:
                raise BackendError(
                    f"balena fleet {self.fleet} has no successful release {version}: "
                    "push it with `balena push` first"
                )
            self._releases[version] = found[0]
        return self._releases[version]

    def _apply(self, target: Target, asks: Sequence[Ask]) -> None:
        if target.kind == "release":
            commit = self._release(target.value)["commit"]
            self.sdk.models.device.pin_to_release([a.gateway.address for a in asks], commit)
            return
        for ask in asks:  # each gateway's copy of a config differs in its own gateway.id
            copy = history_file(self.layout, ask.gateway.id, target.value)
            try:
                text = base64.b64encode(copy.read_bytes()).decode()
            except OSError as exc:
                raise BackendError(f"{copy}: the pushed config is gone ({exc.strerror})") from None
            uuid = ask.gateway.address
            self.sdk.models.device.env_var.set(uuid, CONFIG_TEXT_ENV, text)
            self.sdk.models.device.env_var.set(uuid, CONFIG_ENV, target.value)

    def request_many(self, asks: list[Ask]) -> dict[str, str]:
        """One batched call per target (a wave asks for one; reverts may differ per gateway)."""
        groups: dict[tuple[str, str], list[Ask]] = {}
        for ask in asks:
            groups.setdefault((ask.target.kind, ask.target.value), []).append(ask)
        errors: dict[str, str] = {}
        for group in groups.values():
            ids = [a.gateway.id for a in group]
            try:
                self._apply(group[0].target, group)
                errors.update(dict.fromkeys(ids, ""))
            except (BalenaException, requests.RequestException, BackendError) as exc:
                message = (
                    f"balena could not update {', '.join(ids)}: {exc}; check the devices' "
                    f"UUIDs (fleet devices show) and the API key in ${self.key_env}"
                )
                errors.update(dict.fromkeys(ids, message))
        return errors

    def request(self, gateway: GatewayEntry, target: Target, request_id: str) -> None:
        error = self.request_many([Ask(gateway, target, request_id)])[gateway.id]
        if error:
            raise BackendError(error)

    def problems(self, gateways: list[GatewayEntry]) -> dict[str, str]:
        """Devices balena reports offline, or that are not in the fleet at all."""
        uuids = {g.address: g.id for g in gateways}
        try:
            devices = self.sdk.models.device.get_all_by_application(
                self.fleet,
                {"$select": ["uuid", "is_online"], "$filter": {"uuid": {"$in": list(uuids)}}},
            )
        except (BalenaException, requests.RequestException) as exc:
            return dict.fromkeys(uuids.values(), f"balena API unreachable: {exc}")
        seen = {d["uuid"]: d for d in devices}
        found = {}
        for uuid, gw in uuids.items():
            if uuid not in seen:
                found[gw] = f"no device {uuid} in balena fleet {self.fleet}"
            elif not seen[uuid]["is_online"]:
                found[gw] = "balena reports the device offline"
        return found

    def devices_with_tags(self) -> list[tuple[str, str, dict[str, str]]]:
        """(device name, UUID, tags) of every device in the fleet: tags are the labels."""
        try:
            devices = self.sdk.models.device.get_all_by_application(
                self.fleet, {"$select": ["id", "uuid", "device_name"]}
            )
            ids = [d["id"] for d in devices]
            tags = (
                self.sdk.models.device.tags.get_all(
                    {"$select": ["tag_key", "value", "device"], "$filter": {"device": {"$in": ids}}}
                )
                if ids
                else []
            )
        except (BalenaException, requests.RequestException) as exc:
            raise BackendError(f"balena fleet {self.fleet}: {exc}; check ${self.key_env}") from None
        by_device: dict[int, dict[str, str]] = {}
        for tag in tags:
            by_device.setdefault(tag["device"]["__id"], {})[tag["tag_key"]] = tag["value"]
        return [(d["device_name"], d["uuid"], by_device.get(d["id"], {})) for d in devices]

"""The contract every backend meets: ask a gateway to go to a target, or back to the previous one.

A backend only asks; the gateway's update agent decides and reports, and the health gate
reads those reports. Every error a backend raises is a BackendError whose message says what
to check next, and none may take longer than the backend's own per-host deadline.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from factory_common import wire
from factory_common.errors import FleetError
from fleet.inventory import GatewayEntry


class BackendError(FleetError, RuntimeError):
    """The gateway could not be asked; the message names it and what to check."""


@dataclass(frozen=True)
class Target:
    kind: str  # "release" or "config"
    value: str  # the release version, or the config's sha256
    path: Path | None = None  # the artifact or config file to deliver, when the backend ships it
    sha256: str = ""
    downgrade: bool = False
    health_timeout_s: float = 120.0  # how long the agent gives it to turn healthy


def update_request(
    gateway: str, target: Target, request_id: str, operator: str, artifact: str = ""
) -> wire.UpdateRequest:
    """The wire request for `target`; `artifact` is where the agent finds the file."""
    config = ""
    if target.kind == "config":
        assert target.path is not None
        config = target.path.read_text(encoding="utf-8")
    return wire.UpdateRequest(
        v=wire.WIRE_VERSION,
        id=request_id,
        gateway=gateway,
        action=wire.UpdateAction.CONFIG if target.kind == "config" else wire.UpdateAction.INSTALL,
        artifact=artifact,
        release=target.value if target.kind == "release" else "",
        sha256=target.sha256,
        downgrade=target.downgrade,
        config=config,
        health_timeout_s=target.health_timeout_s,
        issued_at=wire.now_ns(),
        issued_by=operator,
    )


@dataclass(frozen=True)
class Ask:
    """One request for one gateway."""

    gateway: GatewayEntry
    target: Target
    request_id: str


def send_parallel(backend: Backend, asks: list[Ask], workers: int) -> dict[str, str]:
    """Each ask through `backend.request`, at most `workers` at once; gateway -> error or ''."""

    def one(ask: Ask) -> str:
        try:
            backend.request(ask.gateway, ask.target, ask.request_id)
        except BackendError as exc:
            return str(exc)
        return ""

    if not asks:
        return {}
    with ThreadPoolExecutor(max(1, min(workers, len(asks)))) as pool:
        return dict(zip([a.gateway.id for a in asks], pool.map(one, asks), strict=True))


class Backend(Protocol):
    name: str

    def request(self, gateway: GatewayEntry, target: Target, request_id: str) -> None:
        """Ask the gateway to go to `target`; the same `request_id` twice is harmless."""
        ...

    def problems(self, gateways: list[GatewayEntry]) -> dict[str, str]:
        """What the backend itself knows is wrong with these gateways (empty: nothing)."""
        ...

"""The contract every backend meets: ask a gateway to go to a target, or back to the previous one.

A backend only asks; the gateway's update agent decides and reports, and the health gate
reads those reports. Every error a backend raises is a BackendError whose message says what
to check next, and none may take longer than the backend's own per-host deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from fleet.inventory import GatewayEntry


class BackendError(RuntimeError):
    """The gateway could not be asked; the message names it and what to check."""


@dataclass(frozen=True)
class Target:
    kind: str  # "release" or "config"
    value: str  # the release version, or the config's sha256
    path: Path | None = None  # the artifact or config file to deliver, when the backend ships it
    sha256: str = ""
    downgrade: bool = False


class Backend(Protocol):
    name: str

    def request(self, gateway: GatewayEntry, target: Target, rollout_id: str) -> None:
        """Ask the gateway to go to `target`; asking twice for the same target is harmless."""
        ...

    def problems(self, gateways: list[GatewayEntry]) -> dict[str, str]:
        """What the backend itself knows is wrong with these gateways (empty: nothing)."""
        ...

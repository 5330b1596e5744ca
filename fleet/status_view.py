"""Merge inventory, retained MQTT status and what a backend knows into one row per gateway: pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fleet.inventory import GatewayEntry
from fleet.status_feed import Heard


@dataclass(frozen=True)
class StatusRow:
    id: str
    known: bool  # in the inventory
    online: bool
    version: str
    desired: str
    uptime_s: float
    buffer_depth: int
    connectors: str  # "up/total"
    dropped: int
    unconfirmed: int
    stored_seq: int
    backend: str
    flags: tuple[str, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, object]:
        return {**self.__dict__, "flags": list(self.flags)}


@dataclass(frozen=True)
class Extra:
    """What the fleet knows besides the status: the backend's word, the certificate's expiry."""

    backend_problem: str = ""
    cert_expires: str = ""  # "2027-01-05" when within the warning period


def _flags(
    entry: GatewayEntry | None,
    heard: Heard | None,
    previous_depth: int | None,
    backlog: int,
    extra: Extra,
) -> tuple[str, ...]:
    if entry is None:
        return ("new",)
    notes = [f"backend: {extra.backend_problem}"] if extra.backend_problem else []
    if extra.cert_expires:
        notes.append(f"certificate expires {extra.cert_expires}")
    status = heard.status if heard else None
    if status is None:
        return ("no status", *notes)
    flags = []
    if not status.online:
        flags.append("offline")
    if entry.desired_release and status.version != entry.desired_release:
        flags.append("behind")
    if sum(status.dropped.values()) or status.unconfirmed:
        flags.append("losing data")
    if previous_depth is not None and status.buffer_depth > max(previous_depth, backlog):
        flags.append("buffer growing")
    elif status.buffer_depth > backlog:
        flags.append("backlog")
    if any(c.state != "up" for c in status.connectors):
        flags.append("connector down")
    return (*flags, *notes)


def status_rows(
    inventory: Mapping[str, GatewayEntry],
    heard: Mapping[str, Heard],
    previous_depths: Mapping[str, int] | None = None,
    backlog: int = 1000,
    extras: Mapping[str, Extra] | None = None,
) -> list[StatusRow]:
    """One row per gateway in the inventory or heard on the broker, sorted by id."""
    rows = []
    for gateway in sorted(set(inventory) | set(heard)):
        entry, seen = inventory.get(gateway), heard.get(gateway)
        status = seen.status if seen else None
        up = sum(c.state == "up" for c in status.connectors) if status else 0
        depth = (previous_depths or {}).get(gateway)
        rows.append(
            StatusRow(
                id=gateway,
                known=entry is not None,
                online=bool(status and status.online),
                version=status.version if status else "",
                desired=(entry.desired_release or "") if entry else "",
                uptime_s=status.uptime_s if status else 0.0,
                buffer_depth=status.buffer_depth if status else 0,
                connectors=f"{up}/{len(status.connectors)}" if status else "",
                dropped=sum(status.dropped.values()) if status else 0,
                unconfirmed=status.unconfirmed if status else 0,
                stored_seq=seen.stored_seq if seen else 0,
                backend=entry.backend if entry else "",
                flags=_flags(entry, seen, depth, backlog, (extras or {}).get(gateway, Extra())),
            )
        )
    return rows

"""Bring a balena fleet's devices into the inventory: device name -> id, tags -> labels."""

from __future__ import annotations

from pydantic import ValidationError

from fleet.backends.balena import BalenaBackend
from fleet.inventory import GatewayEntry, Inventory, save_gateway_entry

BUILTIN = ("site", "line", "board")  # tags with these keys fill the entry's own fields


def sync_balena(inventory: Inventory) -> tuple[list[str], list[str]]:
    """Create or update an entry per device; returns (saved ids, skipped with the reason)."""
    saved, skipped = [], []
    for name, uuid, tags in BalenaBackend(inventory).devices_with_tags():
        old = inventory.gateways.get(name)
        data: dict[str, object] = old.model_dump() if old else {"id": name}
        kept = old.labels if old else {}
        labels = {k: v for k, v in tags.items() if k not in BUILTIN}
        data.update({k: v for k, v in tags.items() if k in BUILTIN})
        data.update(backend="balena", address=uuid, labels={**kept, **labels})
        try:
            entry = GatewayEntry.model_validate(data)
        except ValidationError as exc:
            problem = "; ".join(e["msg"] for e in exc.errors())
            skipped.append(f"{name}: {problem}")
            continue
        if entry != old:
            save_gateway_entry(inventory.layout, entry)
        saved.append(name)
    return saved, skipped

"""After a rollout step settles, write what each gateway now runs back into the inventory."""

from __future__ import annotations

import shutil

from fleet.inventory import Inventory, save_gateway_entry
from fleet.rollout.model import Phase, Rollout
from fleet.rollout.targets import history_file


def sync_inventory(inventory: Inventory, rollout: Rollout) -> None:
    """Idempotent: run at the end of every drive, so a killed CLI's next run catches up."""
    for gw, step in rollout.steps.items():
        entry = inventory.gateways.get(gw)
        if entry is None:
            continue
        if step.phase is Phase.HEALTHY:
            now = rollout.target
        elif step.phase is Phase.REVERTED:
            now = step.previous
        else:
            continue
        if rollout.kind == "release" and entry.current_release != now:
            save_gateway_entry(inventory.layout, entry.model_copy(update={"current_release": now}))
        elif rollout.kind == "config" and entry.config_hash != now:
            source = history_file(inventory.layout, gw, now)
            if source.exists():
                shutil.copyfile(source, inventory.layout.gateway_config(gw))
            save_gateway_entry(inventory.layout, entry.model_copy(update={"config_hash": now}))

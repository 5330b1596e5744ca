"""A fleet directory for tests: fleet.yaml pointing at a test broker, and N gateway entries."""

from __future__ import annotations

from pathlib import Path

import yaml

from fleet.inventory import GatewayEntry, init_fleet_dir, save_gateway_entry
from fleet.layout import FleetLayout


def make_fleet_dir(
    root: Path,
    broker_port: int,
    ids: list[str],
    backend: str = "mqtt",
    extra: dict | None = None,
    labels: dict[str, dict[str, str]] | None = None,
) -> FleetLayout:
    layout = FleetLayout(root)
    init_fleet_dir(layout, "test")
    config = {
        "name": "test",
        "broker": {"host": "127.0.0.1", "port": broker_port},
        "defaults": {"gate_timeout_s": 20, "wave_size": "50%"},
        **(extra or {}),
    }
    layout.fleet_file.write_text(yaml.safe_dump(config))
    for gw in ids:
        entry = GatewayEntry(
            id=gw,
            site="plant2",
            line="anodizing",
            backend=backend,  # type: ignore[arg-type]
            labels=(labels or {}).get(gw, {}),
            current_release="1.0",
        )
        save_gateway_entry(layout, entry)
    return layout

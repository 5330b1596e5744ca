"""The edge's cloud link in one object for app.py: master data, the outbox, sync down and up."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from edge_node.cloud.config import CloudConfig
from edge_node.cloud.outbox import CloudOutbox
from edge_node.cloud.up import SyncUp
from edge_node.masterdata import MasterData
from edge_node.masterdata.sync import SyncDown
from edge_node.store import Store

MASTERDATA_FILE = "masterdata.sqlite"
CLOUD_FILE = "cloud.sqlite"
FOLLOW_INTERVAL = 5.0  # seconds between an API replica's checks of the master-data file


class CloudLink:
    """Always has `masterdata` (served from its file even with no cloud configured) and
    `outbox` (records wait there until a cloud is configured and reachable)."""

    def __init__(
        self, config: CloudConfig | None, edge_id: str, data_dir: Path, store: Store
    ) -> None:
        self.config = config
        self.masterdata = MasterData(data_dir / MASTERDATA_FILE)
        self.outbox = CloudOutbox(data_dir / CLOUD_FILE)
        self.down = SyncDown(config, self.masterdata) if config and config.sync_down else None
        self.up = SyncUp(config, edge_id, store, self.outbox) if config and config.sync_up else None

    async def run(self, sync: bool = True) -> None:
        """Both syncs until cancelled. sync=False (a stateless API replica): only follow the
        master-data file that the syncing process updates."""
        if not sync:
            while True:
                await asyncio.sleep(FOLLOW_INTERVAL)
                await asyncio.to_thread(self.masterdata.refresh)
        if self.up is not None:
            # A defect record or alarm goes up now, not at the next interval; add() may be
            # called from any thread, the Event belongs to this loop.
            loop, wake = asyncio.get_running_loop(), self.up.wake
            self.outbox.on_add = lambda: loop.call_soon_threadsafe(wake.set)
        async with asyncio.TaskGroup() as group:
            if self.down is not None:
                group.create_task(self.down.run(), name="sync-down")
            if self.up is not None:
                group.create_task(self.up.run(), name="sync-up")

    def sync_now(self) -> None:
        for part in (self.down, self.up):
            if part is not None:
                part.wake.set()

    def status(self) -> dict[str, Any]:
        """Both directions for /api/sync and the UI (times epoch ms UTC)."""
        target = None
        if self.config is not None:
            c = self.config
            target = f"{c.user}@{c.host}:{c.port}/{c.database}"
        return {
            "configured": self.config is not None,
            "cloud": target,
            "down": self.masterdata.status(),
            "up": self.up.status() if self.up is not None else None,
            "pending_outbox": self.outbox.pending_count(),
        }

    def close(self) -> None:
        self.masterdata.close()
        self.outbox.close()

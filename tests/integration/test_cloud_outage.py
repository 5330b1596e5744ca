"""Sync up through a cloud outage: records queue on the edge and arrive once it is back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from edge_node.cloud.outbox import CloudOutbox
from edge_node.cloud.up import SyncUp
from edge_node.store import Store
from tests.support.central import cloud_config, create_central
from tests.support.mariadb import MariaDBServer


async def wait_for(condition: Callable[[], object], what: str, seconds: float = 10.0) -> None:
    try:
        async with asyncio.timeout(seconds):
            while not condition():  # noqa: ASYNC110 (polling what another task changes)
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out after {seconds}s waiting for {what}") from None


async def test_defects_queue_through_an_outage(
    mariadb_server: MariaDBServer, tmp_path: Path
) -> None:
    db = mariadb_server.create_database("ees")
    create_central(db, seed=False)
    store = Store(tmp_path / "edge.sqlite")
    outbox = CloudOutbox(tmp_path / "cloud.sqlite")
    config = cloud_config(db, up_interval=0.2, backoff_max=0.4, connect_timeout=1.0)
    sync = SyncUp(config, "edge1", store, outbox)
    task = asyncio.create_task(sync.run())
    try:
        outbox.add("defect", {"product_id": "P-1", "value": 3.1}, "P-1@1")
        await wait_for(lambda: outbox.pending_count() == 0, "the first defect pushed")

        await asyncio.to_thread(mariadb_server.stop)
        outbox.add("defect", {"product_id": "P-2", "value": 3.4}, "P-2@2")
        await wait_for(lambda: sync.status().last_error, "the error in the status")
        assert sync.status().pending_outbox == 1 and sync.status().consecutive_failures >= 1

        await asyncio.to_thread(mariadb_server.start)
        await wait_for(lambda: sync.status().last_error is None, "recovery")
        assert outbox.pending_count() == 0
        rows = db.execute("SELECT product_id, value FROM defects ORDER BY product_id")
        assert rows == [("P-1", 3.1), ("P-2", 3.4)]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        outbox.close()
        store.close()

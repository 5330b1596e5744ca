"""The must-show case: master-data sync with the cloud's MariaDB stopped and restarted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from edge_node.masterdata import MasterData
from edge_node.masterdata.sync import SyncDown
from tests.support.central import GW, cloud_config, cloud_version, create_central
from tests.support.mariadb import MariaDBServer


async def wait_for(condition: Callable[[], object], what: str, seconds: float = 10.0) -> None:
    try:
        async with asyncio.timeout(seconds):
            while not condition():  # noqa: ASYNC110 (polling what another task changes)
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out after {seconds}s waiting for {what}") from None


async def test_edge_serves_last_good_copy_through_an_outage_and_catches_up(
    mariadb_server: MariaDBServer, tmp_path: Path
) -> None:
    db = mariadb_server.create_database("ees")
    create_central(db)
    masterdata = MasterData(tmp_path / "masterdata.sqlite")
    config = cloud_config(db, down_interval=0.2, backoff_max=0.4, connect_timeout=1.0)
    task = asyncio.create_task(SyncDown(config, masterdata).run())
    try:
        await wait_for(lambda: masterdata.version() == cloud_version(db), "first sync")
        synced = masterdata.version()

        await asyncio.to_thread(mariadb_server.stop)
        await wait_for(lambda: masterdata.status().last_error is not None, "the error")
        status = masterdata.status()
        assert "Can't connect" in status.last_error or "refused" in status.last_error
        assert status.version == synced and status.consecutive_failures >= 1
        # The last good copy keeps serving: limits, units, recipes.
        assert masterdata.limits(f"{GW}/tank1/temperature").ucl == 22.5
        assert masterdata.unit(f"{GW}/tank1/temperature") == "degC"
        assert masterdata.recipe_for_product("P-100").id == "R-black"
        await asyncio.sleep(0.5)  # a few more failed attempts change nothing
        assert masterdata.version() == synced and masterdata.status().consecutive_failures >= 2

        await asyncio.to_thread(mariadb_server.start)
        db.execute("UPDATE control_limits SET ucl = 22.0 WHERE tag = 'temperature'")
        db.execute("INSERT INTO products (id, recipe_id) VALUES ('P-300', 'R-silver')")
        await wait_for(lambda: masterdata.version() == cloud_version(db), "catch-up")
        assert masterdata.status().ok and masterdata.status().consecutive_failures == 0
        assert masterdata.limits(f"{GW}/tank1/temperature").ucl == 22.0
        assert masterdata.recipe_for_product("P-300").id == "R-silver"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        masterdata.close()

    # An edge restarted while the cloud is down starts from its file, not from nothing.
    mariadb_server.stop()
    reopened = MasterData(tmp_path / "masterdata.sqlite")
    assert reopened.limits(f"{GW}/tank1/temperature").ucl == 22.0
    assert reopened.version() == masterdata.version()
    reopened.close()

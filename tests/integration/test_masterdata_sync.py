"""Sync down from a real MariaDB (a fresh database per test): initial, incremental, deletions."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_node.cloud.mysql import CloudError
from edge_node.masterdata import ChangeSet, MasterData
from edge_node.masterdata.sync import SyncDown
from tests.support.central import GW, cloud_config, cloud_version, create_central
from tests.support.mariadb import Database


@pytest.fixture
def central(mariadb_db: Database) -> Database:
    create_central(mariadb_db)
    return mariadb_db


@pytest.fixture
def masterdata(tmp_path: Path) -> MasterData:
    md = MasterData(tmp_path / "masterdata.sqlite")
    yield md
    md.close()


async def test_initial_sync_copies_everything(central: Database, masterdata: MasterData) -> None:
    changes = await SyncDown(cloud_config(central), masterdata).sync_once()
    assert changes.full
    assert masterdata.version() == cloud_version(central) > 0
    assert {e.id for e in masterdata.equipment()} == {"tank1", "tank2"}
    assert masterdata.unit(f"{GW}/tank1/temperature") == "degC"
    assert masterdata.tag(f"{GW}/qc/colour").description == "colour difference"
    limits = masterdata.limits(f"{GW}/tank1/temperature")
    assert (limits.lcl, limits.ucl, limits.mean, limits.sigma, limits.version) == (
        19.5, 22.5, 21.0, 0.5, 1,
    )  # fmt: skip
    assert masterdata.limits(f"{GW}/tank1/current") is None
    recipe = masterdata.recipe_for_product("P-100")
    assert recipe is not None and recipe.id == "R-black"
    assert recipe.parameters["current_density"].value == 1.5
    assert recipe.as_dict()["parameters"]["time"] == {"value": 2400.0, "unit": "s"}
    assert masterdata.recipe_for_product("P-unknown") is None
    assert changes.limits_changed == {f"{GW}/tank1/temperature", f"{GW}/qc/colour"}
    assert masterdata.status().ok and masterdata.status().last_success is not None


async def test_incremental_sync_moves_only_changed_rows(
    central: Database, masterdata: MasterData
) -> None:
    sync = SyncDown(cloud_config(central), masterdata)
    await sync.sync_once()
    seen: list[ChangeSet] = []
    masterdata.add_listener(seen.append)

    unchanged = await sync.sync_once()
    assert unchanged.empty and seen == []

    central.execute(
        "UPDATE control_limits SET ucl = 23.0, limits_version = limits_version + 1"
        " WHERE tag = 'temperature'"
    )
    central.execute("UPDATE tags SET unit = 'mA' WHERE tag = 'current'")
    changes = await sync.sync_once()
    assert not changes.full
    assert {t: n for t, n in changes.rows.items() if n} == {"tags": 1, "control_limits": 1}
    assert changes.limits_changed == {f"{GW}/tank1/temperature"}
    assert seen == [changes]
    limits = masterdata.limits(f"{GW}/tank1/temperature")
    assert (limits.ucl, limits.version) == (23.0, 2)
    assert masterdata.unit(f"{GW}/tank1/current") == "mA"
    assert masterdata.version() == cloud_version(central)


async def test_retired_and_deleted_rows_disappear(
    central: Database, masterdata: MasterData
) -> None:
    sync = SyncDown(cloud_config(central), masterdata)
    await sync.sync_once()
    central.execute("UPDATE equipment SET retired = 1 WHERE id = 'tank2'")
    central.execute("DELETE FROM products WHERE id = 'P-200'")
    central.execute("DELETE FROM recipe_parameters WHERE recipe_id = 'R-black' AND name = 'time'")
    central.execute("DELETE FROM control_limits WHERE tag = 'colour'")
    changes = await sync.sync_once()
    assert changes.deleted == 3
    assert [e.id for e in masterdata.equipment()] == ["tank1"]
    assert masterdata.product("P-200") is None
    assert masterdata.recipe_for_product("P-200") is None
    assert set(masterdata.recipe("R-black").parameters) == {"current_density"}
    assert masterdata.limits(f"{GW}/qc/colour") is None
    assert changes.limits_changed == {f"{GW}/qc/colour"}
    # A later edge with an empty file gets the same picture in one full pull.
    fresh = MasterData(masterdata.path.with_name("fresh.sqlite"))
    await SyncDown(cloud_config(central), fresh).sync_once()
    assert fresh.equipment() == masterdata.equipment()
    assert fresh.products() == masterdata.products()
    fresh.close()


async def test_unreachable_cloud_keeps_the_copy_and_reports(
    central: Database, masterdata: MasterData
) -> None:
    await SyncDown(cloud_config(central), masterdata).sync_once()
    version = masterdata.version()
    wrong = cloud_config(central, database="no_such_db_" + central.name)
    with pytest.raises(CloudError, match="no_such_db_"):
        await SyncDown(wrong, masterdata).sync_once()
    assert masterdata.version() == version
    assert masterdata.unit(f"{GW}/tank1/temperature") == "degC"


async def test_restored_cloud_with_older_version_resyncs_fully(
    central: Database, masterdata: MasterData
) -> None:
    sync = SyncDown(cloud_config(central), masterdata)
    await sync.sync_once()
    # A restore from backup: the counter goes back and a product is missing.
    central.execute("DELETE FROM products WHERE id = 'P-200'")
    central.execute("UPDATE md_version SET v = 3 WHERE id = 1")
    central.execute("DELETE FROM md_deletions")
    changes = await sync.sync_once()
    assert changes.full
    assert masterdata.product("P-200") is None and masterdata.product("P-100") is not None


async def test_empty_cloud_never_wipes_the_local_copy(
    central: Database, masterdata: MasterData, mariadb_db: Database
) -> None:
    await SyncDown(cloud_config(central), masterdata).sync_once()
    central.execute("UPDATE md_version SET v = 0 WHERE id = 1")
    with pytest.raises(CloudError, match="empty"):
        await SyncDown(cloud_config(central), masterdata).sync_once()
    assert len(masterdata.tags()) == 3


async def test_a_database_without_the_schema_says_what_to_do(
    mariadb_db: Database, masterdata: MasterData
) -> None:
    with pytest.raises(CloudError, match=r"apply deploy/cloud/central_schema\.sql"):
        await SyncDown(cloud_config(mariadb_db), masterdata).sync_once()
    assert masterdata.version() == 0

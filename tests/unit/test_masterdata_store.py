"""MasterData.apply: merges, deletions, full replacement, all-or-nothing, reopening the file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge_node.masterdata import ChangeSet, MasterData, MasterDataError, Pull

TEMP = ("gw1", "tank1", "temperature")


def limits_row(ucl: float, version: int, limits_version: int = 1, retired: int = 0) -> tuple:
    return (*TEMP, 18.0, 24.0, 19.5, ucl, 21.0, 0.5, limits_version, None, retired, version)


def first_pull() -> Pull:
    return Pull(
        version=5,
        rows={
            "equipment": [("tank1", "Tank 1", "line1", "tank", None, 0, 1)],
            "tags": [(*TEMP, "tank1", "degC", "bath", 0, 2)],
            "recipes": [("R1", "Black", None, 0, 3)],
            "recipe_parameters": [("R1", "time", 2400.0, None, "s", 0, 3)],
            "control_limits": [limits_row(22.5, 4)],
            "products": [("P1", "Panel", "R1", 0, 5)],
        },
        full=True,
    )


@pytest.fixture
def md(tmp_path: Path) -> MasterData:
    store = MasterData(tmp_path / "md.sqlite")
    yield store
    store.close()


def test_apply_then_read(md: MasterData) -> None:
    changes = md.apply(first_pull())
    assert changes.version == md.version() == 5
    assert changes.limits_changed == {"gw1/tank1/temperature"}
    assert md.unit("gw1/tank1/temperature") == "degC"
    assert md.tag("gw1/tank1/temperature").equipment_id == "tank1"
    assert md.recipe_for_product("P1").parameters["time"].value == 2400.0
    assert md.limits("gw1/tank1/temperature").ucl == 22.5


def test_merge_updates_only_what_the_pull_names(md: MasterData) -> None:
    md.apply(first_pull())
    changes = md.apply(Pull(version=6, rows={"control_limits": [limits_row(23.0, 6, 2)]}))
    assert changes.rows == {"control_limits": 1} and not changes.full
    assert md.limits("gw1/tank1/temperature").version == 2
    assert md.unit("gw1/tank1/temperature") == "degC"  # untouched tables stay


def test_retired_rows_are_kept_but_not_served(md: MasterData) -> None:
    md.apply(first_pull())
    changes = md.apply(Pull(version=7, rows={"control_limits": [limits_row(22.5, 7, retired=1)]}))
    assert md.limits("gw1/tank1/temperature") is None
    assert changes.limits_changed == {"gw1/tank1/temperature"}


def test_deletions_and_full_replacement(md: MasterData) -> None:
    md.apply(first_pull())
    md.apply(Pull(version=8, rows={}, deletions=[("products", ("P1",))]))
    assert md.product("P1") is None and md.recipe("R1") is not None
    md.apply(
        Pull(version=9, rows={"equipment": [("tank9", "Nine", "", "", None, 0, 9)]}, full=True)
    )
    assert [e.id for e in md.equipment()] == ["tank9"] and md.tags() == []


def test_a_failing_pull_changes_nothing(md: MasterData) -> None:
    md.apply(first_pull())
    bad = Pull(
        version=10,
        rows={
            "tags": [(*TEMP, "tank1", "K", "bath", 0, 10)],
            "products": [("P2", "too", "few")],  # wrong width: fails after tags were written
        },
    )
    with pytest.raises(sqlite3.ProgrammingError):
        md.apply(bad)
    assert md.version() == 5
    assert md.unit("gw1/tank1/temperature") == "degC"
    reopened = MasterData(md.path)
    assert reopened.unit("gw1/tank1/temperature") == "degC" and reopened.version() == 5
    reopened.close()


def test_status_survives_a_restart(md: MasterData) -> None:
    md.apply(first_pull())
    md.record_failure("cloud database x: refused")
    assert md.status().last_error == "cloud database x: refused"
    assert md.status().consecutive_failures == 1
    reopened = MasterData(md.path)
    assert reopened.status().version == 5
    assert reopened.status().last_error == "cloud database x: refused"
    reopened.close()


def test_listeners_get_changes(md: MasterData) -> None:
    got: list[ChangeSet] = []
    md.add_listener(got.append)
    changes = md.apply(first_pull())
    md.notify(changes)
    assert got == [changes]
    md.remove_listener(got.append)
    md.notify(changes)
    assert len(got) == 1


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "md.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(MasterDataError, match="newer than this edge-node"):
        MasterData(path)

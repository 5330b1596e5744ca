"""`edge-node export`: the time series lands in MariaDB as plain rows (decoded readings and
rollups), the other stores as tables with the same row counts."""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge_node.cli import app
from edge_node.cloud.link import CloudLink
from edge_node.config import parse_edge_config
from edge_node.masterdata import Pull
from edge_node.store import Store
from edge_node.store.model import HOUR_NS
from factory_common.wire import WIRE_VERSION, Batch, Reading
from tests.support.mariadb import Database

T0 = 1_764_000_000 * 10**9 - (1_764_000_000 * 10**9) % HOUR_NS


def make_stores(data_dir: Path) -> None:
    config = parse_edge_config("edge: {id: edge1}\n")
    store = Store(config.store.resolve_path(data_dir))
    values = [Reading(device="tank1", tag="temperature", ts=T0 + i * 10**9, value=20.0 + i % 7)
              for i in range(5400)]  # fmt: skip
    texts = [Reading(device="line", tag="product", ts=T0 + i * 60 * 10**9, value=f"P-{i // 10}")
             for i in range(60)]  # fmt: skip
    last = len(values) + len(texts) - 1
    store.write([Batch(v=WIRE_VERSION, gateway="gw1", boot="b", first_seq=0, last_seq=last,
                       readings=values + texts)])  # fmt: skip
    store.compact(T0 + HOUR_NS)  # blocks (BLOBs) and recent rows both present
    link = CloudLink(None, "edge1", data_dir, store)
    rows = {
        "equipment": [("tank1", "Tank 1", "l1", "tank", None, 0, 1)],
        "tags": [("gw1", "tank1", "temperature", "tank1", "degC", None, 0, 2)],
    }
    link.masterdata.apply(Pull(version=2, rows=rows, full=True))
    link.outbox.add("defect", {"product_id": "P-1", "value": 3.2}, "P-1@1")
    link.close()
    store.close()


def sqlite_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    counts = {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names
              if not n.startswith("sqlite_")}  # fmt: skip
    conn.close()
    return counts


def test_export_copies_every_store(tmp_path: Path, mariadb_db: Database) -> None:
    data_dir = tmp_path / "data"
    make_stores(data_dir)
    config = tmp_path / "edge.yaml"
    config.write_text("edge: {id: edge1}\n")
    args = ["export", str(config), "--data-dir", str(data_dir), "--mysql-url", mariadb_db.url]
    for _ in range(2):  # a second export replaces, never duplicates
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    assert f"into {mariadb_db.name}" in result.output
    expected: dict[str, int] = {}
    for name in ("masterdata.sqlite", "cloud.sqlite"):
        expected |= sqlite_counts(data_dir / name)
    assert expected["outbox"] == 1
    got = {t: mariadb_db.execute(f"SELECT count(*) FROM `{t}`")[0][0] for t in expected}
    assert got == expected
    # The time series as an auditor reads it: one row per reading, values decoded from the
    # compacted blocks (the first hour) and the open chunks (the rest) alike.
    assert mariadb_db.execute("SELECT count(*) FROM readings") == [(5460,)]
    first = mariadb_db.execute(
        "SELECT ts, at, value, text, quality FROM readings WHERE tag = 'temperature'"
        " ORDER BY ts LIMIT 3"
    )
    assert [(row[0], row[2], row[3], row[4]) for row in first] == [
        (T0 + i * 10**9, 20.0 + i, None, "good") for i in range(3)
    ]
    assert first[0][1] == dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=T0 // 1000)
    products = mariadb_db.execute(
        "SELECT text, value FROM readings WHERE tag = 'product' ORDER BY ts LIMIT 2"
    )
    assert products == [("P-0", None), ("P-0", None)]
    assert mariadb_db.execute("SELECT gateway, device, tag, kind FROM series ORDER BY tag") == [
        ("gw1", "line", "product", "str"),
        ("gw1", "tank1", "temperature", "num"),
    ]
    # 5400 one-second readings: 90 minute rollups and two (partial) hours; none for text.
    minutes = mariadb_db.execute(
        "SELECT count(*), sum(count) FROM rollup_minute WHERE tag = 'temperature'"
    )
    assert [(int(a), int(b)) for a, b in minutes] == [(90, 5400)]
    first_minute = [20.0 + i % 7 for i in range(60)]
    assert mariadb_db.execute(
        "SELECT min, max, mean, count, last FROM rollup_minute ORDER BY start LIMIT 1"
    ) == [(20.0, 26.0, pytest.approx(sum(first_minute) / 60), 60, first_minute[-1])]
    hours = mariadb_db.execute("SELECT count(*), sum(count) FROM rollup_hour")
    assert [(int(a), int(b)) for a, b in hours] == [(2, 5400)]
    unit = mariadb_db.execute("SELECT unit FROM tags WHERE tag = 'temperature'")
    assert unit == [("degC",)]
    indexes = mariadb_db.execute(
        "SELECT count(*) FROM information_schema.statistics WHERE table_schema = %s"
        " GROUP BY table_name, index_name HAVING count(*) > count(DISTINCT column_name)",
        (mariadb_db.name,),
    )
    assert indexes == []  # the second export did not add its indexes again


def test_export_refuses_the_central_database(tmp_path: Path, mariadb_db: Database) -> None:
    data_dir = tmp_path / "data"
    make_stores(data_dir)
    mariadb_db.execute("CREATE TABLE md_version (id INT PRIMARY KEY, v BIGINT)")
    config = tmp_path / "edge.yaml"
    config.write_text("edge: {id: edge1}\n")
    args = ["export", str(config), "--data-dir", str(data_dir), "--mysql-url", mariadb_db.url]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "master data" in result.output and "audit database" in result.output


def test_bad_url_is_explained(tmp_path: Path) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text("edge: {id: edge1}\n")
    result = CliRunner().invoke(app, ["export", str(config), "--mysql-url", "postgres://x/y"])
    assert result.exit_code == 1 and "mysql://user:password@host:3306/database" in result.output


def test_without_the_export_extra_nothing_is_copied_and_the_fix_is_named(
    tmp_path: Path, mariadb_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    make_stores(data_dir)
    config = tmp_path / "edge.yaml"
    config.write_text("edge: {id: edge1}\n")
    # As in an edge-only install: the module cannot be found (None in sys.modules).
    monkeypatch.setitem(sys.modules, "sqlite3_to_mysql", None)
    args = ["export", str(config), "--data-dir", str(data_dir), "--mysql-url", mariadb_db.url]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "pip install 'factory-edge[export]'" in result.output
    assert mariadb_db.execute("SHOW TABLES") == []  # checked before anything was written

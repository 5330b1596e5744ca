"""The one way stores open SQLite: WAL, durable commits, usable from worker threads."""

from __future__ import annotations

import threading
from pathlib import Path

from factory_common.sqlite import open_db


def test_a_store_file_opens_in_wal_with_full_sync_and_its_schema(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "store.sqlite"
    conn = open_db(path, "CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.isolation_level is None  # autocommit: stores write BEGIN/COMMIT themselves
    thread = threading.Thread(target=lambda: conn.execute("INSERT INTO t VALUES (1)"))
    thread.start()
    thread.join()
    conn.close()
    again = open_db(path, "CREATE TABLE IF NOT EXISTS t (x INTEGER)")  # schema is idempotent
    assert again.execute("SELECT x FROM t").fetchall() == [(1,)]
    again.close()


def test_a_bad_schema_closes_the_connection_and_says_why(tmp_path: Path) -> None:
    import sqlite3

    import pytest

    with pytest.raises(sqlite3.OperationalError, match="syntax"):
        open_db(tmp_path / "s.sqlite", "CREATE TABLE (")

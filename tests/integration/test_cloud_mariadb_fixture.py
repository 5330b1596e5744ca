"""The MariaDB test fixtures themselves: a private server survives stop/start with its data."""

from __future__ import annotations

import pymysql
import pytest

from tests.support.mariadb import Database, MariaDBServer


def test_private_server_keeps_data_and_port_across_restart(mariadb_server: MariaDBServer) -> None:
    db = mariadb_server.create_database("plant")
    db.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))")
    db.execute("INSERT INTO t VALUES (1, 'kept')")
    port = mariadb_server.port
    mariadb_server.stop()
    assert not mariadb_server.running
    with pytest.raises(pymysql.err.OperationalError):
        db.connect()
    mariadb_server.start()
    assert mariadb_server.port == port
    assert db.execute("SELECT v FROM t WHERE id = 1") == [("kept",)]


def test_shared_database_is_fresh_and_private(mariadb_db: Database) -> None:
    assert mariadb_db.name.startswith("t_")
    assert mariadb_db.execute("SHOW TABLES") == []
    mariadb_db.execute("CREATE TABLE x (id INT PRIMARY KEY)")
    assert mariadb_db.execute("SHOW TABLES") == [("x",)]

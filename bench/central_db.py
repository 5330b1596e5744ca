"""The benchmark's central: a MariaDB instance of its own (or an existing server) holding the
factory's readings in two table designs, loaded the same way, hour by hour in arrival order.

Designs (same columns, same rows):
- `arrival`: what the paper's central had, one row per reading in arrival order
  (AUTO_INCREMENT key) with indexes on (equipment, parameter, ts) and (ts);
- `clustered`: the primary key is (equipment, parameter, ts), so one parameter's day is
  contiguous on disk, as a DBA designing for per-equipment history would do.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pymysql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.mariadb import MariaDBServer  # noqa: E402

DESIGNS = {
    "arrival": """CREATE TABLE readings_arrival (
        id BIGINT AUTO_INCREMENT PRIMARY KEY,
        equipment_id INT NOT NULL,
        parameter_id INT NOT NULL,
        ts DATETIME(6) NOT NULL,
        value DOUBLE,
        quality TINYINT NOT NULL DEFAULT 0,
        KEY by_equipment (equipment_id, parameter_id, ts),
        KEY by_time (ts)
    ) ENGINE=InnoDB""",
    "clustered": """CREATE TABLE readings_clustered (
        equipment_id INT NOT NULL,
        parameter_id INT NOT NULL,
        ts DATETIME(6) NOT NULL,
        value DOUBLE,
        quality TINYINT NOT NULL DEFAULT 0,
        PRIMARY KEY (equipment_id, parameter_id, ts)
    ) ENGINE=InnoDB""",
}
GIB = 2**30


def table(design: str) -> str:
    return f"readings_{design}"


def server_options(pool_bytes: int, workdir: Path, redo_bytes: int) -> list[str]:
    """What a DBA sets for a bulk-loaded reporting table; all but the pool size only change
    how fast it loads, not how fast it reads."""
    return [
        f"--innodb-buffer-pool-size={pool_bytes}",
        f"--innodb-log-file-size={redo_bytes}",  # 2 GiB: a bulk load without checkpoint stalls
        "--innodb-flush-log-at-trx-commit=2",  # benchmark data: durability is not measured
        "--innodb-doublewrite=0",
        "--innodb-flush-method=O_DIRECT",  # the pool is the cache, not the OS (the default)
        # A restart must be cold: no reloading of the pool's page list at start-up.
        "--innodb-buffer-pool-dump-at-shutdown=0",
        "--innodb-buffer-pool-load-at-startup=0",
        f"--secure-file-priv={workdir}",  # server-side LOAD DATA INFILE from here only
        "--max-allowed-packet=256M",
        "--character-set-server=utf8mb4",
    ]


@dataclass
class Central:
    """Where the central database is; `server` is None when pointing at an existing server
    (then it cannot be restarted for a cold run)."""

    host: str
    port: int
    database: str
    server: MariaDBServer | None = None
    workdir: Path | None = None
    redo_bytes: int = 2 * 2**30

    def connect(self, database: str | None = "") -> pymysql.Connection:
        """database "" means the benchmark's, None no database."""
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user="root",
            database=self.database if database == "" else database,
            local_infile=True,
            autocommit=True,
            ssl_disabled=True,  # loopback; pymysql would build a TLS context per connection
            init_command="SET time_zone = '+00:00'",
        )

    def restart(self) -> None:
        """A cold server: shut down cleanly, evict its files from the OS page cache too (the
        pool uses O_DIRECT, so this only matters for other files), start again."""
        if self.server is None:
            raise RuntimeError("cannot restart a server this benchmark did not start")
        self.server.stop(timeout=1800)
        evict_tree(self.server.datadir)
        self.server.start(timeout=600)

    def set_pool(self, pool_bytes: int) -> None:
        """Restart with this buffer pool size (the other settings unchanged)."""
        if self.server is None or self.workdir is None:
            raise RuntimeError("cannot resize the pool of a server this benchmark did not start")
        self.server.options = server_options(pool_bytes, self.workdir / "load", self.redo_bytes)
        self.restart()

    def close(self) -> None:
        if self.server is not None:
            self.server.stop(timeout=1800)
            self.server.close()


@contextmanager
def own_server(workdir: Path, pool_bytes: int, database: str, redo_bytes: int) -> Iterator[Central]:
    """A private mariadbd whose datadir stays in `workdir` between runs (so a later run can
    reuse the loaded tables), on a free loopback port."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "load").mkdir(exist_ok=True)
    options = server_options(pool_bytes, workdir / "load", redo_bytes)
    server = MariaDBServer(workdir, options=options)
    server.start(timeout=600)
    central = Central(server.host, server.port, database, server, workdir, redo_bytes)
    try:
        yield central
    finally:
        central.close()


def evict_tree(path: Path) -> None:
    """Drop every file under `path` from the OS page cache (no root needed)."""
    for name in path.rglob("*"):
        if name.is_file():
            fd = os.open(name, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def create(central: Central) -> None:
    with central.connect(None) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{central.database}`")
        cur.execute(f"CREATE DATABASE `{central.database}`")
        cur.execute(f"USE `{central.database}`")
        for ddl in DESIGNS.values():
            cur.execute(ddl)


def analyze(central: Central) -> None:
    with central.connect() as conn, conn.cursor() as cur:
        for design in DESIGNS:
            cur.execute(f"ANALYZE TABLE {table(design)}")
            cur.fetchall()


def sizes(central: Central) -> dict[str, int]:
    """Per design: data + index bytes as InnoDB reports them (no count(*): on 80M rows each
    takes minutes)."""
    out = {}
    with central.connect() as conn, conn.cursor() as cur:
        for design in DESIGNS:
            cur.execute(
                "SELECT data_length + index_length FROM information_schema.tables"
                " WHERE table_schema = %s AND table_name = %s",
                (central.database, table(design)),
            )
            (size,) = cur.fetchone()
            out[design] = int(size)
    return out


def dba_pool(largest_table: int, ram: int) -> int:
    """The whole of the larger design (data and indexes) fits, with 10% for the pool's own
    overhead, rounded up to whole GiB; never more than half the RAM, the other half being the
    OS's, the edge's and the other users' of this shared machine."""
    want = -(-int(largest_table * 1.1) // GIB) * GIB
    return max(GIB, min(want, ram // 2 // GIB * GIB))


def ram_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            return int(line.split()[1]) * 1024
    return 8 * GIB

"""`edge-node export`: the edge's stores into MySQL/MariaDB, for audits and migrations.

The time series goes in as plain rows (decoded readings, minute and hour rollups: see
edge_node/export_rows.py) through PyMySQL; the small plain stores (master data, cloud outbox,
alarms) are copied table by table with sqlite3-to-mysql, from the `export` extra.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

import pymysql
import typer
from pymysql.connections import Connection
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edge_node import export_rows
from edge_node.cloud.link import CLOUD_FILE, MASTERDATA_FILE
from edge_node.config import EdgeConfig, load_edge_config
from edge_node.export_rows import count_readings
from edge_node.store import Store
from factory_common.config import ConfigError
from factory_common.errors import EdgeError

TIME_SERIES = "time series"
# Never exported: the users file holds password hashes.
OTHER_FILES = ("alarms.sqlite",)


class ExportError(EdgeError, RuntimeError):
    """The export cannot start or failed; the message says what to change."""


@dataclass(frozen=True)
class MysqlTarget:
    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def parse(cls, url: str) -> MysqlTarget:
        """mysql://user[:password]@host[:port]/database (mariadb:// too)."""
        parts = urlsplit(url)
        database = parts.path.lstrip("/")
        if parts.scheme not in ("mysql", "mariadb") or not parts.hostname or not database:
            raise ExportError(f"--mysql-url {url!r}: give mysql://user:password@host:3306/database")
        return cls(
            host=parts.hostname,
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=database,
        )


def sources(config: EdgeConfig, data_dir: Path) -> list[tuple[str, Path]]:
    """(label, file) of every store present: time series, master data, cloud outbox, alarms."""
    found = [
        (TIME_SERIES, config.store.resolve_path(data_dir)),
        ("master data", data_dir / MASTERDATA_FILE),
        ("cloud outbox", data_dir / CLOUD_FILE),
        *((name.removesuffix(".sqlite"), data_dir / name) for name in OTHER_FILES),
    ]
    return [(label, path) for label, path in found if path.exists()]


def _typed(conn: sqlite3.Connection, table: str) -> None:
    """Give untyped columns (SQLite's `value` holding a number or a text) the type TEXT:
    sqlite3-to-mysql needs a declared type for every column. Only the throwaway copy changes."""
    info = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
    if all(col[2] for col in info):
        return
    columns = [f'"{c[1]}" {c[2] or "TEXT"}{" NOT NULL" if c[3] else ""}' for c in info]
    key = [c[1] for c in sorted(info, key=lambda c: c[5]) if c[5]]
    if key:
        columns.append("PRIMARY KEY (" + ", ".join(f'"{k}"' for k in key) + ")")
    indexes = [
        sql
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
            " AND sql IS NOT NULL",
            (table,),
        )
    ]
    conn.execute(f'CREATE TABLE "__typed" ({", ".join(columns)})')
    conn.execute(f'INSERT INTO "__typed" SELECT * FROM "{table}"')
    conn.execute(f'DROP TABLE "{table}"')
    conn.execute(f'ALTER TABLE "__typed" RENAME TO "{table}"')
    for sql in indexes:
        conn.execute(sql)
    conn.commit()


def copy_consistently(path: Path, into: Path) -> None:
    """A consistent copy (SQLite backup API) while the edge keeps writing."""
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    copy = sqlite3.connect(into)
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()


def snapshot(path: Path, into: Path) -> dict[str, int]:
    """A consistent copy with every column typed for sqlite3-to-mysql; rows per table."""
    copy_consistently(path, into)
    copy = sqlite3.connect(into)
    try:
        tables = [
            name
            for (name,) in copy.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        for table in tables:
            _typed(copy, table)
        return {t: copy.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        copy.close()


def _connect(target: MysqlTarget) -> Connection[Any]:
    try:
        return pymysql.connect(
            host=target.host, port=target.port, user=target.user, password=target.password,
            connect_timeout=10, autocommit=True, charset="utf8mb4",
        )  # fmt: skip
    except pymysql.MySQLError as exc:
        raise ExportError(f"cannot connect to {target.host}:{target.port}: {exc}") from None


def drop_tables(target: MysqlTarget, tables: list[str]) -> None:
    """An export is a copy: the tables are made anew (keys and indexes exactly once)."""
    conn = _connect(target)
    try:
        cur = conn.cursor()
        for table in tables:
            cur.execute(f"DROP TABLE IF EXISTS `{target.database}`.`{table}`")
    finally:
        conn.close()


def check_target(target: MysqlTarget, force: bool) -> None:
    """Create the database; refuse the central master-data database (same table names)."""
    conn = _connect(target)
    try:
        cur = conn.cursor()
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{target.database}` CHARACTER SET utf8mb4")
        cur.execute(
            "SELECT count(*) FROM information_schema.tables"
            " WHERE table_schema = %s AND table_name = 'md_version'",
            (target.database,),
        )
        if cur.fetchone()[0] and not force:
            raise ExportError(
                f"{target.database} holds the cloud's master data (md_version): export into"
                " a separate audit database, or pass --force"
            )
    finally:
        conn.close()


def require_export_extra() -> None:
    """Fail before copying anything when sqlite3-to-mysql (the export extra) is missing."""
    if importlib.util.find_spec("sqlite3_to_mysql") is None:
        raise ExportError(
            "copying the master data, outbox and alarm stores needs the export extra:"
            " pip install 'factory-edge[export]'"
        )


def transfer(copy: Path, table: str, target: MysqlTarget) -> None:
    import mysql.connector  # sqlite3-to-mysql's driver
    from sqlite3_to_mysql import SQLite3toMySQL

    try:
        # Its options TypedDict marks every key required, though each has a default.
        SQLite3toMySQL(  # type: ignore[call-arg]
            sqlite_file=str(copy),
            sqlite_tables=[table],
            mysql_user=target.user,
            mysql_password=target.password or None,
            mysql_host=target.host,
            mysql_port=target.port,
            mysql_database=target.database,
            mysql_integer_type="BIGINT",  # ns timestamps and sequence numbers need 64 bits
            chunk=10_000,
            quiet=True,
        ).transfer()
    except mysql.connector.Error as exc:
        raise ExportError(f"{table}: {exc}") from None


COLUMNS = (
    TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
    TextColumn("rows"), TimeElapsedColumn(),
)  # fmt: skip
BATCH = 5000  # rows per INSERT: big enough to be quick, small enough for max_allowed_packet


def make_tables(db: Connection, database: str) -> None:
    """An export is a copy: the tables are made anew (keys and indexes exactly once)."""
    cur = db.cursor()
    for table, columns in export_rows.TABLES.items():
        cur.execute(f"DROP TABLE IF EXISTS `{database}`.`{table}`")
        cur.execute(f"CREATE TABLE `{database}`.`{table}` ({columns}) CHARACTER SET utf8mb4")


def insert(db: Connection, database: str, table: str, rows: list[export_rows.Row]) -> None:
    names = export_rows.COLUMNS[table]
    sql = (
        f"INSERT INTO `{database}`.`{table}` ({', '.join(f'`{n}`' for n in names)})"
        f" VALUES ({', '.join(['%s'] * len(names))})"
    )
    cur = db.cursor()
    for start in range(0, len(rows), BATCH):
        cur.executemany(sql, rows[start : start + BATCH])


def export_time_series(path: Path, copy: Path, target: MysqlTarget, progress: Progress) -> int:
    """Readings and rollups as plain rows (decoded from the store's compressed blocks)."""
    copy_consistently(path, copy)
    store = Store(copy, read_only=True)
    conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    db = _connect(target)
    try:
        series = store.series()
        readings = progress.add_task("time series: readings", total=count_readings(conn))
        rollups = progress.add_task("time series: rollups", total=2 * len(series))
        make_tables(db, target.database)
        rows = [(i.gateway, i.device, i.tag, i.kind, i.unit) for i in series]
        insert(db, target.database, "series", rows)
        done = len(rows)
        for info in series:
            for day in export_rows.daily_readings(store, conn, info):
                insert(db, target.database, "readings", day)
                progress.advance(readings, len(day))
                done += len(day)
        for info in series:
            for unit in ("minute", "hour"):
                rows = export_rows.rollups(conn, info, unit)
                insert(db, target.database, f"rollup_{unit}", rows)
                progress.advance(rollups)
                done += len(rows)
        return done
    finally:
        db.close()
        conn.close()
        store.close()


def export_plain(
    label: str, path: Path, copy: Path, target: MysqlTarget, progress: Progress
) -> int:
    """A store of plain rows, table by table under the same names (sqlite3-to-mysql)."""
    counts = snapshot(path, copy)
    task = progress.add_task(f"{label} ({path.name})", total=sum(counts.values()))
    drop_tables(target, list(counts))
    for table, rows in counts.items():
        progress.update(task, description=f"{label}: {table}")
        transfer(copy, table, target)
        progress.advance(task, rows)
    progress.update(task, description=f"{label} ({path.name})")
    return sum(counts.values())


def export(config: EdgeConfig, data_dir: Path, target: MysqlTarget, console: Console) -> int:
    found = sources(config, data_dir)
    if not found:
        raise ExportError(f"no edge stores under {data_dir}: check --data-dir")
    if any(label != TIME_SERIES for label, _ in found):
        require_export_extra()
    check_target(target, force=False)
    workdir = Path(tempfile.mkdtemp(prefix="edge-export-"))
    total_rows = 0
    try:
        with Progress(*COLUMNS, console=console) as progress:
            for label, path in found:
                copy = workdir / path.name
                if label == TIME_SERIES:
                    total_rows += export_time_series(path, copy, target, progress)
                else:
                    total_rows += export_plain(label, path, copy, target, progress)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return total_rows


def export_command(
    config: Annotated[Path, typer.Argument(help="edge config YAML")],
    mysql_url: Annotated[
        str, typer.Option(help="mysql://user:password@host:3306/database (an audit database)")
    ],
    data_dir: Annotated[Path, typer.Option(help="where the stores live")] = Path("data/edge"),
) -> None:
    """Copy the edge's stores into MySQL/MariaDB for audits and migrations: the time series
    as plain rows (tables series, readings, rollup_minute, rollup_hour), master data, cloud
    outbox and alarms as tables of the same names. Runs beside a running edge: each file is
    copied consistently first. Re-running replaces the rows."""
    console = Console(stderr=True)
    try:
        edge_config = load_edge_config(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    # sqlite3-to-mysql logs every table at INFO to the console: keep the progress bar clean.
    logging.getLogger("SQLite3toMySQL").setLevel(logging.WARNING)

    try:
        target = MysqlTarget.parse(mysql_url)
        rows = export(edge_config, data_dir, target, console)
    except (ExportError, pymysql.MySQLError, sqlite3.Error) as exc:
        typer.echo(f"edge-node export: {exc}", err=True)
        raise typer.Exit(1) from None
    console.print(f"exported {rows} rows into {target.database} on {target.host}:{target.port}")

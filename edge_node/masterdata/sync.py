"""Sync master data DOWN from the central MariaDB/MySQL: incremental by version, all-or-nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pymysql

from edge_node.cloud.cadence import repeat_with_backoff
from edge_node.cloud.config import CloudConfig
from edge_node.cloud.mysql import CLOUD_ERRORS, CloudError, connect, describe
from edge_node.masterdata.model import ChangeSet, Pull
from edge_node.masterdata.store import MasterData
from edge_node.masterdata.tables import BY_NAME, TABLES
from factory_common.logs import get_logger

log = get_logger(component="sync_down")


def _plain(value: Any) -> Any:
    """What SQLite stores: datetimes as ISO 8601 UTC text, decimals as floats."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC).isoformat(timespec="milliseconds")
    if isinstance(value, Decimal):
        return float(value)
    return value


def fetch(conn: pymysql.Connection, since: int) -> Pull:
    """Everything changed after version `since`, read in one consistent snapshot, so the
    tables agree with each other and with the version the edge records."""
    with conn.cursor() as cur:
        cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        try:
            cur.execute("SELECT v FROM md_version WHERE id = 1")
            row = cur.fetchone()
            if row is None:
                raise CloudError("md_version is empty: apply deploy/cloud/central_schema.sql")
            cloud = int(row[0])
            if cloud < since and cloud == 0:
                raise CloudError(
                    f"the cloud's master data is empty (version 0) but this edge holds version"
                    f" {since}: keeping the local copy; check cloud.database"
                )
            full = since == 0 or cloud < since  # first sync, or the cloud was restored
            if cloud == since:
                return Pull(version=cloud, rows={})
            low = 0 if full else since
            rows: dict[str, list[tuple[Any, ...]]] = {}
            # A full pull reads every row: after a restore, versions may exceed the counter.
            where = "" if full else " WHERE version > %s AND version <= %s"
            for spec in TABLES:
                cur.execute(
                    f"SELECT {', '.join(spec.all_columns)} FROM {spec.name}{where}"
                    " ORDER BY version",
                    () if full else (low, cloud),
                )
                rows[spec.name] = [tuple(_plain(v) for v in r) for r in cur.fetchall()]
            deletions: list[tuple[str, tuple[Any, ...]]] = []
            if not full:
                cur.execute(
                    "SELECT table_name, key_json FROM md_deletions"
                    " WHERE version > %s AND version <= %s ORDER BY version",
                    (low, cloud),
                )
                deletions = [
                    (table, tuple(json.loads(key)))
                    for table, key in cur.fetchall()
                    if table in BY_NAME
                ]
            return Pull(version=cloud, rows=rows, deletions=deletions, full=full)
        finally:
            conn.rollback()  # read-only: ends the snapshot


class SyncDown:
    """Pulls every `down_interval` seconds; on failure keeps the last good copy, records the
    error for /api/sync and retries with backoff (2 s doubling up to `backoff_max`)."""

    def __init__(
        self,
        config: CloudConfig,
        masterdata: MasterData,
        connector: Callable[[CloudConfig], pymysql.Connection] = connect,
    ) -> None:
        self.config = config
        self.masterdata = masterdata
        self._connect = connector
        self.wake = asyncio.Event()  # set it to pull now (e.g. after an engineer's change)

    def _pull(self, since: int) -> Pull:
        conn = self._connect(self.config)
        try:
            return fetch(conn, since)
        except CLOUD_ERRORS as exc:
            raise CloudError(describe(self.config, exc)) from None
        finally:
            conn.close()

    async def sync_once(self) -> ChangeSet:
        """One pull and apply; raises CloudError (the local copy is then unchanged)."""
        budget = self.config.connect_timeout + 2 * self.config.query_timeout
        try:
            async with asyncio.timeout(budget):
                pull = await asyncio.to_thread(self._pull, self.masterdata.version())
        except TimeoutError:
            raise CloudError(
                describe(self.config, TimeoutError(f"no answer within {budget:.0f} s"))
            ) from None
        job = asyncio.ensure_future(asyncio.to_thread(self.masterdata.apply, pull))
        try:
            changes = await asyncio.shield(job)
        except asyncio.CancelledError:
            await asyncio.wait([job])  # local and short; the file closes only after it
            raise
        if not changes.empty:
            log.info(
                "masterdata_synced",
                version=changes.version,
                rows=changes.rows,
                deleted=changes.deleted,
                full=changes.full,
                limits_changed=len(changes.limits_changed),
            )
            self.masterdata.notify(changes)
        return changes

    async def run(self) -> None:
        """Forever: log once when the cloud goes away and once when it is back."""

        def failed(exc: CloudError, first: bool) -> None:
            status = self.masterdata.record_failure(str(exc))  # every failure, for /api/sync
            if first:
                log.warning("masterdata_sync_failed", error=str(exc), version=status.version)

        def recovered() -> None:
            log.info("masterdata_sync_recovered", version=self.masterdata.version())

        await repeat_with_backoff(
            self.sync_once,
            interval=self.config.down_interval,
            backoff_max=self.config.backoff_max,
            wake=self.wake,
            on_failure=failed,
            on_recovery=recovered,
        )

"""The edge's master-data store: its own SQLite file, served from an in-memory snapshot."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_node.masterdata.model import (
    ChangeSet,
    ControlLimits,
    Equipment,
    Product,
    Pull,
    Recipe,
    RecipeParameter,
    SyncStatus,
    TagInfo,
)
from edge_node.masterdata.tables import BY_NAME, TABLES
from edge_node.store import StoreError
from factory_common.sqlite import open_db

SCHEMA_VERSION = 1
Listener = Callable[[ChangeSet], None]


class MasterDataError(StoreError):
    """The master-data file cannot be opened or is from a newer edge-node (a StoreError, so
    `edge-node run` reports it like the time-series store's)."""


@dataclass(frozen=True)
class _Snapshot:
    equipment: dict[str, Equipment] = field(default_factory=dict)
    tags: dict[str, TagInfo] = field(default_factory=dict)
    limits: dict[str, ControlLimits] = field(default_factory=dict)
    recipes: dict[str, Recipe] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)


def _rows(conn: sqlite3.Connection, table: str) -> list[dict[str, Any]]:
    spec = BY_NAME[table]
    cursor = conn.execute(
        f"SELECT {', '.join(spec.columns)} FROM {table} WHERE retired = 0"
        f" ORDER BY {', '.join(spec.key)}"
    )
    return [dict(zip(spec.columns, row, strict=True)) for row in cursor]


def _load(conn: sqlite3.Connection) -> _Snapshot:
    params: dict[str, dict[str, RecipeParameter]] = {}
    for row in _rows(conn, "recipe_parameters"):
        recipe_id = row.pop("recipe_id")
        params.setdefault(recipe_id, {})[row["name"]] = RecipeParameter(**row)
    tags = [TagInfo(**row) for row in _rows(conn, "tags")]
    limits = []
    for row in _rows(conn, "control_limits"):
        series = f"{row.pop('gateway')}/{row.pop('device')}/{row.pop('tag')}"
        row["version"] = row.pop("limits_version") or 1
        limits.append(ControlLimits(series=series, **row))
    return _Snapshot(
        equipment={row["id"]: Equipment(**row) for row in _rows(conn, "equipment")},
        tags={t.name: t for t in tags},
        limits={lim.series: lim for lim in limits},
        recipes={
            row["id"]: Recipe(**row, parameters=params.get(row["id"], {}))
            for row in _rows(conn, "recipes")
        },
        products={row["id"]: Product(**row) for row in _rows(conn, "products")},
    )


class MasterData:
    """Reads come from an immutable in-memory snapshot (lock-free, any thread); `apply` writes
    one pull in one SQLite transaction and swaps the snapshot only after it committed, so a
    failed or interrupted pull leaves the last good copy in place."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._conn = open_db(self.path)
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise MasterDataError(
                f"cannot open the master-data store {self.path}: {exc}; check the --data-dir"
            ) from None
        self._lock = threading.Lock()
        self._snapshot = _load(self._conn)
        self._status = self._load_status()
        self._data_version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        self._listeners: list[Listener] = []

    def _migrate(self) -> None:
        found = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if found > SCHEMA_VERSION:
            raise MasterDataError(
                f"{self.path} has schema version {found}, newer than this edge-node"
                f" ({SCHEMA_VERSION}): upgrade edge-node"
            )
        for spec in TABLES:
            self._conn.execute(spec.sqlite_ddl())
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS sync_state (key TEXT PRIMARY KEY, value) WITHOUT ROWID"
        )
        self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # ------------------------------------------------------------ reads (any thread)

    def equipment(self) -> list[Equipment]:
        return list(self._snapshot.equipment.values())

    def tags(self) -> list[TagInfo]:
        return list(self._snapshot.tags.values())

    def tag(self, series_name: str) -> TagInfo | None:
        return self._snapshot.tags.get(series_name)

    def unit(self, series_name: str) -> str | None:
        tag = self._snapshot.tags.get(series_name)
        return tag.unit if tag else None

    def limits(self, series_name: str) -> ControlLimits | None:
        return self._snapshot.limits.get(series_name)

    def all_limits(self) -> list[ControlLimits]:
        return list(self._snapshot.limits.values())

    def recipes(self) -> list[Recipe]:
        return list(self._snapshot.recipes.values())

    def recipe(self, recipe_id: str) -> Recipe | None:
        return self._snapshot.recipes.get(recipe_id)

    def products(self) -> list[Product]:
        return list(self._snapshot.products.values())

    def product(self, product_id: str) -> Product | None:
        return self._snapshot.products.get(product_id)

    def recipe_for_product(self, product_id: str) -> Recipe | None:
        product = self._snapshot.products.get(product_id)
        if product is None or product.recipe_id is None:
            return None
        return self._snapshot.recipes.get(product.recipe_id)

    def version(self) -> int:
        """The cloud's master-data version this copy is complete up to (0: never synced)."""
        return self._status.version

    def status(self) -> SyncStatus:
        return self._status

    def refresh(self) -> bool:
        """Reload if another process changed the file (a stateless API replica follows the
        process that syncs); True when it reloaded."""
        with self._lock:
            seen = self._conn.execute("PRAGMA data_version").fetchone()[0]
            if seen == self._data_version:
                return False
            self._data_version = seen
            self._snapshot = _load(self._conn)
            self._status = self._load_status()
            return True

    # ------------------------------------------------------------ change notification

    def add_listener(self, listener: Listener) -> None:
        """`listener(changes)` runs in the event loop after each pull that changed something;
        it must be quick (e.g. set an asyncio.Event); its errors propagate to the sync task."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def notify(self, changes: ChangeSet) -> None:
        for listener in list(self._listeners):
            listener(changes)

    # ------------------------------------------------------------ writes (the sync task)

    def apply(self, pull: Pull) -> ChangeSet:
        """All of `pull` or nothing, in one transaction; then the snapshot is swapped."""
        with self._lock:
            before = self._snapshot.limits
            counts: dict[str, int] = {}
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                if pull.full:
                    for spec in TABLES:
                        conn.execute(f"DELETE FROM {spec.name}")
                for table, rows in pull.rows.items():
                    spec = BY_NAME[table]
                    marks = ", ".join("?" * len(spec.all_columns))
                    conn.executemany(
                        f"INSERT OR REPLACE INTO {table} ({', '.join(spec.all_columns)})"
                        f" VALUES ({marks})",
                        rows,
                    )
                    counts[table] = len(rows)
                for table, key in pull.deletions:
                    where = " AND ".join(f"{c} = ?" for c in BY_NAME[table].key)
                    conn.execute(f"DELETE FROM {table} WHERE {where}", key)
                now = time.time_ns() // 1_000_000
                self._put_state({"version": pull.version, "last_success": now})
                snapshot = _load(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._snapshot = snapshot
            changes = ChangeSet(
                version=pull.version,
                rows=counts,
                deleted=len(pull.deletions),
                limits_changed=_changed(before, snapshot.limits),
                full=pull.full,
            )
            self._status = dataclasses.replace(
                self._status,
                version=pull.version,
                last_attempt=now,
                last_success=now,
                last_error=None,
                consecutive_failures=0,
                last_changes=sum(counts.values()) + len(pull.deletions),
            )
            return changes

    def record_failure(self, error: str) -> SyncStatus:
        """Remember why the last sync failed; the data stays as it was."""
        with self._lock:
            now = time.time_ns() // 1_000_000
            self._status = dataclasses.replace(
                self._status,
                last_attempt=now,
                last_error=error,
                last_error_at=now,
                consecutive_failures=self._status.consecutive_failures + 1,
            )
            self._put_state({"last_error": error, "last_error_at": now})
            return self._status

    def _put_state(self, values: dict[str, Any]) -> None:
        self._conn.executemany(
            "INSERT OR REPLACE INTO sync_state (key, value) VALUES (?, ?)", values.items()
        )

    def _load_status(self) -> SyncStatus:
        state = dict(self._conn.execute("SELECT key, value FROM sync_state"))
        failed_later = (state.get("last_error_at") or 0) >= (state.get("last_success") or 1)
        return SyncStatus(
            version=int(state.get("version") or 0),
            last_success=state.get("last_success"),
            last_error=state.get("last_error") if failed_later else None,
            last_error_at=state.get("last_error_at") if failed_later else None,
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _changed(before: dict[str, ControlLimits], after: dict[str, ControlLimits]) -> frozenset[str]:
    return frozenset(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))

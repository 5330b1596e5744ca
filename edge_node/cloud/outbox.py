"""The edge's durable record of what goes up to the cloud: an outbox and high-water marks.

Its own SQLite file (cloud.sqlite next to the store): the outbox of alarms, defect records and
rule events (`CloudOutbox.add`), the marks of what was pushed, and the ledgers of minute
summaries and text-series changes already in the cloud (so late readings are re-pushed and
nothing is pushed twice after a restart).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factory_common.errors import EdgeError
from factory_common.sqlite import open_db

KINDS = ("alarm", "defect", "event")

DDL = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids never reused, so marks hold
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    payload TEXT NOT NULL,                 -- JSON
    added_at INTEGER NOT NULL,             -- epoch ms
    UNIQUE (kind, key)
);
CREATE TABLE IF NOT EXISTS marks (stream TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pushed_minutes (
    series TEXT NOT NULL,
    minute INTEGER NOT NULL,               -- ns
    n INTEGER NOT NULL,
    total REAL NOT NULL,
    PRIMARY KEY (series, minute)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pushed_changes (
    series TEXT NOT NULL,
    ts INTEGER NOT NULL,                   -- ns
    value TEXT,
    PRIMARY KEY (series, ts)
) WITHOUT ROWID;
"""


class OutboxError(EdgeError, ValueError):
    """A record cannot go into the outbox; the message says what to change."""


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    added_at: int


class CloudOutbox:
    """Thread-safe; every call is one short transaction, durable when it returns."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn = open_db(self.path, DDL)
        self._lock = threading.Lock()
        # Called after each add (from the adding thread): the link wakes the push with it.
        self.on_add: Callable[[], object] | None = None

    # ------------------------------------------------------------ the outbox

    def add(self, kind: str, payload: dict[str, Any], key: str) -> int:
        """Queue `payload` for the cloud under (kind, key). Adding the same key again (an
        alarm acknowledged, then cleared) replaces the queued record and queues it again;
        the cloud upserts by (edge, key), so it keeps one row with the newest state."""
        if kind not in KINDS:
            raise OutboxError(f"outbox kind {kind!r} is unknown: use one of {', '.join(KINDS)}")
        if not key or len(key) > 300:
            raise OutboxError(f"outbox key {key!r}: give 1 to 300 characters, unique per {kind}")
        try:
            text = json.dumps(payload, default=str, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise OutboxError(f"{kind} {key}: payload is not JSON ({exc})") from None
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("DELETE FROM outbox WHERE kind = ? AND key = ?", (kind, key))
                cursor = self._conn.execute(
                    "INSERT INTO outbox (kind, key, payload, added_at) VALUES (?, ?, ?, ?)",
                    (kind, key, text, time.time_ns() // 1_000_000),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        if self.on_add is not None:
            self.on_add()
        return int(cursor.lastrowid or 0)

    def pending(self, limit: int) -> list[OutboxRecord]:
        """The oldest records not yet pushed (id above the outbox mark)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, kind, key, payload, added_at FROM outbox WHERE id > ?"
                " ORDER BY id LIMIT ?",
                (self._mark("outbox"), limit),
            ).fetchall()
        return [OutboxRecord(i, k, key, json.loads(p), at) for i, k, key, p, at in rows]

    def pending_count(self) -> int:
        with self._lock:
            return self._conn.execute(
                "SELECT count(*) FROM outbox WHERE id > ?", (self._mark("outbox"),)
            ).fetchone()[0]

    def prune(self, older_than_ms: int) -> int:
        """Forget pushed records added before `older_than_ms` (the cloud has them)."""
        with self._lock:
            cursor = self._conn.execute(
                "DELETE FROM outbox WHERE id <= ? AND added_at < ?",
                (self._mark("outbox"), older_than_ms),
            )
            return cursor.rowcount

    # ------------------------------------------------------------ marks

    def _mark(self, stream: str) -> int:
        row = self._conn.execute("SELECT value FROM marks WHERE stream = ?", (stream,)).fetchone()
        return int(row[0]) if row else 0

    def mark(self, stream: str) -> int:
        with self._lock:
            return self._mark(stream)

    def marks(self) -> dict[str, int]:
        with self._lock:
            return dict(self._conn.execute("SELECT stream, value FROM marks"))

    def set_mark(self, stream: str, value: int) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO marks (stream, value) VALUES (?, ?)", (stream, value)
            )

    # ------------------------------------------------------------ ledgers

    def pushed_minutes(self, start: int, end: int) -> dict[tuple[str, int], tuple[int, float]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT series, minute, n, total FROM pushed_minutes"
                " WHERE minute >= ? AND minute < ?",
                (start, end),
            )
            return {(s, m): (n, total) for s, m, n, total in rows}

    def record_minutes(self, rows: Iterable[tuple[str, int, int, float]], mark: int) -> None:
        """(series, minute, n, sum) now in the cloud, and the new minutes mark, atomically."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO pushed_minutes (series, minute, n, total)"
                    " VALUES (?, ?, ?, ?)",
                    rows,
                )
                self._conn.execute(
                    "INSERT OR REPLACE INTO marks (stream, value) VALUES ('minutes', ?)",
                    (mark,),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def pushed_changes(self, series: str, start: int) -> list[tuple[int, str | None]]:
        """(ts, value) of this series' pushed changes from the last one before `start` on."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT ts, value FROM pushed_changes WHERE series = ? AND ts >= coalesce("
                "(SELECT max(ts) FROM pushed_changes WHERE series = ? AND ts < ?), ?)"
                " ORDER BY ts",
                (series, series, start, start),
            )
            return [(ts, value) for ts, value in rows]

    def record_changes(self, rows: Iterable[tuple[str, int, str | None]]) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO pushed_changes (series, ts, value) VALUES (?, ?, ?)",
                    rows,
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def forget_before(self, start: int) -> None:
        """Drop ledger entries older than the lookback, keeping each series' last change."""
        with self._lock:
            self._conn.execute("DELETE FROM pushed_minutes WHERE minute < ?", (start,))
            self._conn.execute(
                "DELETE FROM pushed_changes WHERE ts < ? AND ts < (SELECT max(ts) FROM"
                " pushed_changes AS p WHERE p.series = pushed_changes.series)",
                (start,),
            )

    def set_outbox_mark(self, last_id: int) -> None:
        self.set_mark("outbox", last_id)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

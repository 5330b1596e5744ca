"""Shelving (ISA-18.2): an operator hides an alarm for a limited time, with a reason.

A shelf holds the alarm's (source, rule), so a repeat of the same alarm while shelved stays
shelved too. It always expires: the standard wants shelving time-limited, so the alarm comes
back by itself. Expired shelves are closed (ended_by "expiry") the next time anyone asks,
which is when it matters. Stored beside the alarms, in the same SQLite file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from factory_common.errors import EdgeError
from factory_common.sqlite import open_db
from factory_common.wire import now_ns

MAX_SHELF_S = 12 * 3600  # one shift at most: a longer hiding is suppression, an engineering act
MIN_SHELF_S = 5
_SCHEMA = """
CREATE TABLE IF NOT EXISTS alarm_shelves (
    id INTEGER PRIMARY KEY,
    alarm_id INTEGER NOT NULL,
    source TEXT NOT NULL,
    rule TEXT NOT NULL,
    shelved_by TEXT NOT NULL,
    shelved_at INTEGER NOT NULL,   -- ns UTC
    expires_at INTEGER NOT NULL,
    reason TEXT NOT NULL,
    ended_at INTEGER,              -- unshelved by someone, or expired
    ended_by TEXT
);
CREATE INDEX IF NOT EXISTS alarm_shelves_open ON alarm_shelves (source, rule)
    WHERE ended_at IS NULL;
"""
_COLUMNS = (
    "id, alarm_id, source, rule, shelved_by, shelved_at, expires_at, reason, ended_at, ended_by"
)


class ShelfError(EdgeError, ValueError):
    """A shelving request that cannot be honoured; the message says why."""


class Shelves:
    def __init__(self, path: Path, clock: Callable[[], int] = now_ns) -> None:
        self._clock = clock  # ns; tests move it to an expiry instead of waiting for it
        self._db = open_db(Path(path), _SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def shelve(
        self, alarm_id: int, source: str, rule: str, user: str, seconds: float, reason: str
    ) -> dict[str, Any]:
        if not reason.strip():
            raise ShelfError("give a reason for shelving (it goes into the alarm journal)")
        if not MIN_SHELF_S <= seconds <= MAX_SHELF_S:
            raise ShelfError(f"shelve for {MIN_SHELF_S} s to {MAX_SHELF_S // 3600} h")
        now = self._clock()
        with self._lock:
            self._expire(now)
            self._db.execute(
                "UPDATE alarm_shelves SET ended_at = ?, ended_by = ?"
                " WHERE source = ? AND rule = ? AND ended_at IS NULL",
                (now, user, source, rule),
            )  # a new shelf replaces an open one (extends or shortens it)
            cursor = self._db.execute(
                "INSERT INTO alarm_shelves (alarm_id, source, rule, shelved_by, shelved_at,"
                " expires_at, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (alarm_id, source, rule, user, now, now + int(seconds * 1e9), reason.strip()),
            )
            return self._get(int(cursor.lastrowid or 0))

    def unshelve(self, source: str, rule: str, user: str) -> bool:
        with self._lock:
            self._db.execute(
                "UPDATE alarm_shelves SET ended_at = ?, ended_by = ?"
                " WHERE source = ? AND rule = ? AND ended_at IS NULL",
                (self._clock(), user, source, rule),
            )
            return bool(self._db.execute("SELECT changes()").fetchone()[0])

    def open(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(source, rule) -> the shelf in force now."""
        with self._lock:
            self._expire(self._clock())
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM alarm_shelves WHERE ended_at IS NULL"
            ).fetchall()
        return {(r[2], r[3]): _shelf(r) for r in rows}

    def recent(self, since: int, limit: int = 1000) -> list[dict[str, Any]]:
        with self._lock:
            self._expire(self._clock())
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM alarm_shelves WHERE shelved_at >= ? OR ended_at >= ?"
                " ORDER BY shelved_at DESC LIMIT ?",
                (since, since, limit),
            ).fetchall()
        return [_shelf(r) for r in rows]

    def _expire(self, now: int) -> None:
        """Under the lock: close shelves past their expiry, at their expiry time."""
        self._db.execute(
            "UPDATE alarm_shelves SET ended_at = expires_at, ended_by = 'expiry'"
            " WHERE ended_at IS NULL AND expires_at <= ?",
            (now,),
        )

    def _get(self, shelf_id: int) -> dict[str, Any]:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM alarm_shelves WHERE id = ?", (shelf_id,)
        ).fetchone()
        return _shelf(row)


def _shelf(row: tuple[Any, ...]) -> dict[str, Any]:
    names = [c.strip() for c in _COLUMNS.split(",")]
    return dict(zip(names, row, strict=True))

"""Rule firings in SQLite: rule id, trigger, once-per key, inputs, action results, outcome."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import msgspec

from factory_common.sqlite import open_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rule_firings (
    id INTEGER PRIMARY KEY,
    rule_id TEXT NOT NULL,
    trigger TEXT NOT NULL,
    key TEXT,                      -- the once_per value (JSON), NULL without once_per
    started_at INTEGER NOT NULL,   -- ns UTC
    finished_at INTEGER,
    inputs TEXT NOT NULL,          -- JSON: the context the conditions saw
    actions TEXT NOT NULL DEFAULT '[]',  -- JSON: one result per action
    outcome TEXT NOT NULL,         -- running, ok, failed, timeout, error, busy
    error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS rule_firings_rule ON rule_firings (rule_id, started_at);
CREATE INDEX IF NOT EXISTS rule_firings_key ON rule_firings (rule_id, key);
"""
_COLUMNS = "id, rule_id, trigger, key, started_at, finished_at, inputs, actions, outcome, error"
_encoder = msgspec.json.Encoder()


def to_json(value: Any) -> str:
    """JSON text of anything a rule saw (master-data objects included); unknown types as str."""
    return _encoder.encode(msgspec.to_builtins(value, enc_hook=_fallback)).decode()


def _fallback(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)  # pydantic models from master data
    return dump() if callable(dump) else str(value)


class FiringStore:
    def __init__(self, path: Path) -> None:
        self._db = open_db(path, _SCHEMA)
        self._lock = threading.Lock()

    def start(self, rule_id: str, trigger: str, key: str | None, inputs: Any, ts: int) -> int:
        """Recorded before the actions run, so a crash mid-firing still counts its key."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO rule_firings (rule_id, trigger, key, started_at, inputs, outcome)"
                " VALUES (?, ?, ?, ?, ?, 'running')",
                (rule_id, trigger, key, ts, to_json(inputs)),
            )
            return int(cursor.lastrowid or 0)

    def finish(self, firing_id: int, actions: list[Any], outcome: str, error: str, ts: int) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE rule_firings SET finished_at = ?, actions = ?, outcome = ?, error = ?"
                " WHERE id = ?",
                (ts, to_json(actions), outcome, error, firing_id),
            )

    def keys(self, rule_id: str, limit: int) -> list[str]:
        """The newest once-per keys of a rule (oldest first), to stay once-only after restarts."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key FROM rule_firings WHERE rule_id = ? AND key IS NOT NULL"
                " ORDER BY id DESC LIMIT ?",
                (rule_id, limit),
            ).fetchall()
        return [r[0] for r in reversed(rows)]

    def recent(self, rule_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        where, args = ("WHERE rule_id = ?", (rule_id,)) if rule_id else ("", ())
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM rule_firings {where} ORDER BY id DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        names = _COLUMNS.split(", ")
        out = []
        for row in rows:
            item = dict(zip(names, row, strict=True))
            for field in ("key", "inputs", "actions"):
                if item[field] is not None:
                    item[field] = msgspec.json.decode(item[field])
            out.append(item)
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()

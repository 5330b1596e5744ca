"""Alarms with a lifecycle (raised -> acknowledged -> cleared, or cleared before acknowledged),
who and when, persisted in SQLite, one active alarm per (source, rule), pushed live to subscribers.

States (ISA-18.2 style): `raised` (condition active, nobody acknowledged), `acknowledged`
(active, acknowledged), `cleared_unacked` (condition gone, still needs acknowledging),
`cleared` (gone and acknowledged: closed). A repeated raise of an active alarm counts up on
that alarm instead of creating another.

Thread use: methods may be called from the event loop or from worker threads (sync routes);
subscribers get changes on their own loop through call_soon_threadsafe.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import msgspec

from factory_common.errors import EdgeError
from factory_common.logs import get_logger
from factory_common.sqlite import open_db
from factory_common.wire import now_ns

SUBSCRIBER_QUEUE = 1000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    message TEXT NOT NULL,
    value TEXT,                    -- JSON of the value that raised it (last one when repeated)
    details TEXT,                  -- JSON object
    raised_at INTEGER NOT NULL,    -- ns UTC
    last_at INTEGER NOT NULL,
    count INTEGER NOT NULL DEFAULT 1,
    acked_at INTEGER, acked_by TEXT,
    cleared_at INTEGER, cleared_by TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS alarms_one_active ON alarms (source, rule)
    WHERE cleared_at IS NULL;
CREATE INDEX IF NOT EXISTS alarms_raised ON alarms (raised_at);
-- Every change in order, so another process (an API replica) can follow and push them live.
CREATE TABLE IF NOT EXISTS alarm_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    alarm_id INTEGER NOT NULL,
    kind TEXT NOT NULL
);
"""
CHANGES_KEPT = 10_000
_COLUMNS = (
    "id, source, rule, severity, message, value, details, raised_at, last_at, count,"
    " acked_at, acked_by, cleared_at, cleared_by"
)


class AlarmError(EdgeError, LookupError):
    """An alarm id that does not exist."""


class Outbox(Protocol):
    """The cloud outbox (edge_node/cloud): alarm changes go up to the central database."""

    def add(self, kind: str, payload: dict[str, Any], key: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class Alarm:
    id: int
    source: str
    rule: str
    severity: str
    message: str
    value: Any
    details: dict[str, Any]
    raised_at: int
    last_at: int
    count: int
    acked_at: int | None
    acked_by: str | None
    cleared_at: int | None
    cleared_by: str | None

    @property
    def active(self) -> bool:
        return self.cleared_at is None

    @property
    def state(self) -> str:
        if self.cleared_at is None:
            return "raised" if self.acked_at is None else "acknowledged"
        return "cleared_unacked" if self.acked_at is None else "cleared"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"state": self.state, "active": self.active}


@dataclass(frozen=True, slots=True)
class AlarmChange:
    kind: str  # raised, acknowledged, cleared
    alarm: Alarm


def cloud_payload(alarm: Alarm) -> dict[str, Any]:
    """The alarm as the cloud's alarms table names it (edge_node/cloud/rows.py)."""
    return alarm.as_dict() | {
        "series": alarm.source,
        "acknowledged_at": alarm.acked_at,
        "acknowledged_by": alarm.acked_by,
    }


def _row(row: tuple[Any, ...]) -> Alarm:
    values = list(row)
    values[5] = msgspec.json.decode(values[5]) if values[5] is not None else None
    values[6] = msgspec.json.decode(values[6]) if values[6] else {}
    return Alarm(*values)


class _Subscriber:
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[AlarmChange | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.overflowed = False
        self.ended = False

    def offer(self, change: AlarmChange) -> None:
        """Runs on the subscriber's loop; a reader that falls behind is cut off, not blocked on."""
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            self.overflowed = True

    def end(self) -> None:
        self.ended = True
        with contextlib.suppress(asyncio.QueueFull):  # full: it ends once it has drained
            self.queue.put_nowait(None)


class AlarmService:
    def __init__(self, path: Path, outbox: Outbox | None = None) -> None:
        self.path = Path(path)
        self._db = open_db(self.path, _SCHEMA)
        self._lock = threading.Lock()
        self._subscribers: set[_Subscriber] = set()
        self._ended = False
        self._own: set[int] = set()  # change seqs this process made (follow() skips them)
        self._following = False
        self.outbox = outbox
        self._log = get_logger(component="alarms")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------ changes

    def raise_(
        self,
        source: str,
        rule: str,
        message: str,
        *,
        severity: str = "warning",
        value: Any = None,
        details: dict[str, Any] | None = None,
        ts: int | None = None,
    ) -> Alarm:
        """Raise an alarm, or count one more occurrence of the active one for (source, rule)."""
        ts = ts or now_ns()
        value_json = msgspec.json.encode(value).decode()
        with self._lock:
            found = self._db.execute(
                "SELECT id FROM alarms WHERE source = ? AND rule = ? AND cleared_at IS NULL",
                (source, rule),
            ).fetchone()
            if found is not None:
                self._db.execute(
                    "UPDATE alarms SET count = count + 1, last_at = ?, value = ?, message = ?"
                    " WHERE id = ?",
                    (ts, value_json, message, found[0]),
                )
                return self._get(found[0])
            cursor = self._db.execute(
                "INSERT INTO alarms (source, rule, severity, message, value, details, raised_at,"
                " last_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (source, rule, severity, message, value_json,
                 msgspec.json.encode(details or {}).decode(), ts, ts),
            )  # fmt: skip
            alarm = self._get(int(cursor.lastrowid or 0))
            self._record(alarm.id, "raised")
        self._changed("raised", alarm)
        return alarm

    def acknowledge(self, alarm_id: int, user: str) -> Alarm:
        """Acknowledge (idempotent: a second acknowledgement keeps the first's who and when)."""
        with self._lock:
            self._db.execute(
                "UPDATE alarms SET acked_at = ?, acked_by = ? WHERE id = ? AND acked_at IS NULL",
                (now_ns(), user, alarm_id),
            )
            changed = self._db.execute("SELECT changes()").fetchone()[0]
            alarm = self._get(alarm_id)
            if changed:
                self._record(alarm_id, "acknowledged")
        if changed:
            self._changed("acknowledged", alarm)
        return alarm

    def clear(self, alarm_id: int, by: str = "system") -> Alarm:
        """The condition is gone (idempotent)."""
        with self._lock:
            self._db.execute(
                "UPDATE alarms SET cleared_at = ?, cleared_by = ?"
                " WHERE id = ? AND cleared_at IS NULL",
                (now_ns(), by, alarm_id),
            )
            changed = self._db.execute("SELECT changes()").fetchone()[0]
            alarm = self._get(alarm_id)
            if changed:
                self._record(alarm_id, "cleared")
        if changed:
            self._changed("cleared", alarm)
        return alarm

    def clear_active(self, source: str, rule: str, by: str = "system") -> Alarm | None:
        """Clear the active alarm of (source, rule), if there is one."""
        found = self.find_active(source, rule)
        return self.clear(found.id, by) if found is not None else None

    # ------------------------------------------------------------ queries

    def get(self, alarm_id: int) -> Alarm:
        with self._lock:
            return self._get(alarm_id)

    def _get(self, alarm_id: int) -> Alarm:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM alarms WHERE id = ?", (alarm_id,)
        ).fetchone()
        if row is None:
            raise AlarmError(f"no alarm with id {alarm_id}")
        return _row(row)

    def find_active(self, source: str, rule: str) -> Alarm | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM alarms"
                " WHERE source = ? AND rule = ? AND cleared_at IS NULL",
                (source, rule),
            ).fetchone()
        return _row(row) if row else None

    def active(self) -> list[Alarm]:
        """Alarms whose condition is still present, newest first."""
        return self._select("cleared_at IS NULL", ())

    def unacknowledged(self) -> list[Alarm]:
        return self._select("acked_at IS NULL", ())

    def history(
        self, since: int = 0, until: int | None = None, source: str | None = None, limit: int = 500
    ) -> list[Alarm]:
        """Alarms raised in [since, until), newest first."""
        where = "raised_at >= ? AND raised_at < ?"
        args: list[int | str] = [since, until or 2**63 - 1]
        if source is not None:
            where += " AND source = ?"
            args.append(source)
        return self._select(where, tuple(args), limit)

    def _select(self, where: str, args: tuple[Any, ...], limit: int = 1000) -> list[Alarm]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM alarms WHERE {where} ORDER BY raised_at DESC, id DESC"
                " LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [_row(r) for r in rows]

    # ------------------------------------------------------------ live push

    def subscribe(self) -> AsyncGenerator[AlarmChange, None]:
        """Every change from now on: registered at this call, not at the first next(), so a
        stream that has told its client it is connected misses nothing raised after that.
        Ends if this reader falls SUBSCRIBER_QUEUE behind or at shutdown (end_subscriptions)."""
        subscriber = _Subscriber()
        if not self._ended:
            self._subscribers.add(subscriber)
        return self._changes(subscriber)

    async def _changes(self, subscriber: _Subscriber) -> AsyncGenerator[AlarmChange, None]:
        if self._ended:
            self._subscribers.discard(subscriber)
            return
        try:
            while True:
                change = await subscriber.queue.get()
                if change is None:
                    return
                yield change
                if (subscriber.overflowed or subscriber.ended) and subscriber.queue.empty():
                    return
        finally:
            self._subscribers.discard(subscriber)

    def end_subscriptions(self) -> None:
        """Shutdown: every subscription ends (after what it has queued), so live HTTP streams
        finish and the server can stop; later subscribe() calls end at once."""
        self._ended = True
        for subscriber in list(self._subscribers):
            if not subscriber.loop.is_closed():
                subscriber.loop.call_soon_threadsafe(subscriber.end)

    def _record(self, alarm_id: int, kind: str) -> None:
        """Under the lock: append to the change log other processes follow."""
        cursor = self._db.execute(
            "INSERT INTO alarm_changes (alarm_id, kind) VALUES (?, ?)", (alarm_id, kind)
        )
        seq = int(cursor.lastrowid or 0)
        if self._following:
            self._own.add(seq)
        if seq % 1000 == 0:  # keep the log short; followers are at most seconds behind
            self._db.execute("DELETE FROM alarm_changes WHERE seq <= ?", (seq - CHANGES_KEPT,))

    async def follow(self, interval: float = 0.5) -> None:
        """For a process that does not make the changes (an API replica): push the changes
        other processes write to the shared file to this process's subscribers."""
        self._following = True
        mark = await asyncio.to_thread(self._last_seq)
        while True:
            await asyncio.sleep(interval)
            for seq, kind, alarm in await asyncio.to_thread(self._changes_after, mark):
                mark = seq
                if seq in self._own:
                    self._own.discard(seq)  # published when this process made it
                else:
                    self._publish(AlarmChange(kind, alarm))

    def _last_seq(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT coalesce(max(seq), 0) FROM alarm_changes").fetchone()
        return int(row[0])

    def _changes_after(self, mark: int) -> list[tuple[int, str, Alarm]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind, alarm_id FROM alarm_changes WHERE seq > ? ORDER BY seq",
                (mark,),
            ).fetchall()
            return [(seq, kind, self._get(alarm_id)) for seq, kind, alarm_id in rows]

    def _changed(self, kind: str, alarm: Alarm) -> None:
        self._log.info(
            f"alarm_{kind}", id=alarm.id, source=alarm.source, rule=alarm.rule,
            message=alarm.message, by=alarm.acked_by if kind == "acknowledged" else None,
        )  # fmt: skip
        self._publish(AlarmChange(kind, alarm))
        if self.outbox is not None:
            # One key per alarm: the cloud upserts it, keeping the newest state.
            self.outbox.add("alarm", cloud_payload(alarm), f"alarm-{alarm.id}")

    def _publish(self, change: AlarmChange) -> None:
        for subscriber in list(self._subscribers):
            if not subscriber.loop.is_closed():
                subscriber.loop.call_soon_threadsafe(subscriber.offer, change)

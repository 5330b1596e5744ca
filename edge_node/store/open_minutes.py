"""The minute rollups not yet packed into minute blocks (`rollup_minute`), kept by a Store's
readers and brought up to date from a journal instead of read whole on every query.

Ingest upserts the current minute's rows on every commit, so they cannot be cached as they
are; but reading all of them on every chart request (an open hour of 23 series is ~1,400
rows, each eight Python objects out of sqlite3) cost about half of a warm day's chart.
Every write transaction that changes the table adds one row to `minute_changes`: `since`,
the earliest minute it upserted, or `removed_before`, the bound under which it deleted rows
(compaction packing finished hours, retention). All deletions have that shape. A reader that
has followed the journal up to rev R re-reads only the rows at or after the earliest `since`
after R, drops what lies under the highest `removed_before`, and keeps the rest. When the
journal no longer reaches back to R (the writer trims it), the reader reads everything again.

The caller runs `rows` inside one read transaction, so the journal and the rows it reads
are of the same commit.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from edge_node.store import rollups

JOURNAL_KEEP = 50_000  # journal rows the writer keeps: at 10 commits a second, over an hour
_COPIES = 16  # sets of series kept: one per chart operators have open, roughly
_COLUMNS = "series_id, minute, lo, hi, total, n, last_ts, last"


@dataclass(frozen=True)
class _Copy:
    rev: int  # the journal's last rev this copy includes (0: none yet)
    rows: dict[int, np.ndarray]  # series id -> its rollups.AGG rows in minute order, read-only


def note_upserted(conn: sqlite3.Connection, since: int) -> None:
    """Note (inside the writer's transaction) that rollup_minute rows from `since` on changed."""
    conn.execute("INSERT INTO minute_changes (since) VALUES (?)", (since,))


def note_removed(conn: sqlite3.Connection, bound: int) -> None:
    """Note (inside the writer's transaction) that rollup_minute rows under `bound` are gone."""
    conn.execute("INSERT INTO minute_changes (removed_before) VALUES (?)", (bound,))


def trim_journal(conn: sqlite3.Connection) -> None:
    """Keep the newest JOURNAL_KEEP rows: a reader whose copy is older reads the table whole."""
    conn.execute(
        "DELETE FROM minute_changes WHERE rev <= (SELECT max(rev) FROM minute_changes) - ?",
        (JOURNAL_KEEP,),
    )


class OpenMinutes:
    """Per set of series ids, a copy of their rows in `rollup_minute`; shared by threads.
    Copies are never changed in place: a thread that brings one up to date stores a new one."""

    def __init__(self, copies: int = _COPIES) -> None:
        self._copies: OrderedDict[tuple[int, ...], _Copy] = OrderedDict()
        self._limit = copies
        self._lock = threading.Lock()
        self.full_reads = 0  # for tests and the curious: how often a copy was read whole

    def rows(self, conn: sqlite3.Connection, ids: list[int]) -> dict[int, np.ndarray]:
        """Each series' unpacked minute rollups, in minute order (all of them, whatever
        range the caller wants: the table only holds the open hours and late backlogs)."""
        key = tuple(sorted(set(ids)))
        with self._lock:
            copy = self._copies.get(key)
            if copy is not None:
                self._copies.move_to_end(key)
        first, last = conn.execute("SELECT min(rev), max(rev) FROM minute_changes").fetchone()
        last = last or 0
        if copy is None or last < copy.rev or (first is not None and first > copy.rev + 1):
            fresh = _Copy(last, _read(conn, key, None))  # new, moved back, or trimmed past
            self.full_reads += 1
        elif last == copy.rev:
            return copy.rows
        else:
            fresh = _brought_up(conn, key, copy, last)
        with self._lock:
            held = self._copies.get(key)
            if held is None or held.rev <= fresh.rev:
                self._copies[key] = fresh
                self._copies.move_to_end(key)
            while len(self._copies) > self._limit:
                self._copies.popitem(last=False)
        return fresh.rows


def _brought_up(conn: sqlite3.Connection, key: tuple[int, ...], copy: _Copy, last: int) -> _Copy:
    since, removed = conn.execute(
        "SELECT min(since), max(removed_before) FROM minute_changes WHERE rev > ? AND rev <= ?",
        (copy.rev, last),
    ).fetchone()
    rows = copy.rows
    if removed is not None:  # deletions came first or not: what they removed stays removed
        rows = {sid: a[int(np.searchsorted(a["t"], removed)) :] for sid, a in rows.items()}
    if since is not None:  # everything upserted since the copy lies at or after `since`
        fresh = _read(conn, key, since)
        rows = {
            sid: _tail_replaced(a[: int(np.searchsorted(a["t"], since))], fresh.get(sid))
            for sid, a in rows.items()
        }
    return _Copy(last, rows)


def _tail_replaced(kept: np.ndarray, fresh: np.ndarray | None) -> np.ndarray:
    if fresh is None or not len(fresh):
        return kept
    if not len(kept):
        return fresh
    out = rollups.joined([kept, fresh])
    out.flags.writeable = False
    return out


def _read(
    conn: sqlite3.Connection, key: tuple[int, ...], since: int | None
) -> dict[int, np.ndarray]:
    marks = ",".join("?" * len(key))
    if since is None:
        sql = f"SELECT {_COLUMNS} FROM rollup_minute WHERE series_id IN ({marks}) ORDER BY minute"
        args: tuple[int, ...] = key
    else:
        sql = (
            f"SELECT {_COLUMNS} FROM rollup_minute"
            f" WHERE minute >= ? AND series_id IN ({marks}) ORDER BY minute"
        )
        args = (since, *key)
    found = rollups.by_series(conn.execute(sql, args).fetchall())
    out = {sid: found.get(sid, rollups.EMPTY) for sid in key}
    for rows in out.values():
        rows.flags.writeable = False
    return out

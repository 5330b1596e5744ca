"""The store's single writer: exactly-once ingest of batches, gateway status, and compaction."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from edge_node.store.codec import decode_block, encode_block, pack_minutes
from edge_node.store.downsample import minute_summary
from edge_node.store.intervals import IntervalSet
from edge_node.store.model import HOUR_NS, QUALITY_CODE, WriteResult, value_kind
from factory_common.wire import Batch, GatewayStatus, Reading, encode, now_ns

_LatestRow = tuple[int, Any, int, str | None]


class Writer:
    """Owns the one write connection. Every public method is one transaction (or several
    complete ones): a crash leaves either all of a write or none of it, never half."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()  # ingest flushes and compaction come from worker threads
        self._ids: dict[tuple[str, str, str], int] = {}
        self._intervals: dict[str, IntervalSet] = {}
        self._load()

    def _load(self) -> None:
        rows = self._conn.execute("SELECT gateway, device, tag, id FROM series").fetchall()
        self._ids = {(g, d, t): i for g, d, t, i in rows}
        self._intervals = {}
        for gateway, lo, hi in self._conn.execute("SELECT gateway, lo, hi FROM received"):
            self._intervals.setdefault(gateway, IntervalSet()).add(lo, hi)

    def received(self, gateway: str) -> list[tuple[int, int]]:
        """The merged sequence ranges stored for a gateway (committed state)."""
        found = self._intervals.get(gateway)
        return found.ranges() if found else []

    def write(
        self, batches: Sequence[Batch], statuses: Sequence[GatewayStatus] = ()
    ) -> WriteResult:
        """Store every reading whose (gateway, seq) is not stored yet, in one transaction."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result, intervals = self._write(batches, statuses)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                self._load()  # series ids created in the rolled-back transaction are gone
                raise
            self._intervals.update(intervals)
            return result

    def _write(
        self, batches: Sequence[Batch], statuses: Sequence[GatewayStatus]
    ) -> tuple[WriteResult, dict[str, IntervalSet]]:
        working: dict[str, IntervalSet] = {}
        rows: list[tuple[int, int, Any, int, str | None]] = []
        latest: dict[int, _LatestRow] = {}
        duplicates = 0
        for batch in batches:
            seen = working.get(batch.gateway)
            if seen is None:
                seen = self._intervals.get(batch.gateway, IntervalSet()).copy()
                working[batch.gateway] = seen
            wanted = seen.missing(batch.first_seq, batch.last_seq)
            duplicates += len(batch.readings)
            for lo, hi in wanted:
                part = batch.readings[lo - batch.first_seq : hi - batch.first_seq + 1]
                self._rows(batch.gateway, part, rows, latest)
                duplicates -= len(part)
                seen.add(lo, hi)
        conn = self._conn
        conn.executemany("INSERT INTO recent VALUES (?, ?, ?, ?, ?)", rows)
        conn.executemany(
            "UPDATE series SET last_ts = ?, last_value = ?, last_quality = ?, last_reason = ?"
            " WHERE id = ? AND (last_ts IS NULL OR last_ts <= ?)",
            [(ts, v, q, r, sid, ts) for sid, (ts, v, q, r) in latest.items()],
        )
        changed = {g: s for g, s in working.items() if s.ranges() != self.received(g)}
        for gateway, seen in changed.items():
            conn.execute("DELETE FROM received WHERE gateway = ?", (gateway,))
            conn.executemany(
                "INSERT INTO received VALUES (?, ?, ?)",
                [(gateway, lo, hi) for lo, hi in seen.ranges()],
            )
        self._write_statuses(statuses)
        return WriteResult(len(rows), duplicates, len(statuses)), changed

    def _rows(
        self,
        gateway: str,
        readings: Sequence[Reading],
        rows: list[tuple[int, int, Any, int, str | None]],
        latest: dict[int, _LatestRow],
    ) -> None:
        ids = self._ids
        for r in readings:
            sid = ids.get((gateway, r.device, r.tag))
            if sid is None:
                sid = self._new_series(gateway, r)
            quality = QUALITY_CODE[r.quality]
            reason = r.reason or None
            rows.append((sid, r.ts, r.value, quality, reason))
            current = latest.get(sid)
            if current is None or r.ts >= current[0]:
                latest[sid] = (r.ts, r.value, quality, reason)

    def _new_series(self, gateway: str, reading: Reading) -> int:
        cursor = self._conn.execute(
            "INSERT INTO series (gateway, device, tag, kind, first_seen) VALUES (?, ?, ?, ?, ?)",
            (gateway, reading.device, reading.tag, value_kind(reading.value), now_ns()),
        )
        sid = int(cursor.lastrowid or 0)
        self._ids[(gateway, reading.device, reading.tag)] = sid
        return sid

    def _write_statuses(self, statuses: Sequence[GatewayStatus]) -> None:
        received_at = now_ns()
        self._conn.executemany(
            "INSERT OR REPLACE INTO gateway_status VALUES (?, ?, ?, ?, ?)",
            [(s.gateway, int(s.online), s.ts, received_at, encode(s)) for s in statuses],
        )

    # ------------------------------------------------------------ compaction

    def compact(self, before_ns: int) -> int:
        """Move readings of every UTC hour that ends at or before `before_ns` from `recent`
        into blocks, merging with a block already there (a backlog arriving late).

        One transaction per hour for all series, ending in one DELETE of that hour's rows:
        recent's pages hold every series interleaved (arrival order), so deleting series by
        series would rewrite each page once per series (measured: ~1,100 bytes written per
        reading for 23 series, against ~100 this way). Memory stays one series-hour at a time.
        At line scale (tens of readings/s) an hour compacts in well under a second; a much
        faster process would want recent partitioned by hour instead. Returns readings moved."""
        cutoff = before_ns - before_ns % HOUR_NS
        with self._lock:
            hours = [
                h
                for (h,) in self._conn.execute(
                    "SELECT DISTINCT ts - ts % ? FROM recent WHERE ts < ?", (HOUR_NS, cutoff)
                )
            ]
        moved = 0
        for hour in sorted(hours):
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    moved += self._compact_hour(hour)
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
        return moved

    def _compact_hour(self, hour: int) -> int:
        window = (hour, hour + HOUR_NS)
        sids = self._conn.execute(
            "SELECT DISTINCT series_id FROM recent WHERE ts >= ? AND ts < ?", window
        ).fetchall()
        for (sid,) in sids:
            rows = self._conn.execute(
                "SELECT ts, value, quality, reason FROM recent"
                " WHERE series_id = ? AND ts >= ? AND ts < ? ORDER BY ts, rowid",
                (sid, *window),
            ).fetchall()
            self._merge_block(sid, hour, rows)
        return self._conn.execute("DELETE FROM recent WHERE ts >= ? AND ts < ?", window).rowcount

    def _merge_block(
        self, sid: int, hour: int, rows: list[tuple[int, Any, int, str | None]]
    ) -> None:
        ts = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        values: list[Any] = [r[1] for r in rows]
        quality = np.fromiter((r[2] for r in rows), np.uint8, len(rows))
        reasons = [(i, r[3]) for i, r in enumerate(rows) if r[3]]
        found = self._conn.execute(
            "SELECT data FROM blocks WHERE series_id = ? AND hour = ?", (sid, hour)
        ).fetchone()
        if found is not None:
            ts, values, quality, reasons = _merge(
                decode_block(found[0]), ts, values, quality, reasons
            )
        if self._kind(sid) == "bool":
            values = [v if v is None else bool(v) for v in values]
        self._conn.execute(
            "INSERT OR REPLACE INTO blocks VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                sid,
                hour,
                len(ts),
                int(ts[0]),
                int(ts[-1]),
                encode_block(ts, values, quality, reasons),
                _minutes(hour, ts, values),
            ),
        )

    def _kind(self, sid: int) -> str:
        row = self._conn.execute("SELECT kind FROM series WHERE id = ?", (sid,)).fetchone()
        return str(row[0]) if row else "num"


def _minutes(hour: int, ts: np.ndarray, values: list[Any]) -> bytes | None:
    """The block's per-minute summary, or None when some value is not a number or bool."""
    if not all(v is None or isinstance(v, int | float) for v in values):
        return None
    numbers = np.array([np.nan if v is None else float(v) for v in values], np.float64)
    return pack_minutes(minute_summary(hour, ts, numbers))


def _merge(
    old: tuple[np.ndarray, Any, np.ndarray, list[tuple[int, str]]],
    ts: np.ndarray,
    values: list[Any],
    quality: np.ndarray,
    reasons: list[tuple[int, str]],
) -> tuple[np.ndarray, list[Any], np.ndarray, list[tuple[int, str]]]:
    """Old block first, then the new rows; a stable sort keeps arrival order for equal ts."""
    old_ts, old_values, old_quality, old_reasons = old
    old_list = old_values.tolist() if isinstance(old_values, np.ndarray) else list(old_values)
    all_ts = np.concatenate([old_ts, ts])
    order = np.argsort(all_ts, kind="stable")
    all_values = old_list + values
    all_quality = np.concatenate([old_quality, quality])
    offset = len(old_ts)
    by_index = dict(old_reasons) | {i + offset: reason for i, reason in reasons}
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    merged_reasons = sorted((int(position[i]), reason) for i, reason in by_index.items())
    return all_ts[order], [all_values[i] for i in order], all_quality[order], merged_reasons

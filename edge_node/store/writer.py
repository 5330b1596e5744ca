"""The store's single writer: exactly-once ingest of batches, gateway status, and compaction."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

from edge_node.store import open_minutes, rollups
from edge_node.store.chunks import Row, encode_chunk, pack_chunk
from edge_node.store.compaction import Compactor
from edge_node.store.intervals import IntervalSet
from edge_node.store.model import QUALITY_CODE, WriteResult, value_kind
from factory_common.wire import Batch, GatewayStatus, Reading, TagCatalogue, encode, now_ns

_LatestRow = tuple[int, Any, int, str | None]
_MINUTE_UPSERT = rollups.UPSERT.format(table="rollup_minute", key="minute")
_HOUR_UPSERT = rollups.UPSERT.format(table="rollup_hour", key="hour")


class Writer:
    """Owns the one write connection. Every public method is one transaction (or several
    complete ones): a crash leaves either all of a write or none of it, never half."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()  # ingest flushes and compaction come from worker threads
        self._ids: dict[tuple[str, str, str], int] = {}
        self._intervals: dict[str, IntervalSet] = {}
        self._load()
        self._compactor = Compactor(conn, self._lock)
        self._convert_schema_1()

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
        self,
        batches: Sequence[Batch],
        statuses: Sequence[GatewayStatus] = (),
        catalogues: Sequence[TagCatalogue] = (),
    ) -> WriteResult:
        """Store every reading whose (gateway, seq) is not stored yet, in one transaction."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result, intervals = self._write(batches, statuses)
                self._write_catalogues(catalogues)
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
        rows: list[Row] = []
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
        if rows:
            self.append_rows(rows)
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
        self._heard([b.gateway for b in batches] + [s.gateway for s in statuses if s.online])
        return WriteResult(len(rows), duplicates, len(statuses)), changed

    def append_rows(self, rows: Sequence[Row]) -> None:
        """One chunk for the rows, and their minute and hour rollups (inside a transaction)."""
        records, side = encode_chunk(rows)
        t_min, t_max, data, packed = pack_chunk(records, side)
        self._conn.execute(
            "INSERT INTO chunks (t_min, t_max, n, data, side) VALUES (?, ?, ?, ?, ?)",
            (t_min, t_max, len(records), data, packed),
        )
        keep = rollups.numeric(records)
        sid, ts, v = records["sid"][keep], records["ts"][keep], records["v"][keep]
        minutes = rollups.aggregate(sid, ts, v, rollups.MINUTE_NS)
        self._conn.executemany(_MINUTE_UPSERT, minutes)
        if minutes:  # readers' copies of rollup_minute follow this
            open_minutes.note_upserted(self._conn, min(row[0] for row in minutes))
        self._conn.executemany(_HOUR_UPSERT, rollups.aggregate(sid, ts, v, rollups.HOUR_NS))

    def _rows(
        self,
        gateway: str,
        readings: Sequence[Reading],
        rows: list[Row],
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

    def _heard(self, gateways: Sequence[str]) -> None:
        """A last will is sent by the broker, not the gateway: not hearing from it."""
        at = now_ns()
        self._conn.executemany(
            "INSERT OR REPLACE INTO gateway_heard VALUES (?, ?)", [(g, at) for g in set(gateways)]
        )

    def _write_catalogues(self, catalogues: Sequence[TagCatalogue]) -> None:
        self._conn.executemany(
            "INSERT OR REPLACE INTO tag_catalogue VALUES (?, ?, ?)",
            [(c.gateway, c.ts, encode(c)) for c in catalogues],
        )

    # ------------------------------------------------------------ compaction, retention

    def compact(self, before_ns: int) -> int:
        """Pack readings of UTC hours ending at or before `before_ns` into blocks and their
        minute rollups into minute blocks; returns readings moved (see compaction.py)."""
        return self._compactor.compact(before_ns)

    def drop_before(self, tables: dict[str, int]) -> int:
        """Retention: delete, per tier, what ends before its cutoff (ns); returns rows deleted."""
        return self._compactor.drop_before(tables)

    def _convert_schema_1(self) -> None:
        """A schema-1 store kept raw rows in `recent`: move them into chunks (with rollups) and
        rebuild rollups of the blocks from their raw values. Idempotent: one transaction."""
        conn = self._conn
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'recent'").fetchone()
        if found is None:
            return
        with self._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = conn.execute(
                    "SELECT series_id, ts, value, quality, reason FROM recent ORDER BY rowid"
                ).fetchall()
                kinds = dict(conn.execute("SELECT id, kind FROM series").fetchall())
                rows = [
                    (s, t, bool(v) if kinds.get(s) == "bool" and v is not None else v, q, r)
                    for s, t, v, q, r in rows
                ]
                if rows:
                    self.append_rows(rows)
                self._compactor.rollups_of_blocks()
                conn.execute("DROP TABLE recent")
                conn.execute("UPDATE blocks SET minutes = NULL")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

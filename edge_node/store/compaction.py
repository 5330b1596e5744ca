"""Compaction and retention: chunks become hourly blocks, minute rollups become minute blocks,
and each tier is dropped past its retention.

Compaction works in groups of whole chunks (about a million readings at most per transaction,
so memory stays bounded after a long backlog). A chunk that straddles the cutoff is split: its
readings before the cutoff are packed, the rest is written back as a smaller chunk. Freeing a
chunk deletes one row whose blob lives in overflow pages: SQLite puts those on the freelist
without rewriting them, which is why compaction now writes little more than the blocks.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import numpy as np

from edge_node.store import open_minutes, rollups
from edge_node.store.chunks import Chunks, decode_chunks, pack_chunk
from edge_node.store.codec import decode_block, encode_block
from edge_node.store.model import HOUR_NS

_GROUP_READINGS = 1_000_000
# At line rate each commit is a chunk of a few readings: an open hour is ~18,000 of them and
# reading them dominates a query. Runs of small chunks are merged into one (in place, so
# arrival order is kept) each time compaction runs.
_SMALL_CHUNK = 256  # a merged run is bigger, so it is never merged (rewritten) again
_MERGED_CHUNK = 65_536


class Compactor:
    def __init__(self, conn: sqlite3.Connection, lock: threading.Lock) -> None:
        self._conn = conn
        self._lock = lock

    def compact(self, before_ns: int) -> int:
        cutoff = before_ns - before_ns % HOUR_NS
        with self._lock:
            found = self._conn.execute(
                "SELECT id, n FROM chunks WHERE t_min < ? ORDER BY id", (cutoff,)
            ).fetchall()
        moved = 0
        group: list[int] = []
        size = 0
        for chunk_id, n in found:
            group.append(chunk_id)
            size += n
            if size >= _GROUP_READINGS:
                moved += self._transaction(self._compact_chunks, group, cutoff)
                group, size = [], 0
        if group:
            moved += self._transaction(self._compact_chunks, group, cutoff)
        self._transaction(self._pack_minutes, cutoff)
        self._transaction(self._merge_small_chunks)
        return moved

    def _merge_small_chunks(self) -> int:
        """Merge consecutive small chunks (by id) into one per run, at the run's first id."""
        runs: list[list[tuple[int, int]]] = [[]]
        for chunk_id, n in self._conn.execute("SELECT id, n FROM chunks ORDER BY id"):
            run = runs[-1]
            if n >= _SMALL_CHUNK or sum(r[1] for r in run) + n > _MERGED_CHUNK:
                runs.append([])
            if n < _SMALL_CHUNK:
                runs[-1].append((chunk_id, n))
        merged = 0
        for run in (r for r in runs if len(r) > 1):
            ids = [i for i, _ in run]
            marks = ",".join("?" * len(ids))
            rows = self._conn.execute(
                f"SELECT data, side FROM chunks WHERE id IN ({marks}) ORDER BY id", ids
            ).fetchall()
            chunks = decode_chunks(rows)
            records, side = chunks.subset(np.arange(len(chunks.records)))
            t_min, t_max, data, packed = pack_chunk(records, side)
            self._conn.execute(f"DELETE FROM chunks WHERE id IN ({marks})", ids)
            self._conn.execute(
                "INSERT INTO chunks (id, t_min, t_max, n, data, side) VALUES (?, ?, ?, ?, ?, ?)",
                (ids[0], t_min, t_max, len(records), data, packed),
            )
            merged += len(ids)
        return merged

    def _transaction(self, work: Any, *args: Any) -> int:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(*args)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return int(result or 0)

    def _compact_chunks(self, ids: list[int], cutoff: int) -> int:
        marks = ",".join("?" * len(ids))
        rows = self._conn.execute(
            f"SELECT id, n, data, side FROM chunks WHERE id IN ({marks}) ORDER BY id", ids
        ).fetchall()
        chunks = decode_chunks([(data, side) for _, _, data, side in rows])
        r = chunks.records
        old = np.flatnonzero(r["ts"] < cutoff)
        hours = r["ts"][old] - r["ts"][old] % HOUR_NS
        order = old[np.lexsort((r["ts"][old], hours, r["sid"][old]))]  # stable: ties keep arrival
        key = r["ts"][order] - r["ts"][order] % HOUR_NS
        sids = r["sid"][order]
        new = np.concatenate(([True], (sids[1:] != sids[:-1]) | (key[1:] != key[:-1])))
        bounds = np.flatnonzero(new)
        for lo, hi in zip(bounds.tolist(), [*bounds[1:].tolist(), len(order)], strict=True):
            idx = order[lo:hi]
            self._merge_block(int(r["sid"][idx[0]]), int(key[lo]), chunks, idx)
        self._conn.executemany("DELETE FROM chunks WHERE id = ?", [(i,) for i in ids])
        self._keep_rest(chunks, r["ts"] >= cutoff)
        return len(old)

    def _keep_rest(self, chunks: Chunks, rest: np.ndarray) -> None:
        """Readings at or after the cutoff go back as one chunk (they arrived together)."""
        if rest.any():
            records, side = chunks.subset(np.flatnonzero(rest))
            t_min, t_max, data, packed = pack_chunk(records, side)
            self._conn.execute(
                "INSERT INTO chunks (t_min, t_max, n, data, side) VALUES (?, ?, ?, ?, ?)",
                (t_min, t_max, len(records), data, packed),
            )

    def _merge_block(self, sid: int, hour: int, chunks: Chunks, idx: np.ndarray) -> None:
        ts = chunks.records["ts"][idx]
        values = chunks.values(idx)
        quality = chunks.records["q"][idx].copy()
        known = chunks.reasons
        reasons = [(j, known[int(i)]) for j, i in enumerate(idx) if int(i) in known]
        found = self._conn.execute(
            "SELECT data FROM blocks WHERE series_id = ? AND hour = ?", (sid, hour)
        ).fetchone()
        if found is not None:
            ts, values, quality, reasons = _merge(
                decode_block(found[0]), ts, values, quality, reasons
            )
        blob = encode_block(ts, values, quality, reasons)
        self._conn.execute(
            "INSERT OR REPLACE INTO blocks VALUES (?, ?, ?, ?, ?, ?, NULL)",
            (sid, hour, len(ts), int(ts[0]), int(ts[-1]), blob),
        )

    def _pack_minutes(self, cutoff: int) -> int:
        """Minute rollups of finished hours into one blob per (series, hour)."""
        rows = self._conn.execute(
            "SELECT series_id, minute, lo, hi, total, n, last_ts, last FROM rollup_minute"
            " WHERE minute < ? ORDER BY series_id, minute",
            (cutoff,),
        ).fetchall()
        groups: dict[tuple[int, int], list[tuple[Any, ...]]] = {}
        for row in rows:
            groups.setdefault((row[0], row[1] - row[1] % HOUR_NS), []).append(row[1:])
        for (sid, hour), part in groups.items():
            self._store_minutes(sid, hour, rollups.from_rows(part))
        if rows:
            self._conn.execute("DELETE FROM rollup_minute WHERE minute < ?", (cutoff,))
            open_minutes.note_removed(self._conn, cutoff)
        open_minutes.trim_journal(self._conn)
        return len(rows)

    def _store_minutes(self, sid: int, hour: int, agg: np.ndarray) -> None:
        found = self._conn.execute(
            "SELECT data FROM minute_blocks WHERE series_id = ? AND hour = ?", (sid, hour)
        ).fetchone()
        parts = [agg] if found is None else [rollups.unpack(found[0]), agg]
        self._conn.execute(
            "INSERT OR REPLACE INTO minute_blocks VALUES (?, ?, ?)",
            (sid, hour, rollups.pack(rollups.merge(parts))),
        )

    def rollups_of_blocks(self) -> None:
        """Schema-1 conversion (inside the caller's transaction): minute and hour rollups
        of every block, from its raw values."""
        for sid, hour, blob in self._conn.execute("SELECT series_id, hour, data FROM blocks"):
            ts, values, _q, _r = decode_block(blob)
            if not isinstance(values, np.ndarray):
                continue  # strings: no rollups
            v = values.astype(np.float64)
            sids = np.full(len(ts), sid, np.int64)
            minutes = rollups.aggregate(sids, ts, v, rollups.MINUTE_NS)
            if minutes:
                agg = rollups.from_rows([(m[0], *m[2:]) for m in minutes])
                self._store_minutes(sid, hour, agg)
            hours = rollups.aggregate(sids, ts, v, HOUR_NS)
            self._conn.executemany(rollups.UPSERT.format(table="rollup_hour", key="hour"), hours)

    def drop_before(self, cutoffs: dict[str, int]) -> int:
        """cutoffs: tier (raw | minute | hour) -> ns; what ends at or before it goes."""
        # Bare column on the left so SQLite can range-scan an index (bucket <= cutoff - width).
        statements = {
            "raw": [
                ("DELETE FROM blocks WHERE hour <= ?", HOUR_NS),
                ("DELETE FROM chunks WHERE t_max < ?", 1),
            ],
            "minute": [
                ("DELETE FROM minute_blocks WHERE hour <= ?", HOUR_NS),
                ("DELETE FROM rollup_minute WHERE minute <= ?", rollups.MINUTE_NS),
            ],
            "hour": [("DELETE FROM rollup_hour WHERE hour <= ?", HOUR_NS)],
        }

        def work() -> int:
            deleted = 0
            for tier, cutoff in cutoffs.items():
                for sql, width in statements[tier]:
                    count = self._conn.execute(sql, (cutoff - width,)).rowcount
                    if count and "rollup_minute" in sql:
                        open_minutes.note_removed(self._conn, cutoff - width + 1)
                    deleted += count
            return deleted

        return self._transaction(work)


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
    if isinstance(old_values, np.ndarray) and old_values.dtype == np.float64:
        old_list = [None if v != v else v for v in old_list]  # NaN was a missing value
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

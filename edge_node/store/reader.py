"""Read queries over series, recent rows and blocks; each call uses one read connection."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np

from edge_node.store.codec import decode_block, unpack_minutes
from edge_node.store.downsample import MINUTE_NS, Buckets, bucket_width, combine
from edge_node.store.model import (
    HOUR_NS,
    QUALITY_NAME,
    GatewayRecord,
    LatestValue,
    SeriesData,
    SeriesInfo,
    Values,
)

_SERIES_COLUMNS = "id, gateway, device, tag, kind, unit"


def list_series(conn: sqlite3.Connection) -> list[SeriesInfo]:
    rows = conn.execute(f"SELECT {_SERIES_COLUMNS} FROM series ORDER BY gateway, device, tag")
    return [SeriesInfo(*row) for row in rows]


def latest(conn: sqlite3.Connection) -> list[LatestValue]:
    rows = conn.execute(
        f"SELECT {_SERIES_COLUMNS}, last_ts, last_value, last_quality, last_reason FROM series"
        " WHERE last_ts IS NOT NULL ORDER BY gateway, device, tag"
    )
    out = []
    for row in rows:
        info = SeriesInfo(*row[:6])
        ts, value, quality, reason = row[6:]
        if info.kind == "bool" and isinstance(value, int):
            value = bool(value)
        out.append(LatestValue(info, ts, value, QUALITY_NAME.get(quality, "bad"), reason or ""))
    return out


def gateways(conn: sqlite3.Connection) -> list[GatewayRecord]:
    rows = conn.execute(
        "SELECT gateway, online, ts, received_at, payload FROM gateway_status ORDER BY gateway"
    )
    return [GatewayRecord(g, bool(o), ts, at, bytes(p)) for g, o, ts, at, p in rows]


def history(
    conn: sqlite3.Connection, series: Sequence[SeriesInfo], start: int, end: int
) -> list[SeriesData]:
    """Raw readings of each series with start <= ts < end, blocks and recent rows merged."""
    return [_one(conn, info, start, end) for info in series]


def downsample(
    conn: sqlite3.Connection, info: SeriesInfo, start: int, end: int, points: int
) -> Buckets | None:
    """min/max/mean buckets from the blocks' minute summaries plus raw recent rows.

    Buckets are whole minutes here (width rounded up to minutes, range widened to whole
    minutes). Returns None when summaries cannot answer: buckets under a minute, strings, or a
    block without a summary; the caller then reduces the raw history instead."""
    width = bucket_width(start, end, points)
    if width < MINUTE_NS or info.kind == "str":
        return None
    width = -(-width // MINUTE_NS) * MINUTE_NS
    origin, stop = start - start % MINUTE_NS, end + (-end) % MINUTE_NS
    parts = []
    blocks = conn.execute(
        "SELECT hour, minutes FROM blocks WHERE series_id = ? AND hour >= ? AND hour < ?",
        (info.id, origin - origin % HOUR_NS, stop),
    )
    for hour, blob in blocks:
        if blob is None:
            return None
        rows = unpack_minutes(blob)
        t = hour + rows[:, 0].astype(np.int64) * MINUTE_NS
        inside = (t >= origin) & (t < stop)
        parts.append((t[inside], *(rows[inside, i] for i in (1, 2, 3)), rows[inside, 4]))
    recent = conn.execute(
        "SELECT ts, value FROM recent WHERE series_id = ? AND ts >= ? AND ts < ?",
        (info.id, origin, stop),
    ).fetchall()
    numbers = [(t, float(v)) for t, v in recent if isinstance(v, int | float)]
    if numbers:
        t, v = (np.array(c) for c in zip(*numbers, strict=True))
        parts.append((t.astype(np.int64), v, v, v, np.ones(len(v))))
    if not parts:
        return combine(np.zeros(0, np.int64), *[np.zeros(0)] * 4, origin, width)
    t, mins, maxs, sums, counts = (np.concatenate(c) for c in zip(*parts, strict=True))
    return combine(t, mins, maxs, sums, counts.astype(np.int64), origin, width)


def _one(conn: sqlite3.Connection, info: SeriesInfo, start: int, end: int) -> SeriesData:
    parts: list[tuple[np.ndarray, Values, np.ndarray]] = []
    blocks = conn.execute(
        "SELECT data FROM blocks WHERE series_id = ? AND hour >= ? AND hour < ?"
        " AND t_max >= ? AND t_min < ? ORDER BY hour",
        (info.id, start - start % HOUR_NS, end, start, end),
    )
    for (blob,) in blocks:
        ts, values, quality, _reasons = decode_block(blob)
        lo, hi = np.searchsorted(ts, [start, end])
        parts.append((ts[lo:hi], values[lo:hi], quality[lo:hi]))
    rows = conn.execute(
        "SELECT ts, value, quality FROM recent WHERE series_id = ? AND ts >= ? AND ts < ?"
        " ORDER BY ts, rowid",
        (info.id, start, end),
    ).fetchall()
    if rows:
        ts_col, value_col, quality_col = zip(*rows, strict=True)
        parts.append(
            (
                np.array(ts_col, np.int64),
                _as_values(list(value_col), info.kind),
                np.array(quality_col, np.uint8),
            )
        )
    return _concat(info, parts)


def _as_values(values: list[Any], kind: str) -> Values:
    """Recent rows come back as Python scalars; turn them into the array a block would give."""
    if kind == "bool" and all(isinstance(v, int) for v in values):
        return np.array(values, dtype=bool)
    if kind == "num" and all(v is None or isinstance(v, int | float) for v in values):
        return np.array(values, dtype=np.float64)  # None becomes NaN
    return values


def _concat(info: SeriesInfo, parts: list[tuple[np.ndarray, Values, np.ndarray]]) -> SeriesData:
    if not parts:
        empty: Values = [] if info.kind == "str" else np.zeros(0, np.float64)
        return SeriesData(info, np.zeros(0, np.int64), empty, np.zeros(0, np.uint8))
    ts = np.concatenate([p[0] for p in parts])
    quality = np.concatenate([p[2] for p in parts])
    arrays = [p[1] for p in parts]
    values: Values
    if all(isinstance(a, np.ndarray) for a in arrays) and len({a.dtype for a in arrays}) == 1:
        values = np.concatenate(arrays)
    else:
        values = [v for a in arrays for v in (a.tolist() if isinstance(a, np.ndarray) else a)]
    if len(ts) > 1 and np.any(ts[1:] < ts[:-1]):
        # Recent rows older than a block's end (a late backlog not yet compacted).
        order = np.argsort(ts, kind="stable")
        ts, quality = ts[order], quality[order]
        values = values[order] if isinstance(values, np.ndarray) else [values[i] for i in order]
    return SeriesData(info, ts, values, quality)

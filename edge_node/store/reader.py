"""Read queries over series, chunks, blocks and rollups; each call uses one read connection."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import numpy as np

from edge_node.store import rollups
from edge_node.store.cache import DecodedCache
from edge_node.store.chunks import BOOL, NONE, NUM, Chunks, decode_chunks
from edge_node.store.codec import decode_block
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
_AGG_COLUMNS = "lo, hi, total, n, last_ts, last"


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


def catalogues(conn: sqlite3.Connection) -> list[bytes]:
    """The retained tag catalogue payloads (JSON), one per gateway."""
    rows = conn.execute("SELECT payload FROM tag_catalogue ORDER BY gateway")
    return [bytes(p) for (p,) in rows]


def heard(conn: sqlite3.Connection) -> dict[str, int]:
    """gateway -> ns when the edge last committed anything it sent."""
    return dict(conn.execute("SELECT gateway, at FROM gateway_heard"))


def open_chunks(conn: sqlite3.Connection, start: int, end: int) -> Chunks:
    """Every not-yet-compacted chunk with readings that may fall in [start, end)."""
    rows = conn.execute(
        "SELECT data, side FROM chunks WHERE t_max >= ? AND t_min < ? ORDER BY id", (start, end)
    ).fetchall()
    return decode_chunks(rows)


def history(
    conn: sqlite3.Connection,
    series: Sequence[SeriesInfo],
    start: int,
    end: int,
    cache: DecodedCache | None = None,
) -> list[SeriesData]:
    """Raw readings of each series with start <= ts < end, blocks and chunks merged.

    Decoded blocks come from `cache` when given (key: series, hour, reading count and blob
    size; a block only ever changes by growing). A thread pool for decoding measured slower
    than this one thread (GIL hand-offs between many small numpy calls)."""
    chunks = open_chunks(conn, start, end)
    out = []
    for info in series:
        rows = conn.execute(
            "SELECT hour, n, data FROM blocks WHERE series_id = ? AND hour >= ? AND hour < ?"
            " AND t_max >= ? AND t_min < ? ORDER BY hour",
            (info.id, start - start % HOUR_NS, end, start, end),
        )
        decoded = [
            cache.get(("block", info.id, hour, n, len(blob)), lambda b=blob: decode_block(b))
            if cache is not None
            else decode_block(blob)
            for hour, n, blob in rows
        ]
        out.append(_one(info, decoded, start, end, chunks))
    return out


def _one(
    info: SeriesInfo, decoded: list[tuple], start: int, end: int, chunks: Chunks
) -> SeriesData:
    parts: list[tuple[np.ndarray, Values, np.ndarray]] = []
    for ts, values, quality, _reasons in decoded:
        lo, hi = np.searchsorted(ts, [start, end])
        parts.append((ts[lo:hi], values[lo:hi], quality[lo:hi]))
    idx = chunks.select(info.id, start, end)
    if len(idx):
        r = chunks.records
        parts.append((r["ts"][idx], _chunk_values(chunks, idx, info.kind), r["q"][idx]))
    return _concat(info, parts)


def _chunk_values(chunks: Chunks, idx: np.ndarray, kind: str) -> Values:
    """As a block would give them: float64 for numbers (NaN: none), bool array, else a list."""
    kinds = chunks.records["k"][idx]
    if kind == "num" and np.isin(kinds, (NUM, NONE, BOOL)).all():
        return chunks.records["v"][idx].copy()
    if kind == "bool" and (kinds == BOOL).all():
        return chunks.records["v"][idx] != 0
    return chunks.values(idx)


def _concat(info: SeriesInfo, parts: list[tuple[np.ndarray, Values, np.ndarray]]) -> SeriesData:
    if not parts:
        empty: Values = [] if info.kind == "str" else np.zeros(0, np.float64)
        return SeriesData(info, np.zeros(0, np.int64), empty, np.zeros(0, np.uint8))
    if len(parts) == 1:  # copies: a block's arrays may be the cache's (read-only) ones
        ts, values, quality = parts[0]
        values = values.copy() if isinstance(values, np.ndarray) else list(values)
        return SeriesData(info, ts.copy(), values, quality.copy())
    ts = np.concatenate([p[0] for p in parts])
    quality = np.concatenate([p[2] for p in parts])
    arrays = [p[1] for p in parts]
    values: Values
    if all(isinstance(a, np.ndarray) for a in arrays) and len({a.dtype for a in arrays}) == 1:
        values = np.concatenate(arrays)
    else:
        values = [v for a in arrays for v in (a.tolist() if isinstance(a, np.ndarray) else a)]
    if len(ts) > 1 and np.any(ts[1:] < ts[:-1]):
        # Chunk readings older than a block's end (a late backlog not yet compacted).
        order = np.argsort(ts, kind="stable")
        ts, quality = ts[order], quality[order]
        values = values[order] if isinstance(values, np.ndarray) else [values[i] for i in order]
    return SeriesData(info, ts, values, quality)


def downsample(
    conn: sqlite3.Connection,
    info: SeriesInfo,
    start: int,
    end: int,
    points: int,
    cache: DecodedCache | None = None,
) -> Buckets | None:
    """min/max/mean/last buckets from the rollups: hour rollups when a bucket spans an hour or
    more (width rounded up to whole hours, range widened to whole hours), else minute rollups
    (whole minutes likewise). None when rollups cannot answer: buckets under a minute, or
    strings; the caller then reduces the raw history instead."""
    width = bucket_width(start, end, points)
    if width < MINUTE_NS or info.kind == "str":
        return None
    unit = HOUR_NS if width >= HOUR_NS else MINUTE_NS
    width = -(-width // unit) * unit
    origin, stop = start - start % unit, end + (-end) % unit
    if unit == HOUR_NS:
        agg = rollups.from_rows(
            conn.execute(
                f"SELECT hour, {_AGG_COLUMNS} FROM rollup_hour"
                " WHERE series_id = ? AND hour >= ? AND hour < ? ORDER BY hour",
                (info.id, origin, stop),
            ).fetchall()
        )
    else:
        agg = _minutes(conn, info.id, origin, stop, cache)
    return _buckets(agg, origin, width)


def _minutes(
    conn: sqlite3.Connection, sid: int, origin: int, stop: int, cache: DecodedCache | None
) -> np.ndarray:
    rows = conn.execute(
        "SELECT hour, data FROM minute_blocks WHERE series_id = ? AND hour >= ? AND hour < ?"
        " ORDER BY hour",
        (sid, origin - origin % HOUR_NS, stop),
    )
    parts = [
        cache.get(("minutes", sid, hour, hash(blob)), lambda b=blob: rollups.unpack(b))
        if cache is not None
        else rollups.unpack(blob)
        for hour, blob in rows
    ]
    live = conn.execute(
        f"SELECT minute, {_AGG_COLUMNS} FROM rollup_minute"
        " WHERE minute >= ? AND minute < ? AND series_id = ?",
        (origin, stop, sid),
    ).fetchall()
    agg = rollups.merge([*parts, rollups.from_rows(live)])
    return agg[(agg["t"] >= origin) & (agg["t"] < stop)]


def _buckets(agg: np.ndarray, origin: int, width: int) -> Buckets:
    b = combine(agg["t"], agg["lo"], agg["hi"], agg["total"], agg["n"], origin, width)
    if len(agg) == 0:
        return Buckets(b.t, b.min, b.max, b.mean, b.count, b.sum, last=np.zeros(0))
    index = (agg["t"] - origin) // width  # agg is sorted by t
    ends = np.flatnonzero(np.concatenate((index[1:] != index[:-1], [True])))
    return Buckets(b.t, b.min, b.max, b.mean, b.count, b.sum, last=agg["last"][ends])

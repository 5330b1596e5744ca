"""Per-minute and per-hour rollups (min, max, sum, count, last) kept up to date at ingest.

Ingest upserts one row per (bucket, series) touched by a commit into tables clustered by
(bucket, series): the rows of the current minute and hour sit together at the end of the
b-tree, so a commit dirties one or two pages however many series it has. Compaction packs a
finished hour's minute rows into one blob per (series, hour) (`minute_blocks`) so a week of
minutes is a few hundred blobs, not 10,000 rows per series. Hour rows stay rows: a year is
8,760 per series, read through an index on (series, hour) that changes once per hour.

min, max, sum and count merge exactly, and `last` merges by its timestamp, so rollups built
from any split of the readings (commits, late backlogs, packed and unpacked parts) combine to
what the whole would give.
"""

from __future__ import annotations

import numpy as np

from edge_node.store.chunks import BOOL, NUM
from edge_node.store.codec import compress, decompress

MINUTE_NS = 60_000_000_000
HOUR_NS = 3_600_000_000_000

UPSERT = """
INSERT INTO {table} ({key}, series_id, lo, hi, total, n, last_ts, last)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT ({key}, series_id) DO UPDATE SET
    lo = min(lo, excluded.lo),
    hi = max(hi, excluded.hi),
    total = total + excluded.total,
    n = n + excluded.n,
    last = CASE WHEN excluded.last_ts >= last_ts THEN excluded.last ELSE last END,
    last_ts = max(last_ts, excluded.last_ts)
"""


def aggregate(
    sid: np.ndarray, ts: np.ndarray, values: np.ndarray, width: int
) -> list[tuple[int, int, float, float, float, int, int, float]]:
    """Rows (bucket, series, min, max, sum, count, last_ts, last) for readings of many series;
    NaN values are skipped. Ties in ts: the later reading (in the order given) is last."""
    keep = ~np.isnan(values)
    sid, ts, values = sid[keep], ts[keep], values[keep]
    if len(ts) == 0:
        return []
    bucket = ts - ts % width
    order = np.lexsort((ts, bucket, sid))  # stable: equal ts keep their given order
    sid, ts, values, bucket = sid[order], ts[order], values[order], bucket[order]
    new = np.concatenate(([True], (sid[1:] != sid[:-1]) | (bucket[1:] != bucket[:-1])))
    starts = np.flatnonzero(new)
    ends = np.concatenate((starts[1:], [len(ts)])) - 1
    return list(
        zip(
            bucket[starts].tolist(),
            sid[starts].tolist(),
            np.minimum.reduceat(values, starts).tolist(),
            np.maximum.reduceat(values, starts).tolist(),
            np.add.reduceat(values, starts).tolist(),
            np.diff(np.concatenate((starts, [len(ts)]))).tolist(),
            ts[ends].tolist(),
            values[ends].tolist(),
            strict=True,
        )
    )


def numeric(records: np.ndarray) -> np.ndarray:
    """Mask of chunk records whose value counts in rollups (numbers and booleans)."""
    return (records["k"] == NUM) | (records["k"] == BOOL)


AGG = np.dtype(
    [
        ("t", "<i8"),
        ("lo", "<f8"),
        ("hi", "<f8"),
        ("total", "<f8"),
        ("n", "<i8"),
        ("last_ts", "<i8"),
        ("last", "<f8"),
    ]
)


def from_rows(rows: list[tuple]) -> np.ndarray:
    """Aggregates from SQL rows (bucket, lo, hi, total, n, last_ts, last)."""
    return np.array([tuple(r) for r in rows], AGG) if rows else np.zeros(0, AGG)


def merge(parts: list[np.ndarray]) -> np.ndarray:
    """Combine AGG arrays of one series into one row per bucket, sorted by bucket."""
    filled = [p for p in parts if len(p)]
    if not filled:
        return np.zeros(0, AGG)
    rows = np.concatenate(filled)
    if np.all(rows["t"][1:] > rows["t"][:-1]):
        return rows  # the usual case: packed hours and live minutes, in order, disjoint
    rows = rows[np.lexsort((rows["last_ts"], rows["t"]))]
    starts = np.flatnonzero(np.concatenate(([True], rows["t"][1:] != rows["t"][:-1])))
    ends = np.concatenate((starts[1:], [len(rows)])) - 1
    out = np.empty(len(starts), AGG)
    out["t"] = rows["t"][starts]
    out["lo"] = np.minimum.reduceat(rows["lo"], starts)
    out["hi"] = np.maximum.reduceat(rows["hi"], starts)
    out["total"] = np.add.reduceat(rows["total"], starts)
    out["n"] = np.add.reduceat(rows["n"], starts)
    out["last_ts"] = rows["last_ts"][ends]
    out["last"] = rows["last"][ends]
    return out


def pack(rows: np.ndarray) -> bytes:
    """AGG rows, field by field (each compresses on its own: bucket steps, counts are runs)."""
    columns = (np.ascontiguousarray(rows[name]).tobytes() for name in AGG.names)
    return compress(b"".join(columns))


def unpack(blob: bytes) -> np.ndarray:
    raw = decompress(blob)
    k = len(raw) // AGG.itemsize
    out = np.empty(k, AGG)
    offset = 0
    for name in AGG.names:
        size = AGG[name].itemsize * k
        out[name] = np.frombuffer(raw[offset : offset + size], AGG[name])
        offset += size
    return out

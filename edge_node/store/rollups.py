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

import msgspec
import numpy as np

from edge_node.store import codec
from edge_node.store.chunks import BOOL, NUM
from edge_node.store.codec import decompress

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


EMPTY = np.zeros(0, AGG)
EMPTY.flags.writeable = False


def from_rows(rows: list[tuple]) -> np.ndarray:
    """Aggregates from SQL rows (bucket, lo, hi, total, n, last_ts, last)."""
    return np.array([tuple(r) for r in rows], AGG) if rows else np.zeros(0, AGG)


def by_series(rows: list[tuple]) -> dict[int, np.ndarray]:
    """Per series id, aggregates from SQL rows (series id, bucket, lo, ..., last), in the
    order given within each series."""
    if not rows:
        return {}
    sids = np.array([r[0] for r in rows], np.int64)
    order = np.argsort(sids, kind="stable")
    sids, agg = sids[order], np.array([r[1:] for r in rows], AGG)[order]
    cuts = np.flatnonzero(sids[1:] != sids[:-1]) + 1
    bounds = zip(np.r_[0, cuts].tolist(), np.r_[cuts, len(sids)].tolist(), strict=True)
    return {int(sids[lo]): agg[lo:hi] for lo, hi in bounds}


def joined(parts: list[np.ndarray]) -> np.ndarray:
    """np.concatenate for AGG arrays, copied as bytes: concatenating the structured arrays
    themselves goes field by field through dtype promotion (measured ~8 times slower for a
    day's 24 hours of minutes)."""
    return np.concatenate([np.ascontiguousarray(p).view(np.uint8) for p in parts]).view(AGG)


def merge(parts: list[np.ndarray]) -> np.ndarray:
    """Combine AGG arrays of one series into one row per bucket, sorted by bucket."""
    filled = [p for p in parts if len(p)]
    if not filled:
        return np.zeros(0, AGG)
    rows = filled[0] if len(filled) == 1 else joined(filled)
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


class _Packed(msgspec.Struct, array_like=True):
    """A minute blob: integer columns delta-encoded, value columns as decimal-scaled integers
    where they round-trip exactly (process values usually do), else XORed float64 bits;
    the codec's encodings (codec.py). Measured: 0.84 -> 0.54 MB a day of 23 series."""

    k: int
    t0: int
    t: bytes
    n: bytes
    last_dt: bytes  # last_ts - t
    floats: list[tuple[int, bytes]]  # lo, hi, total, last: (decimals or -1, data)


_FLOATS = ("lo", "hi", "total", "last")
_V2 = b"\x02"  # a zstd frame (schema-2 blobs of the first cut) starts with 0x28
_packed_decoder = msgspec.msgpack.Decoder(_Packed)


def _pack_floats(values: np.ndarray) -> tuple[int, bytes]:
    found = codec._decimal_ints(values)
    if found is not None:
        return found[0], codec._encode_ints(found[1], 1)
    bits = values.view(np.uint64)
    return -1, codec._shuffle(bits ^ np.concatenate(([np.uint64(0)], bits[:-1])))


def _unpack_floats(decimals: int, data: bytes, k: int) -> np.ndarray:
    if decimals < 0:
        return codec._unxor(data, k)
    return codec._decode_ints(data, k, 1) / (10.0**decimals)


def pack(rows: np.ndarray) -> bytes:
    t0 = int(rows["t"][0])
    packed = _Packed(
        k=len(rows),
        t0=t0,
        t=codec._encode_ints(rows["t"] - t0, 1),
        n=codec._encode_ints(rows["n"], 1),
        last_dt=codec._encode_ints(rows["last_ts"] - rows["t"], 1),
        floats=[_pack_floats(np.ascontiguousarray(rows[name])) for name in _FLOATS],
    )
    return _V2 + msgspec.msgpack.encode(packed)


def unpack(blob: bytes) -> np.ndarray:
    if blob[:1] == _V2:
        p = _packed_decoder.decode(blob[1:])
        out = np.empty(p.k, AGG)
        out["t"] = codec._decode_ints(p.t, p.k, 1) + p.t0
        out["n"] = codec._decode_ints(p.n, p.k, 1)
        out["last_ts"] = codec._decode_ints(p.last_dt, p.k, 1) + out["t"]
        for name, (decimals, data) in zip(_FLOATS, p.floats, strict=True):
            out[name] = _unpack_floats(decimals, data, p.k)
        return out
    raw = decompress(blob)
    k = len(raw) // AGG.itemsize
    out = np.empty(k, AGG)
    offset = 0
    for name in AGG.names or ():
        size = AGG[name].itemsize * k
        out[name] = np.frombuffer(raw[offset : offset + size], AGG[name])
        offset += size
    return out

"""Ingest's staging format: one row per commit holding every reading of that commit.

Why (measured, docs/architecture.md "Edge time-series store"): a row per reading plus a
(series, ts) index cost ~126 bytes written per reading at ingest and ~114 more when compaction
deleted those rows again. One fixed-width record array per commit is written once (~22 bytes
a reading, zstd-compressed when the commit is large) and compaction frees it by deleting one
row. Readers join the arrays of many commits with one `np.frombuffer`, so the open hour stays
fast to query even at line rate (one small chunk per commit).

A record: series id, ts, value as float64, quality code, value kind. Values that are not
numbers or booleans (strings, integers beyond 2**53, ...) and non-empty reasons go into a
msgpack side list keyed by the reading's index in the chunk.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from edge_node.store.codec import compress, decompress

RECORD = np.dtype([("sid", "<u4"), ("ts", "<i8"), ("v", "<f8"), ("q", "u1"), ("k", "u1")])
NUM, BOOL, NONE, OBJECT = 0, 1, 2, 3  # value kinds in RECORD.k
_EXACT = 2**53
_COMPRESS_FROM = 256  # readings: small chunks stay raw so decoding thousands of them is cheap
_RAW, _ZSTD = b"R", b"Z"
_NO_BYTES = np.zeros(0, np.uint8)

Row = tuple[int, int, Any, int, str | None]  # series id, ts, value, quality code, reason


class Side(msgspec.Struct, array_like=True):
    objects: list[tuple[int, Any]] = []
    reasons: list[tuple[int, str]] = []


_side_decoder = msgspec.msgpack.Decoder(Side)


def _kind(value: Any) -> tuple[int, float]:
    if value is None:
        return NONE, np.nan
    if isinstance(value, bool):
        return BOOL, float(value)
    if isinstance(value, float) or (isinstance(value, int) and -_EXACT < value < _EXACT):
        return NUM, float(value)
    return OBJECT, np.nan


def encode_chunk(rows: Sequence[Row]) -> tuple[np.ndarray, Side]:
    """One commit's rows (arrival order) as records plus their side values."""
    records = np.empty(len(rows), RECORD)
    kinds = [_kind(r[2]) for r in rows]
    records["sid"] = [r[0] for r in rows]
    records["ts"] = [r[1] for r in rows]
    records["q"] = [r[3] for r in rows]
    records["k"] = [k for k, _ in kinds]
    records["v"] = [v for _, v in kinds]
    objects = [(i, rows[i][2]) for i, (k, _) in enumerate(kinds) if k == OBJECT]
    return records, Side(objects=objects, reasons=[(i, r[4]) for i, r in enumerate(rows) if r[4]])


def pack_chunk(records: np.ndarray, side: Side) -> tuple[int, int, bytes, bytes | None]:
    """(t_min, t_max, data, side blob) as stored in the chunks table."""
    raw = records.tobytes()
    data = _ZSTD + compress(raw, level=1) if len(records) >= _COMPRESS_FROM else _RAW + raw
    packed = msgspec.msgpack.encode(side) if side.objects or side.reasons else None
    return int(records["ts"].min()), int(records["ts"].max()), data, packed


@dataclass(slots=True)
class BySeries:
    """Every record's columns in (series, ts, arrival) order, and the record each came from:
    one series' readings are then contiguous slices instead of gathers from 22-byte records
    (~1.5 ms of every warm query over a day's open hour)."""

    order: np.ndarray  # record indexes
    sid: np.ndarray
    ts: np.ndarray
    v: np.ndarray
    q: np.ndarray
    k: np.ndarray


@dataclass(slots=True)
class Chunks:
    """Many chunks joined: records in arrival order, and side values by record index."""

    records: np.ndarray
    objects: dict[int, Any]
    reasons: dict[int, str]
    # Made by the first span(), so one query over many series sorts the open hour once and
    # the cached join keeps it for the next.
    _by_series: BySeries | None = None

    def by_series(self) -> BySeries:
        if self._by_series is None:  # two threads may both sort: the same result either way
            r = self.records
            order, sids, ts = _by_series_and_time(r["sid"], r["ts"])
            self._by_series = BySeries(order, sids, ts, r["v"][order], r["q"][order], r["k"][order])
        return self._by_series

    def span(self, sid: int, start: int, end: int) -> slice:
        """Where one series' records with start <= ts < end lie in by_series()."""
        s = self.by_series()
        # Keys of the array's own dtype: Python ints would cast all of it to int64 first.
        lo, hi = np.searchsorted(s.sid, np.array([sid, sid + 1], s.sid.dtype))
        first, last = np.searchsorted(s.ts[lo:hi], [start, end])
        return slice(int(lo + first), int(lo + last))

    def cache_bytes(self) -> int:
        """What a DecodedCache counts for this join: the records, their sorted columns (30
        bytes a record, counted before the first query makes them), and the side values."""
        sorted_columns = 30 * len(self.records)
        side = 64 * (len(self.objects) + len(self.reasons))
        return self.records.nbytes + sorted_columns + side + 64

    def subset(self, idx: np.ndarray) -> tuple[np.ndarray, Side]:
        """Records at idx (in that order) with their side values renumbered."""
        objects = [(j, self.objects[int(i)]) for j, i in enumerate(idx) if int(i) in self.objects]
        reasons = [(j, self.reasons[int(i)]) for j, i in enumerate(idx) if int(i) in self.reasons]
        return self.records[idx], Side(objects=objects, reasons=reasons)

    def values(self, idx: np.ndarray) -> list[Any]:
        """Python values of the records at idx (None, bool, float or the original object)."""
        out: list[Any] = self.records["v"][idx].tolist()
        kinds = self.records["k"][idx]
        for j in np.flatnonzero(kinds != NUM).tolist():
            out[j] = self.value(int(idx[j]))
        return out

    def value(self, i: int) -> Any:
        """The reading's value as it arrived (Python scalar)."""
        k = self.records["k"][i]
        if k == OBJECT:
            return self.objects[i]
        if k == NONE:
            return None
        v = float(self.records["v"][i])
        return bool(v) if k == BOOL else v


def _by_series_and_time(sid: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, ...]:
    """(record indexes in (series, ts, arrival) order, their series ids, their ts).
    Readings usually arrive in time order, so a stable sort by series alone (a radix sort
    when ids fit in 16 bits) is mostly enough; measured ~4x faster than lexsort. Late
    readings (a minute's merged chunk beside the seconds still arriving) are then put in
    place by one more stable sort of nearly sorted times: a full lexsort of the open hour
    cost ~7 ms for a dozen late readings, this ~0.5 ms."""
    small = sid.astype(np.uint16) if len(sid) and int(sid.max()) < 1 << 16 else sid
    order = np.argsort(small, kind="stable")
    sids, times = sid[order], ts[order]
    if np.any((times[1:] < times[:-1]) & (sids[1:] == sids[:-1])):
        by_time = _time_within_runs(sids, times)
        order, times = order[by_time], times[by_time]
    return order, sids, times


def _time_within_runs(sids: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The stable order that sorts each run of equal ids by time. One sort: each run's times
    are shifted above the previous run's, so the runs stay where they are; where the shifted
    times would not fit in int64 (timestamps far apart), run by run."""
    starts = np.concatenate(([0], np.flatnonzero(sids[1:] != sids[:-1]) + 1))
    sizes = np.diff(np.append(starts, len(times)))
    lows = np.minimum.reduceat(times, starts)
    spans = [
        hi - lo + 1
        for lo, hi in zip(lows.tolist(), np.maximum.reduceat(times, starts).tolist(), strict=True)
    ]
    if sum(spans) < 1 << 62:
        offsets = np.array([0, *itertools.accumulate(spans[:-1])], np.int64)
        key = times - np.repeat(lows, sizes)  # each run's times from 0: below its span
        key += np.repeat(offsets, sizes)
        return np.argsort(key, kind="stable")
    order = np.arange(len(times))
    for lo, n in zip(starts.tolist(), sizes.tolist(), strict=True):
        order[lo : lo + n] = lo + np.argsort(times[lo : lo + n], kind="stable")
    return order


def join_chunks(parts: Sequence[tuple[np.ndarray, dict[int, Any], dict[int, str]]]) -> Chunks:
    """Join decoded chunks (records, objects, reasons) in the order given."""
    objects: dict[int, Any] = {}
    reasons: dict[int, str] = {}
    offset = 0
    for records, objs, why in parts:
        objects.update((offset + i, v) for i, v in objs.items())
        reasons.update((offset + i, s) for i, s in why.items())
        offset += len(records)
    # Joined as bytes: concatenating the structured arrays copies field by field (~15x
    # slower for an open hour of ~60 chunks).
    joined = np.concatenate(
        [np.ascontiguousarray(p[0]).view(np.uint8) for p in parts] or [_NO_BYTES]
    )
    records = joined.view(RECORD)
    return Chunks(records, objects, reasons)


def decode_chunks(rows: Sequence[tuple[bytes, bytes | None]]) -> Chunks:
    """Join (data, side) chunk rows in the order given."""
    parts: list[bytes] = []
    objects: dict[int, Any] = {}
    reasons: dict[int, str] = {}
    offset = 0
    for data, packed in rows:
        raw = data[1:] if data[:1] == _RAW else decompress(data[1:])
        parts.append(raw)
        if packed is not None:
            side = _side_decoder.decode(packed)
            objects.update((offset + i, v) for i, v in side.objects)
            reasons.update((offset + i, s) for i, s in side.reasons)
        offset += len(raw) // RECORD.itemsize
    return Chunks(np.frombuffer(b"".join(parts), RECORD), objects, reasons)

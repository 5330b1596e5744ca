"""Read queries over series, chunks, blocks and rollups; each call uses one read connection."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from itertools import pairwise

import numpy as np

from edge_node.store import rollups
from edge_node.store.bulk import decode_blocks
from edge_node.store.cache import DecodedCache, size_of
from edge_node.store.chunks import BOOL, OBJECT, Chunks, decode_chunks, join_chunks
from edge_node.store.downsample import Buckets, combine_many, rollup_grid
from edge_node.store.model import (
    HOUR_NS,
    QUALITY_NAME,
    GatewayRecord,
    LatestValue,
    SeriesData,
    SeriesInfo,
    Values,
)
from edge_node.store.open_minutes import OpenMinutes

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


def open_chunks(
    conn: sqlite3.Connection, start: int, end: int, cache: DecodedCache | None = None
) -> Chunks:
    """Every not-yet-compacted chunk with readings that may fall in [start, end), joined.

    With a cache, each chunk is decoded once and the join (with its by-series order) is kept
    for the same set of chunks: a warm query over the open hour then reads only the chunks'
    ids and sizes. A chunk is rewritten only by merging, which changes its count and size."""
    if cache is None:
        rows = conn.execute(
            "SELECT data, side FROM chunks WHERE t_max >= ? AND t_min < ? ORDER BY id",
            (start, end),
        ).fetchall()
        return decode_chunks(rows)
    keys = tuple(
        conn.execute(
            "SELECT id, n, length(data), t_min, t_max FROM chunks"
            " WHERE t_max >= ? AND t_min < ? ORDER BY id",
            (start, end),
        ).fetchall()
    )
    if not keys:
        return join_chunks([])
    return cache.get(("chunks", keys), lambda: _join_chunks(conn, keys, cache))


def _join_chunks(conn: sqlite3.Connection, keys: tuple, cache: DecodedCache) -> Chunks:
    """Decoded chunks (each from the cache, or fetched in one query for those it lacks)."""
    lacking = [k[0] for k in keys if not cache.holds(("chunk", *k))]
    rows = _fetch(conn, "SELECT id, data, side FROM chunks WHERE id IN ({})", lacking)
    found = {i: (data, side) for i, data, side in rows}

    def one(key: tuple) -> tuple:
        row = found.get(key[0])
        if row is None:  # evicted since holds() by another thread: fetch it alone
            row = conn.execute("SELECT data, side FROM chunks WHERE id = ?", key[:1]).fetchone()
        c = decode_chunks([row])
        return c.records, c.objects, c.reasons

    return join_chunks([cache.get(("chunk", *k), partial(one, k)) for k in keys])


def _fetch(conn: sqlite3.Connection, sql: str, ids: list[int]) -> list[tuple]:
    """Rows for `ids` in batches within SQLite's limit on bound parameters."""
    out: list[tuple] = []
    for lo in range(0, len(ids), 500):
        batch = ids[lo : lo + 500]
        out += conn.execute(sql.format(",".join("?" * len(batch))), batch).fetchall()
    return out


def history(
    conn: sqlite3.Connection,
    series: Sequence[SeriesInfo],
    start: int,
    end: int,
    cache: DecodedCache | None = None,
) -> list[SeriesData]:
    """Raw readings of each series with start <= ts < end, blocks and chunks merged.

    Decoded blocks come from `cache` when given (key: series, hour, reading count and blob
    size; a block only ever changes by growing), and each series' blocks in range as one run
    (_cached_runs): a warm query then reads one key a series, not the blobs; the blocks it
    lacks are fetched in key order and decoded together (bulk.py). The series' arrays are
    views into one array per column (_assemble)."""
    with _snapshot(conn):  # compaction moves readings from chunks to blocks: one commit's view
        chunks = open_chunks(conn, start, end, cache)
        blocks = _blocks(conn, [info.id for info in series], start, end, cache)
    return _assemble([_parts(info, blocks.get(info.id, []), start, end, chunks) for info in series])


Part = tuple[np.ndarray, Values, np.ndarray, bool]  # ts, values, quality, any not good
Decoded = tuple[Part, bool]  # a block's part, and whether all of it is in range


def _blocks(
    conn: sqlite3.Connection, ids: list[int], start: int, end: int, cache: DecodedCache | None
) -> dict[int, list[Decoded]]:
    """Per series id, its decoded blocks overlapping [start, end) in hour order."""
    if not ids:
        return {}
    if cache is None:
        sql = _in_range(f"{_ROW}, data", ids)
        rows = conn.execute(sql, _block_args(ids, start, end)).fetchall()
        parts = map(_flagged, decode_blocks([r[5] for r in rows]))
        blocks = dict(zip((r[:2] for r in rows), parts, strict=True))
        return _group(rows, start, end, lambda row: blocks[row[:2]])
    return _cached_runs(conn, ids, start, end, cache)


_BLOCKS_IN_RANGE = (
    " FROM blocks WHERE series_id IN ({}) AND hour >= ? AND hour < ? AND t_max >= ? AND t_min < ?"
)
_ROW = "series_id, hour, n, t_min, t_max"
_KEY_ORDER = " ORDER BY series_id, hour"  # the primary key's order: one index range scan


def _in_range(columns: str, ids: list[int], tail: str = _KEY_ORDER) -> str:
    """SELECT of these columns of the series' blocks that overlap the range (_block_args)."""
    return f"SELECT {columns}" + _BLOCKS_IN_RANGE.format(",".join("?" * len(ids))) + tail


def _block_args(ids: list[int], start: int, end: int) -> tuple[int, ...]:
    return (*ids, start - start % HOUR_NS, end, start, end)


def _cached_runs(
    conn: sqlite3.Connection, ids: list[int], start: int, end: int, cache: DecodedCache
) -> dict[int, list[Decoded]]:
    """A series' blocks in range are kept together as one run, keyed by their hours, reading
    counts and sizes in one string a series: a warm day is then 23 rows and look-ups, not
    ~550 of each. history's read transaction makes the blocks read on a miss the ones the
    keys name. A run holds the same arrays as its blocks' own entries, so the cache
    counts them twice: its byte bound stays a bound."""
    key = "series_id, group_concat(hour || ':' || n || ':' || length(data))"
    sql = _in_range(key, ids, " GROUP BY series_id")
    found_runs = dict(conn.execute(sql, _block_args(ids, start, end)).fetchall())
    keys = {sid: ("run", sid, found_runs[sid]) for sid in ids if sid in found_runs}
    runs = dict(zip(keys, cache.peek_many(list(keys.values())), strict=True))
    lacking = [sid for sid, run in runs.items() if run is None]
    if lacking:
        rows, parts, sizes = _each_block(conn, lacking, start, end, cache)
        members: dict[int, list[int]] = {sid: [] for sid in lacking}
        for i, row in enumerate(rows):
            members[row[0]].append(i)
        fresh = []
        for sid, run in members.items():
            value = (
                tuple(parts[i] for i in run),
                _frozen(np.array([rows[i][3] for i in run], np.int64)),
                _frozen(np.array([rows[i][4] for i in run], np.int64)),
            )
            runs[sid] = value
            size = sum(sizes[i] for i in run) + value[1].nbytes + value[2].nbytes + 2 * 64
            fresh.append((keys[sid], value, size))
        cache.put_many(fresh)
    out = {}
    for sid, (parts, t_min, t_max) in runs.items():
        whole = ((t_min >= start) & (t_max < end)).tolist()
        out[sid] = list(zip(parts, whole, strict=True))
    return out


def _each_block(
    conn: sqlite3.Connection, ids: list[int], start: int, end: int, cache: DecodedCache
) -> tuple[list[tuple], list[Part], list[int]]:
    """The blocks' rows (series, hour, count, t_min, t_max, size) in key order, their decoded
    parts and the bytes the cache counts for each: from the cache (key: series, hour, reading
    count and blob size), the ones it lacks fetched in one query, decoded together (bulk.py)
    and put in the cache at once."""
    args = _block_args(ids, start, end)
    rows = conn.execute(_in_range(f"{_ROW}, length(data)", ids), args).fetchall()
    keys = [("block", r[0], r[1], r[2], r[5]) for r in rows]
    found = cache.peek_many(keys)
    sizes = [0 if value is None else size_of(value) for value in found]
    lacking = {r[:2] for r, value in zip(rows, found, strict=True) if value is None}
    if lacking:
        sql = _in_range(f"{_ROW}, length(data), data", ids)
        fetched = {r[:2]: r for r in conn.execute(sql, args) if r[:2] in lacking}
        parts = map(_flagged, decode_blocks([r[6] for r in fetched.values()]))
        fresh = dict(zip(fetched, parts, strict=True))
        entries = []
        for i, row in enumerate(rows):
            if found[i] is None:
                part = found[i] = fresh[row[:2]]
                sizes[i] = _part_bytes(part)
                entries.append((keys[i], part, sizes[i]))
        cache.put_many(entries)
    return rows, found, sizes


def _flagged(decoded: tuple) -> Part:
    """A decoded block's arrays, read-only (they go into the cache), and whether any of its
    readings is not good: worked out once per decode rather than by every query (a day is
    ~550 blocks)."""
    ts, values, quality, _reasons = decoded
    if isinstance(values, np.ndarray):
        _frozen(values)
    return _frozen(ts), values, _frozen(quality), bool(quality.any())


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _part_bytes(part: Part) -> int:
    """What `size_of` counts for a part: its arrays, 64 for the flag and for the tuple."""
    ts, values, quality, _bad = part
    held = values.nbytes if isinstance(values, np.ndarray) else size_of(values)
    return ts.nbytes + held + quality.nbytes + 2 * 64


def _group(
    rows: list[tuple], start: int, end: int, decode: Callable[[tuple], tuple]
) -> dict[int, list[Decoded]]:
    out: dict[int, list[Decoded]] = {}
    for row in rows:
        whole = row[3] >= start and row[4] < end
        out.setdefault(row[0], []).append((decode(row), whole))
    return out


def _parts(
    info: SeriesInfo, decoded: list[Decoded], start: int, end: int, chunks: Chunks
) -> tuple[SeriesInfo, list[Part]]:
    parts: list[Part] = []
    for (ts, values, quality, bad), whole in decoded:
        if whole:  # the block lies inside the range: no search needed
            parts.append((ts, values, quality, bad))
            continue
        lo, hi = np.searchsorted(ts, [start, end])
        parts.append((ts[lo:hi], values[lo:hi], quality[lo:hi], bad))
    span = chunks.span(info.id, start, end)
    if span.stop > span.start:
        columns = chunks.by_series()
        quality = columns.q[span]
        values = _chunk_values(chunks, span, info.kind)
        parts.append((columns.ts[span], values, quality, bool(quality.any())))
    return info, parts


def _chunk_values(chunks: Chunks, span: slice, kind: str) -> Values:
    """As a block would give them: float64 for numbers (NaN: none), bool array, else a list.
    Numbers are a view of the cached join's column: _assemble copies every part."""
    s = chunks.by_series()
    kinds = s.k[span]
    if kind == "num" and (kinds < OBJECT).all():  # numbers, None (NaN) or booleans
        return s.v[span]
    if kind == "bool" and (kinds == BOOL).all():
        return s.v[span] != 0
    return chunks.values(s.order[span])


def _assemble(found: list[tuple[SeriesInfo, list[Part]]]) -> list[SeriesData]:
    """Each series' parts joined into its own slices of one allocation for timestamps and
    float values, and one for quality codes: one call's arrays share memory. Why: a day of
    23 series is ~33 MB of fresh arrays; as 69 separate ones they were page-faulted 4 KiB at
    a time (measured ~3 times the copying itself), where one large allocation gets huge
    pages. Quality stays calloc's lazily zeroed pages unless some reading is not good. The
    copies also keep the cache's (read-only) arrays out of results."""
    sizes = [sum(len(p[0]) for p in parts) for _, parts in found]
    floats = [_float_parts(parts) for _, parts in found]
    total = sum(sizes)
    float_total = sum(n for n, f in zip(sizes, floats, strict=True) if f)
    memory = np.empty(8 * (total + float_total), np.uint8)
    ts_all = memory[: 8 * total].view(np.int64)
    values_all = memory[8 * total :].view(np.float64)
    quality_all = np.zeros(total, np.uint8)
    out = []
    at = at_values = 0
    for (info, parts), n, is_float in zip(found, sizes, floats, strict=True):
        if not parts:
            empty: Values = [] if info.kind == "str" else np.zeros(0, np.float64)
            out.append(SeriesData(info, ts_all[at:at], empty, quality_all[at:at]))
            continue
        ts, quality = ts_all[at : at + n], quality_all[at : at + n]
        np.concatenate([p[0] for p in parts], out=ts)
        if any(p[3] for p in parts):
            np.concatenate([p[2] for p in parts], out=quality)
        values: Values
        if is_float:
            values = values_all[at_values : at_values + n]
            np.concatenate([p[1] for p in parts], out=values)
            at_values += n
        else:
            values = _joined_values([p[1] for p in parts])
        at += n
        out.append(_in_time_order(SeriesData(info, ts, values, quality), parts))
    return out


def _float_parts(parts: list[Part]) -> bool:
    return bool(parts) and all(
        isinstance(p[1], np.ndarray) and p[1].dtype == np.float64 for p in parts
    )


def _joined_values(arrays: list[Values]) -> Values:
    numeric = [a for a in arrays if isinstance(a, np.ndarray)]
    if len(numeric) == len(arrays) and len({a.dtype for a in numeric}) == 1:
        return np.concatenate(numeric)  # a copy even of one part: the cache's are read-only
    return [v for a in arrays for v in (a.tolist() if isinstance(a, np.ndarray) else a)]


def _in_time_order(data: SeriesData, parts: list[Part]) -> SeriesData:
    """Each part is sorted and blocks hold disjoint hours: only where a part starts before
    the previous one ends (chunk readings older than a block's end, a late backlog not yet
    compacted) does the series need sorting."""
    filled = [p[0] for p in parts if len(p[0])]
    if all(b[0] >= a[-1] for a, b in pairwise(filled)):
        return data
    order = np.argsort(data.ts, kind="stable")
    data.ts[:] = data.ts[order]
    data.quality[:] = data.quality[order]
    values = data.values
    if isinstance(values, np.ndarray):
        values[:] = values[order]
    else:
        data.values = [values[i] for i in order]
    return data


def downsample(
    conn: sqlite3.Connection,
    series: Sequence[SeriesInfo],
    start: int,
    end: int,
    points: int,
    cache: DecodedCache | None = None,
    open_minutes: OpenMinutes | None = None,
) -> list[Buckets | None]:
    """Per series, min/max/mean/last buckets from the rollups: hour rollups when a bucket
    spans an hour or more (width rounded up to whole hours, range widened to whole hours),
    else minute rollups (whole minutes likewise). None when rollups cannot answer: buckets
    under a minute, or strings; the caller then reduces the raw history instead."""
    grid = rollup_grid(start, end, points)
    numeric = [info.id for info in series if info.kind != "str"]
    if grid is None or not numeric:
        return [None] * len(series)
    origin, width, stop, unit = grid
    if unit == HOUR_NS:
        found = {sid: [rollups_between(conn, sid, "hour", origin, stop)] for sid in numeric}
    else:
        found = _minute_runs(conn, numeric, origin, stop, cache, open_minutes)
    runs = [found[sid] for sid in numeric]
    agg = rollups.joined([part for run in runs for part in run])  # one copy for all series
    sizes = [sum(len(part) for part in run) for run in runs]
    columns = (agg["t"], agg["lo"], agg["hi"], agg["total"], agg["n"], agg["last"])
    buckets = dict(zip(numeric, combine_many(*columns, sizes, origin, width), strict=True))
    return [buckets.get(info.id) for info in series]


def rollups_between(
    conn: sqlite3.Connection,
    sid: int,
    unit: str,
    origin: int,
    stop: int,
    cache: DecodedCache | None = None,
) -> np.ndarray:
    """The series' "minute" or "hour" rollups (rollups.AGG rows) starting in [origin, stop)."""
    if unit == "hour":
        return rollups.from_rows(
            conn.execute(
                f"SELECT hour, {_AGG_COLUMNS} FROM rollup_hour"
                " WHERE series_id = ? AND hour >= ? AND hour < ? ORDER BY hour",
                (sid, origin, stop),
            ).fetchall()
        )
    return _minutes(conn, sid, origin, stop, cache)


def _minutes(
    conn: sqlite3.Connection, sid: int, origin: int, stop: int, cache: DecodedCache | None
) -> np.ndarray:
    return rollups.merge(_minute_runs(conn, [sid], origin, stop, cache)[sid])


def _minute_runs(
    conn: sqlite3.Connection,
    ids: list[int],
    origin: int,
    stop: int,
    cache: DecodedCache | None,
    open_minutes: OpenMinutes | None = None,
) -> dict[int, list[np.ndarray]]:
    """Per series id, its minute rollups starting in [origin, stop) as parts in time order
    that do not overlap: the finished hours' minute blocks (one query for all series; with a
    cache, each series' run of hours is unpacked and joined once), then the open hours' rows
    (one query for all series). Where a late backlog not yet compacted overlaps a finished
    hour, the two are merged into one part. All in one read transaction."""
    with _snapshot(conn):  # the journal, the packed hours and the open ones of one commit
        return _read_minute_runs(conn, ids, origin, stop, cache, open_minutes)


def _read_minute_runs(
    conn: sqlite3.Connection,
    ids: list[int],
    origin: int,
    stop: int,
    cache: DecodedCache | None,
    open_minutes: OpenMinutes | None,
) -> dict[int, list[np.ndarray]]:
    marks = ",".join("?" * len(ids))
    where = f"series_id IN ({marks}) AND hour >= ? AND hour < ?"
    args = (*ids, origin - origin % HOUR_NS, stop)
    if cache is None:
        runs: dict[int, list[bytes]] = {sid: [] for sid in ids}
        for sid, blob in conn.execute(
            f"SELECT series_id, data FROM minute_blocks WHERE {where} ORDER BY series_id, hour",
            args,
        ):
            runs[sid].append(blob)
        packed = {sid: _unpacked(run) for sid, run in runs.items()}
    else:
        packed = _cached_minutes(conn, ids, where, args, cache)
    if open_minutes is not None and _journaled(conn):
        open_rows = open_minutes.rows(conn, ids)  # all of them: cut to the range below
    else:
        live = conn.execute(
            f"SELECT series_id, minute, {_AGG_COLUMNS} FROM rollup_minute"
            f" WHERE minute >= ? AND minute < ? AND series_id IN ({marks}) ORDER BY minute",
            (origin, stop, *ids),
        ).fetchall()
        open_rows = rollups.by_series(live)  # each series' rows stay in minute order
    out = {}
    for sid in ids:
        old = packed[sid]
        lo, hi = np.searchsorted(old["t"], [origin, stop])
        live_rows = open_rows.get(sid, rollups.EMPTY)
        first, last = np.searchsorted(live_rows["t"], [origin, stop])
        parts = [old[lo:hi], live_rows[first:last]]
        if len(parts[0]) and len(parts[1]) and parts[1]["t"][0] <= parts[0]["t"][-1]:
            parts = [rollups.merge(parts)]
        out[sid] = parts
    return out


def _journaled(conn: sqlite3.Connection) -> bool:
    """Whether the file's writer notes its changes of rollup_minute (schema 3 on): a read-only
    replica may open a file an older ingest process still writes."""
    return bool(conn.execute("PRAGMA user_version").fetchone()[0] >= 3)


@contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction around several SELECTs (each is its own otherwise), unless the
    connection is in one already."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def _cached_minutes(
    conn: sqlite3.Connection, ids: list[int], where: str, args: tuple, cache: DecodedCache
) -> dict[int, np.ndarray]:
    """Each series' finished hours of minutes, unpacked and joined once. The key is the
    rowids of the series' hours: compaction only ever rewrites an hour with INSERT OR
    REPLACE, which gives the row a new rowid, so a warm query reads neither the blobs nor
    hashes them. The rowids come as one string a series (a day is ~550 rows otherwise); the
    caller's read transaction makes the blobs read on a miss the ones the key names."""
    found_keys = dict(
        conn.execute(
            f"SELECT series_id, group_concat(rowid) FROM minute_blocks WHERE {where}"
            " GROUP BY series_id",
            args,
        ).fetchall()
    )
    keys = {sid: ("minutes", sid, found_keys.get(sid, "")) for sid in ids}
    found = dict(zip(ids, cache.peek_many(list(keys.values())), strict=True))
    lacking = [sid for sid in ids if found[sid] is None]
    if not lacking:
        return found
    marks = ",".join("?" * len(lacking))
    runs: dict[int, list[bytes]] = {sid: [] for sid in lacking}
    for sid, blob in conn.execute(
        f"SELECT series_id, data FROM minute_blocks WHERE series_id IN ({marks})"
        " AND hour >= ? AND hour < ? ORDER BY series_id, hour",
        (*lacking, *args[-2:]),
    ):
        runs[sid].append(blob)
    for sid, run in runs.items():
        found[sid] = cache.get(keys[sid], partial(_unpacked, run))
    return found


def _unpacked(blobs: list[bytes]) -> np.ndarray:
    return rollups.merge([rollups.unpack(blob) for blob in blobs])

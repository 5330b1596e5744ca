"""The paper's query against the central (either design), answering exactly what the edge
answers: raw readings into numpy, and min/max/mean buckets on the edge's own grid as JSON."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import numpy as np
from answers import Raw
from central_db import Central, table

from edge_node.store.downsample import rollup_grid

_json = msgspec.json.Encoder()
EPOCH = "1970-01-01 00:00:00"
MS = 1_000_000  # ns
US = 1_000  # ns


def sql_time(ns: int) -> str:
    return str(np.datetime64(ns, "ns").astype("datetime64[us]")).replace("T", " ")


def _where(params: Sequence[int]) -> str:
    ids = ",".join(str(p) for p in params)
    return f"equipment_id = 1 AND parameter_id IN ({ids}) AND ts >= %s AND ts < %s"


def raw_query(
    conn: Any, design: str, params: Sequence[int], names: dict[int, str], start: int, end: int
) -> Callable[[], Raw]:
    """pymysql rows into numpy arrays per series, as the edge's history() returns them."""
    sql = (
        f"SELECT parameter_id, TIMESTAMPDIFF(MICROSECOND, '{EPOCH}', ts), value"
        f" FROM {table(design)} WHERE {_where(params)} ORDER BY parameter_id, ts"
    )

    def run() -> Raw:
        with conn.cursor() as cur:
            cur.execute(sql, (sql_time(start), sql_time(end)))
            rows = cur.fetchall()
        if not rows:
            return {}
        par, ts, vals = (np.array(c) for c in zip(*rows, strict=True))
        cuts = np.flatnonzero(np.diff(par)) + 1
        firsts = [int(par[0]), *(int(par[c]) for c in cuts)]
        split = zip(np.split(ts * US, cuts), np.split(vals.astype(float), cuts), strict=True)
        return {names[p]: pair for p, pair in zip(firsts, split, strict=True)}

    return run


def server_query(
    conn: Any, design: str, params: Sequence[int], start: int, end: int
) -> Callable[[], Any]:
    """The same rows read and aggregated on the server, none sent: the server's share."""
    sql = f"SELECT COUNT(*), SUM(value), MAX(ts) FROM {table(design)} WHERE {_where(params)}"

    def run() -> Any:
        with conn.cursor() as cur:
            cur.execute(sql, (sql_time(start), sql_time(end)))
            return cur.fetchall()

    return run


def down_query(
    conn: Any,
    design: str,
    params: Sequence[int],
    names: dict[int, str],
    span: tuple[int, int],
    points: int,
) -> Callable[[], bytes]:
    """min/max/mean/count per bucket on the grid the edge's rollups use (the same origin and
    width), as the edge API's JSON body."""
    start, end = span
    grid = rollup_grid(start, end, points)
    if grid is None:
        raise ValueError(f"{points} points over {(end - start) / 1e9:.0f} s: buckets under 1 min")
    origin, width = grid.origin, grid.width
    sql = (
        f"SELECT parameter_id, TIMESTAMPDIFF(MICROSECOND, %s, ts) DIV {width // US} AS b,"
        " MIN(value), MAX(value), SUM(value), COUNT(*)"
        f" FROM {table(design)} WHERE {_where(params)}"
        " GROUP BY parameter_id, b ORDER BY parameter_id, b"
    )

    def run() -> bytes:
        with conn.cursor() as cur:
            cur.execute(sql, (sql_time(origin), sql_time(start), sql_time(end)))
            rows = cur.fetchall()
        series: dict[int, dict[str, Any]] = {}
        for par, b, lo, hi, total, n in rows:
            s = series.get(par)
            if s is None:
                s = series[par] = {"name": names[par], "kind": "num", "unit": None}
                s |= {"mode": "minmax", "t": [], "min": [], "max": [], "mean": [], "count": []}
            s["t"].append((origin + int(b) * width) // MS)
            s["min"].append(float(lo))
            s["max"].append(float(hi))
            s["mean"].append(float(total) / int(n))
            s["count"].append(int(n))
        return _json.encode(list(series.values()))

    return run


def queries(
    central: Central, design: str, names: dict[int, str], span: tuple[int, int], points: int
) -> tuple[Any, dict[str, Callable[[], Any]]]:
    """(connection, {query name: run}) for one design; the caller closes the connection."""
    conn = central.connect()
    start, end = span
    every = sorted(names)
    few = every[:3]
    return conn, {
        "raw 23": raw_query(conn, design, every, names, start, end),
        "raw 3": raw_query(conn, design, few, names, start, end),
        "down 23": down_query(conn, design, every, names, span, points),
        "down 3": down_query(conn, design, few, names, span, points),
        "server 23": server_query(conn, design, every, start, end),
        "server 3": server_query(conn, design, few, start, end),
    }

"""The time series as plain rows for `edge-node export`: decoded readings and rollups.

The store keeps readings as compressed hourly blobs, useless to an auditor with SQL; these
functions turn a store (a consistent copy of it) into rows of plain columns, one day of one
series at a time so memory stays bounded however long the history is.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
from collections.abc import Iterator
from typing import Any, Final

import numpy as np

from edge_node.store import Store
from edge_node.store import reader as store_reader
from edge_node.store.model import HOUR_NS, QUALITY_NAME, SeriesData, SeriesInfo

DAY_NS: Final = 24 * HOUR_NS

# MySQL/MariaDB tables the time series becomes (dropped and made anew by each export).
TABLES: Final = {
    "series": (
        "gateway VARCHAR(128) NOT NULL, device VARCHAR(128) NOT NULL,"
        " tag VARCHAR(128) NOT NULL, kind VARCHAR(8) NOT NULL, unit VARCHAR(64) NULL,"
        " PRIMARY KEY (gateway, device, tag)"
    ),
    "readings": (
        "gateway VARCHAR(128) NOT NULL, device VARCHAR(128) NOT NULL,"
        " tag VARCHAR(128) NOT NULL, ts BIGINT NOT NULL COMMENT 'ns since 1970-01-01 UTC',"
        " at DATETIME(6) NOT NULL COMMENT 'UTC', value DOUBLE NULL COMMENT 'numbers; 1/0',"
        " text TEXT NULL COMMENT 'text values', quality VARCHAR(10) NOT NULL,"
        " KEY (gateway, device, tag, ts)"  # not unique: two readings may share a timestamp
    ),
    **{
        f"rollup_{unit}": (
            "gateway VARCHAR(128) NOT NULL, device VARCHAR(128) NOT NULL,"
            f" tag VARCHAR(128) NOT NULL, start BIGINT NOT NULL COMMENT 'ns, {unit} start',"
            " at DATETIME NOT NULL COMMENT 'UTC', min DOUBLE NOT NULL, max DOUBLE NOT NULL,"
            " mean DOUBLE NOT NULL, count BIGINT NOT NULL, last DOUBLE NOT NULL,"
            " PRIMARY KEY (gateway, device, tag, start)"
        )
        for unit in ("minute", "hour")
    },
}
_ROLLUP_COLUMNS = ("gateway", "device", "tag", "start", "at", "min", "max", "mean", "count", "last")
COLUMNS: Final = {
    "series": ("gateway", "device", "tag", "kind", "unit"),
    "readings": ("gateway", "device", "tag", "ts", "at", "value", "text", "quality"),
    **{f"rollup_{unit}": _ROLLUP_COLUMNS for unit in ("minute", "hour")},
}

Row = tuple[Any, ...]


_EPOCH: Final = dt.datetime(1970, 1, 1)


def utc(ns: int) -> dt.datetime:
    """A naive UTC datetime (what DATETIME columns hold), exact to the microsecond."""
    return _EPOCH + dt.timedelta(microseconds=ns // 1000)


def _plain(value: Any) -> tuple[float | None, str | None]:
    """(number, text) columns of one value: bools as 1/0, NaN (no value) as NULL."""
    if isinstance(value, str):
        return None, value
    if value is None:
        return None, None
    number = float(value)
    return (None if math.isnan(number) else number), None


def reading_rows(data: SeriesData) -> Iterator[Row]:
    info = data.series
    values = data.values.tolist() if isinstance(data.values, np.ndarray) else data.values
    for ts, value, quality in zip(data.ts.tolist(), values, data.quality.tolist(), strict=True):
        number, text = _plain(value)
        yield (info.gateway, info.device, info.tag, ts, utc(ts), number, text,
               QUALITY_NAME.get(quality, str(quality)))  # fmt: skip


def rollup_rows(info: SeriesInfo, agg: np.ndarray) -> Iterator[Row]:
    for t, lo, hi, total, n, last in zip(
        agg["t"].tolist(), agg["lo"].tolist(), agg["hi"].tolist(), agg["total"].tolist(),
        agg["n"].tolist(), agg["last"].tolist(), strict=True,
    ):  # fmt: skip
        yield (info.gateway, info.device, info.tag, t, utc(t), lo, hi, total / n, n, last)


def span(conn: sqlite3.Connection, info: SeriesInfo) -> tuple[int, int] | None:
    """[first, last] ns any reading of the series may have, from blocks and open chunks."""
    lo, hi = conn.execute(
        "SELECT min(t_min), max(t_max) FROM (SELECT t_min, t_max FROM blocks WHERE series_id = ?"
        " UNION ALL SELECT t_min, t_max FROM chunks)",
        (info.id,),
    ).fetchone()
    return None if lo is None else (int(lo), int(hi))


def count_readings(conn: sqlite3.Connection) -> int:
    (blocks,) = conn.execute("SELECT coalesce(sum(n), 0) FROM blocks").fetchone()
    (chunks,) = conn.execute("SELECT coalesce(sum(n), 0) FROM chunks").fetchone()
    return int(blocks) + int(chunks)


def daily_readings(store: Store, conn: sqlite3.Connection, info: SeriesInfo) -> Iterator[list[Row]]:
    """The series' readings, one list of rows per UTC day that has any."""
    bounds = span(conn, info)
    if bounds is None:
        return
    day = bounds[0] - bounds[0] % DAY_NS
    while day <= bounds[1]:
        (data,) = store.history([info], day, day + DAY_NS)
        if len(data):
            yield list(reading_rows(data))
        day += DAY_NS


def rollups(conn: sqlite3.Connection, info: SeriesInfo, unit: str) -> list[Row]:
    """Every minute (or hour) rollup of a numeric series; none for text series."""
    if info.kind == "str":
        return []
    agg = store_reader.rollups_between(conn, info.id, unit, 0, 2**63 - 1)
    return list(rollup_rows(info, agg))

"""The SQLite layout of the edge's time-series store, and how a connection is opened.

Tables (see docs/architecture.md for the measurements behind them):
- series: one row per (gateway, device, tag), with its latest value for the "latest" API.
- recent: append-only rows in arrival order; ingest writes only here, so each commit dirties a
  few tail pages instead of scattering writes across a clustered index (SD cards, SSDs).
- blocks: one row per (series, hour) of compressed columns (codec.py), built by compaction,
  with per-minute min/max/sum/count of its numbers so long-range charts skip the raw values.
- received: per gateway, the merged ranges of sequence numbers already stored; updated in the
  same transaction as the data, which is what makes ingest exactly-once.
- gateway_status: the latest retained GatewayStatus per gateway, as received.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_VERSION = 1

DDL = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    gateway TEXT NOT NULL,
    device TEXT NOT NULL,
    tag TEXT NOT NULL,
    kind TEXT NOT NULL,            -- num | bool | str: from the first value seen
    unit TEXT,
    first_seen INTEGER NOT NULL,   -- ns, wall clock of the edge
    last_ts INTEGER,
    last_value,
    last_quality INTEGER,
    last_reason TEXT,
    UNIQUE (gateway, device, tag)
);
CREATE TABLE IF NOT EXISTS recent (
    series_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    value,                         -- SQLite keeps REAL, INTEGER (bools: 0/1) or TEXT as given
    quality INTEGER NOT NULL,      -- 0 good, 1 uncertain, 2 bad
    reason TEXT
);
CREATE INDEX IF NOT EXISTS recent_series_ts ON recent (series_id, ts);
CREATE TABLE IF NOT EXISTS blocks (
    series_id INTEGER NOT NULL,
    hour INTEGER NOT NULL,         -- ns at the start of the UTC hour
    n INTEGER NOT NULL,
    t_min INTEGER NOT NULL,
    t_max INTEGER NOT NULL,
    data BLOB NOT NULL,
    minutes BLOB,                  -- float64 rows (minute, min, max, sum, count); NULL: strings
    PRIMARY KEY (series_id, hour)
);
CREATE TABLE IF NOT EXISTS received (
    gateway TEXT NOT NULL,
    lo INTEGER NOT NULL,
    hi INTEGER NOT NULL,
    PRIMARY KEY (gateway, lo)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gateway_status (
    gateway TEXT PRIMARY KEY,
    online INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    payload BLOB NOT NULL          -- the wire message as received (JSON)
);
"""


class StoreError(RuntimeError):
    """The store cannot be opened or used; the message says which file and what to do."""


def connect(path: Path, *, writer: bool) -> sqlite3.Connection:
    """Open a connection with the pragmas every user of the store needs.

    isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT) so the writer
    decides exactly what is atomic. Readers only ever run single SELECTs.
    """
    try:
        if writer:
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 5000")
        if writer:
            # WAL: readers (the API) never block the writer (ingest). synchronous=FULL makes
            # each commit durable: the edge acknowledges to the broker only after it.
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
        # KiB of page cache per connection: the writer's keeps recent's tail and indexes warm;
        # each API thread has its own reader, so theirs stay modest (a day of blocks ~7 MiB).
        conn.execute(f"PRAGMA cache_size = {-65536 if writer else -16384}")
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(f"cannot open the store {path}: {exc}; check the --data-dir") from None
    return conn


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {version}, newer than this edge-node ({SCHEMA_VERSION}):"
            " upgrade edge-node or point --data-dir elsewhere"
        )
    conn.executescript(DDL)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

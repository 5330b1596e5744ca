"""The SQLite layout of the edge's time-series store, and how a connection is opened.

Tables (docs/architecture.md "Edge time-series store" has the measurements behind them):
- series: one row per (gateway, device, tag), with its latest value for the "latest" API.
- chunks: one row per ingest commit holding all its readings as a packed array (chunks.py);
  ingest appends only here and to the rollup tables' tails, so a commit dirties a few pages.
- blocks: one row per (series, UTC hour) of compressed raw columns (codec.py), built from
  chunks by compaction.
- rollup_minute / rollup_hour: min, max, sum, count, last per (minute | hour, series), upserted
  at ingest; clustered by time so the current bucket's rows share a page.
- minute_blocks: a finished hour's minute rollups of one series in one blob (compaction).
- minute_changes: one row per write transaction that changed rollup_minute, so readers keep
  their copy of it up to date instead of reading it whole (open_minutes.py).
- received: per gateway, the merged ranges of sequence numbers already stored; updated in the
  same transaction as the data, which is what makes ingest exactly-once.
- gateway_status: the latest retained GatewayStatus per gateway, as received.
- tag_catalogue: the latest retained TagCatalogue per gateway; gateway_heard: when the edge
  last committed a batch or status of each gateway (shown beside a last will).
Version 1 (a `recent` row per reading, minute summaries inside blocks) is converted on open.
Version 3 adds minute_changes: an older edge-node would change rollup_minute without noting
it, so it must refuse a version-3 file rather than leave readers with stale copies.
Version 4 changes how new blocks and minute blobs are laid out (codec.py: grid timestamps,
a decimal block's base, planes stored one by one). Older blobs still read back, but an older
edge-node would misread the new ones, so it must refuse a version-4 file; read-only openers
check the version too (`check_version`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from factory_common.errors import EdgeError

SCHEMA_VERSION = 4

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
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,        -- commit order
    t_min INTEGER NOT NULL,
    t_max INTEGER NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL,            -- chunks.RECORD array, raw or zstd
    side BLOB                      -- msgpack: non-numeric values and reasons by index
);
-- No index on chunks: it holds only the open window (about an hour), which a scan reads in
-- milliseconds, while two indexes cost two more page writes per commit (measured).
DROP INDEX IF EXISTS chunks_t_max;
CREATE TABLE IF NOT EXISTS blocks (
    series_id INTEGER NOT NULL,
    hour INTEGER NOT NULL,         -- ns at the start of the UTC hour
    n INTEGER NOT NULL,
    t_min INTEGER NOT NULL,
    t_max INTEGER NOT NULL,
    data BLOB NOT NULL,
    minutes BLOB,                  -- schema 1 only; rollups live in minute_blocks now
    PRIMARY KEY (series_id, hour)
);
CREATE TABLE IF NOT EXISTS minute_blocks (
    series_id INTEGER NOT NULL,
    hour INTEGER NOT NULL,
    data BLOB NOT NULL,            -- rollups.pack of the hour's minute rollups
    PRIMARY KEY (series_id, hour)
);  -- a rowid table: WITHOUT ROWID spills ~1 KB rows into mostly empty overflow pages
CREATE TABLE IF NOT EXISTS rollup_minute (
    minute INTEGER NOT NULL,
    series_id INTEGER NOT NULL,
    lo REAL NOT NULL, hi REAL NOT NULL, total REAL NOT NULL, n INTEGER NOT NULL,
    last_ts INTEGER NOT NULL, last REAL NOT NULL,
    PRIMARY KEY (minute, series_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS minute_changes (
    rev INTEGER PRIMARY KEY,       -- the writer trims old rows but never the newest
    since INTEGER,                 -- the earliest minute the transaction upserted, or
    removed_before INTEGER         -- it deleted every row with minute < this
);
CREATE TABLE IF NOT EXISTS rollup_hour (
    hour INTEGER NOT NULL,
    series_id INTEGER NOT NULL,
    lo REAL NOT NULL, hi REAL NOT NULL, total REAL NOT NULL, n INTEGER NOT NULL,
    last_ts INTEGER NOT NULL, last REAL NOT NULL,
    PRIMARY KEY (hour, series_id)
) WITHOUT ROWID;
-- New entries once per series and hour only: the upserts above change no indexed column.
CREATE INDEX IF NOT EXISTS rollup_hour_series ON rollup_hour (series_id, hour);
-- Retention deletes by hour across all series (hourly); written once per block.
CREATE INDEX IF NOT EXISTS blocks_hour ON blocks (hour);
CREATE INDEX IF NOT EXISTS minute_blocks_hour ON minute_blocks (hour);
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
CREATE TABLE IF NOT EXISTS tag_catalogue (
    gateway TEXT PRIMARY KEY,
    ts INTEGER NOT NULL,
    payload BLOB NOT NULL          -- the wire TagCatalogue as received (JSON)
);
CREATE TABLE IF NOT EXISTS gateway_heard (
    gateway TEXT PRIMARY KEY,
    at INTEGER NOT NULL            -- ns, edge clock: the last commit holding anything of it
);
"""


class StoreError(EdgeError, RuntimeError):
    """The store cannot be opened or used; the message says which file and what to do."""


def connect(path: Path, *, writer: bool, must_exist: bool = False) -> sqlite3.Connection:
    """Open a connection with the pragmas every user of the store needs.

    isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT) so the writer
    decides exactly what is atomic. Readers only ever run single SELECTs.
    """
    try:
        if writer:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif must_exist and not path.exists():
            raise OSError("no such file (is the ingest process running with this store?)")
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 5000")
        if not writer:
            conn.execute("PRAGMA query_only = 1")  # API replicas share the file read-only
            # Memory-mapped reads let the kernel read ahead through a series' block blobs:
            # a cold day of 23 series measured 250-440 ms with read() calls, 120-240 mapped.
            conn.execute(f"PRAGMA mmap_size = {256 * 2**20}")
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


def check_version(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a file written by a newer edge-node: its blocks may be laid out in a way this
    one would misread."""
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read the store {path}: {exc}; check the --data-dir") from None
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {version}, newer than this edge-node ({SCHEMA_VERSION}):"
            " upgrade edge-node or point --data-dir elsewhere"
        )


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    check_version(conn, path)
    _rowid_minute_blocks(conn)
    conn.executescript(DDL)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _rowid_minute_blocks(conn: sqlite3.Connection) -> None:
    """The first schema-2 files made minute_blocks WITHOUT ROWID (measured 2.4 MB of pages
    for 0.8 MB of blobs a day): rebuild it as a rowid table, in one transaction."""
    found = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'minute_blocks'").fetchone()
    if found is None or "WITHOUT ROWID" not in found[0]:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("ALTER TABLE minute_blocks RENAME TO minute_blocks_old")
        conn.execute("DROP INDEX IF EXISTS minute_blocks_hour")
        table = DDL[DDL.index("CREATE TABLE IF NOT EXISTS minute_blocks") :]
        conn.execute(table[: table.index(";") + 1])
        conn.execute(
            "INSERT INTO minute_blocks SELECT series_id, hour, data FROM minute_blocks_old"
        )
        conn.execute("DROP TABLE minute_blocks_old")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise

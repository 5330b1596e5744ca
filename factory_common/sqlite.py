"""How every store opens its SQLite file: one place for the connection settings they share."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_db(path: Path, schema: str | None = None, *, timeout: float = 5.0) -> sqlite3.Connection:
    """Open (creating its folder) a store file that one process writes from several threads.

    - isolation_level=None: autocommit; a store writes `BEGIN IMMEDIATE ... COMMIT` itself
      where several statements must be atomic.
    - check_same_thread=False: callers reach it from worker threads and serialise access with
      their own lock (one statement or transaction at a time).
    - WAL: readers never block the writer, nor the writer the readers.
    - synchronous=FULL: a commit that returned survives a power cut (SQLite's default, written
      out because the buffer, the outbox and the command ledgers depend on it).
    - `timeout` seconds of waiting on another process's lock before "database is locked".
    - `schema`: SQL script run once opened (CREATE ... IF NOT EXISTS statements).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=timeout)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        if schema is not None:
            conn.executescript(schema)
    except BaseException:
        conn.close()
        raise
    return conn

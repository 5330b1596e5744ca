"""The SQL the buffer runs on its `readings` and `meta` tables, one small function per query."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from itertools import repeat

from gateway_image.firmware.buffer.budget import expired_prefix, prefix_to_free
from gateway_image.firmware.buffer.format import ROW_OVERHEAD

Rows = list[tuple[int, int]]  # (seq, body size)


def freed(rows: Rows) -> int:
    """Bytes the budget counts for `rows`."""
    return sum(size for _, size in rows) + ROW_OVERHEAD * len(rows)


def expired(conn: sqlite3.Connection, cutoff: int) -> Rows:
    """The leading rows stored before `cutoff` (ns)."""
    cursor = conn.execute("SELECT seq, stored_at, length(body) FROM readings ORDER BY seq")
    rows: Rows = []
    while chunk := cursor.fetchmany(512):
        found = expired_prefix(chunk, cutoff)
        rows += found
        if len(found) < len(chunk):
            break
    cursor.close()
    return rows


def oldest(conn: sqlite3.Connection, excess: int) -> Rows:
    """drop_oldest: the oldest rows whose deletion frees `excess` bytes."""
    if excess <= 0:
        return []
    cursor = conn.execute("SELECT seq, length(body) FROM readings ORDER BY seq")
    rows: Rows = []
    while (need := excess - freed(rows)) > 0 and (chunk := cursor.fetchmany(512)):
        rows += prefix_to_free(chunk, need)
    cursor.close()
    return rows


def delete_prefix(conn: sqlite3.Connection, rows: Rows) -> int | None:
    """Delete every row up to the last of `rows` (a prefix); returns its seq, None if none."""
    if not rows:
        return None
    conn.execute("DELETE FROM readings WHERE seq <= ?", (rows[-1][0],))
    return rows[-1][0]


# Rows per INSERT statement. executemany steps the statement once per row, and each step
# releases and retakes the GIL: while the event loop thread is busy, every retake waits out the
# switch interval, so a commit of thousands of rows crawled and the intake queue overflowed.
# One statement of INSERT_ROWS rows binds the first seq and stored_at once (?1, ?2) and steps
# once. 100 rows keep the parameters (102) under the 999 of SQLite builds before 3.32.
INSERT_ROWS = 100
_INSERT_MANY = "INSERT INTO readings VALUES " + ",".join(
    f"(?1 + {k}, ?2, ?{k + 3})" for k in range(INSERT_ROWS)
)


def insert(conn: sqlite3.Connection, first: int, stored_at: int, bodies: list[bytes]) -> None:
    """Rows first, first + 1, ... with `bodies`: full chunks in one statement each."""
    whole = len(bodies) - len(bodies) % INSERT_ROWS
    for start in range(0, whole, INSERT_ROWS):
        conn.execute(_INSERT_MANY, (first + start, stored_at, *bodies[start : start + INSERT_ROWS]))
    seqs = range(first + whole, first + len(bodies))
    rest = zip(seqs, repeat(stored_at), bodies[whole:])
    conn.executemany("INSERT INTO readings VALUES (?, ?, ?)", rest)


def delete_ranges(conn: sqlite3.Connection, ranges: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """Delete the seq ranges; returns (rows deleted, their body bytes).

    Counted by SQLite rather than row by row in Python (length() of a blob reads no content).
    """
    query = "SELECT count(*), ifnull(sum(length(body)), 0) FROM readings WHERE seq BETWEEN ? AND ?"
    count = size = 0
    for first, last in ranges:
        n, total = conn.execute(query, (first, last)).fetchone()
        if n:
            conn.execute("DELETE FROM readings WHERE seq BETWEEN ? AND ?", (first, last))
            count, size = count + n, size + total
    return count, size


HEADER_DEPTH_MAX = 2**31 - 1  # user_version is a signed 32-bit integer


def save_meta(
    conn: sqlite3.Connection, next_seq: int, depth: int, nbytes: int, drops: Mapping[str, int]
) -> None:
    rows = [("next_seq", next_seq), ("depth", depth), ("bytes", nbytes)]
    rows += [(f"dropped.{k}", v) for k, v in drops.items()]
    conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows)
    # The depth again in the file header (page 1, rewritten by every commit anyway): a file cut
    # before the meta table's page still says how many readings it held.
    conn.execute(f"PRAGMA user_version = {min(max(depth, 0), HEADER_DEPTH_MAX)}")


def after(conn: sqlite3.Connection, seq: int | None, limit: int) -> list[tuple[int, bytes]]:
    """Up to `limit` (seq, body) rows with seq above `seq`, in seq order."""
    query = "SELECT seq, body FROM readings WHERE seq > ? ORDER BY seq LIMIT ?"
    return conn.execute(query, (-1 if seq is None else seq, limit)).fetchall()

"""Open the buffer file safely: check it, quarantine a damaged one and salvage its intact rows.

A power cut mid-write or a worn SD card can leave a truncated or corrupt file. The gateway must
still start: the damaged file is renamed `<name>.corrupt-<UTC time>` (kept for inspection), every
row that can still be read and decoded is copied into a fresh file, and the readings lost are
counted as dropped["corrupt"] (from the depth recorded in the old file's meta table, else from the
copy of it in the file header, else from the gaps in the salvaged sequence numbers).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec

from gateway_image.firmware.buffer.format import ROW_OVERHEAD, SCHEMA, connect, decode_reading, log

Row = tuple[int, int, bytes]


def open_checked(path: Path) -> tuple[sqlite3.Connection, list[Path], int]:
    """Return (connection, quarantined files, readings lost); the file is healthy afterwards."""
    quarantined: list[Path] = []
    lost = 0
    problem = _problem(path) if path.exists() else None
    if problem is not None:
        quarantined = _quarantine(path)
        lost = _salvage(quarantined[0], path)
        log.error(
            "buffer_corrupt",
            path=str(path),
            problem=problem,
            quarantined=str(quarantined[0]),
            lost=lost,
        )
    conn = connect(path)
    conn.executescript(SCHEMA)
    return conn, quarantined, lost


def _problem(path: Path) -> str | None:
    """None when SQLite's quick_check passes and our tables are readable; else what is wrong."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        result = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
        if result != ["ok"]:
            return "; ".join(result[:3])
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if tables and not {"readings", "meta"} <= tables:
            return f"not a gateway buffer (tables: {sorted(tables)})"
        return None
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        conn.close()


def _quarantine(path: Path) -> list[Path]:
    """Rename the file and its WAL out of the way; the WAL may hold the newest commits."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    moved = []
    for suffix in ("", "-wal"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            dst = Path(f"{target}{suffix}")
            src.rename(dst)
            moved.append(dst)
    with contextlib.suppress(FileNotFoundError):
        Path(f"{path}-shm").unlink()  # rebuilt from the WAL; a stale one could mislead SQLite
    return moved


def _salvage(source: Path, path: Path) -> int:
    """Copy the readable rows of `source` into a fresh buffer at `path`; returns rows lost."""
    work = _patched_copy(source)
    conn = sqlite3.connect(work, isolation_level=None)
    try:
        meta = _read_meta(conn)
        header_depth = _header_depth(conn) or _raw_header_depth(source)
        upper = meta.get("next_seq") or _max_seq(conn)
        rows, undecodable = _good_rows(conn, upper)
    finally:
        conn.close()
        for leftover in (work, Path(f"{work}-wal"), Path(f"{work}-shm")):
            leftover.unlink(missing_ok=True)
    expected = meta.get("depth") or header_depth
    if expected is None:  # no count kept anywhere: count the holes in what we found
        expected = (rows[-1][0] - rows[0][0] + 1 + undecodable) if rows else undecodable
    lost = max(0, expected - len(rows))
    _write_fresh(path, rows, meta)
    return lost


def _patched_copy(source: Path) -> Path:
    """A copy SQLite can read: a truncated file still claims its old size in its header, and
    SQLite then refuses every table; cut to whole pages and make the header say so."""
    work = source.with_name(source.name + ".work")
    shutil.copyfile(source, work)
    wal = Path(f"{source}-wal")
    if wal.exists():
        shutil.copyfile(wal, f"{work}-wal")
    with work.open("r+b") as f:
        header = f.read(100)
        if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
            return work  # nothing to patch: SQLite will report it unreadable
        (page_size,) = struct.unpack(">H", header[16:18])
        page_size = 65536 if page_size == 1 else page_size
        (claimed,) = struct.unpack(">I", header[28:32])
        pages = work.stat().st_size // page_size
        if pages < claimed:
            f.truncate(pages * page_size)
            f.seek(28)
            f.write(struct.pack(">I", pages))
    return work


def _header_depth(conn: sqlite3.Connection) -> int | None:
    """The depth the last commit wrote into the header (user_version); None if unreadable or
    never written (a file from before the header kept it)."""
    try:
        depth = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError:
        return None
    return depth or None


def _raw_header_depth(source: Path) -> int | None:
    """The same from the file's first 100 bytes, for a file too short for SQLite to open."""
    with source.open("rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
        return None
    (depth,) = struct.unpack(">i", header[60:64])
    return depth if depth > 0 else None


def _read_meta(conn: sqlite3.Connection) -> dict[str, int]:
    try:
        return {k: int(v) for k, v in conn.execute("SELECT key, value FROM meta").fetchall()}
    except (sqlite3.DatabaseError, ValueError, TypeError):
        return {}


def _max_seq(conn: sqlite3.Connection) -> int | None:
    try:
        value = conn.execute("SELECT max(seq) FROM readings").fetchone()[0]
    except sqlite3.DatabaseError:
        return None
    return None if value is None else value + 1


def _good_rows(conn: sqlite3.Connection, upper: int | None) -> tuple[list[Row], int]:
    """Every row that reads and decodes, in seq order, and how many read but did not decode."""
    rows: list[Row] = []
    undecodable = 0
    for row in _readable(conn, upper):
        try:
            decode_reading(row[2])
        except (msgspec.DecodeError, msgspec.ValidationError):
            undecodable += 1
            continue
        rows.append(row)
    return rows, undecodable


def _readable(conn: sqlite3.Connection, upper: int | None) -> Iterator[Row]:
    """Scan in seq order; past a damaged page, probe forward to the next readable row."""
    after = -1
    while True:
        try:
            cursor = conn.execute(
                "SELECT seq, stored_at, body FROM readings WHERE seq > ? ORDER BY seq", (after,)
            )
            for row in cursor:
                after = row[0]
                yield row
            return
        except sqlite3.DatabaseError:
            resume = _next_readable_start(conn, after, upper)
            if resume is None:
                return
            after = resume


def _starts_ok(conn: sqlite3.Connection, after: int) -> bool | None:
    """True if the first row after `after` reads, False if damaged, None if there is none."""
    try:
        row = conn.execute(
            "SELECT seq, stored_at, body FROM readings WHERE seq > ? ORDER BY seq LIMIT 1",
            (after,),
        ).fetchone()
    except sqlite3.DatabaseError:
        return False
    return None if row is None else True


def _next_readable_start(conn: sqlite3.Connection, bad: int, upper: int | None) -> int | None:
    """Smallest-found point past `bad` from which reading works: doubling, then bisection."""
    step, good = 1, None
    limit = upper if upper is not None else bad + 2**62
    while bad + step < limit:
        state = _starts_ok(conn, bad + step)
        if state is None:  # nothing readable beyond here
            good = None
            break
        if state:
            good = bad + step
            break
        step *= 2
    if good is None:
        return None
    low = bad + step // 2 if step > 1 else bad
    while good - low > 1:  # narrow down so rows just past the damage are not skipped
        mid = (low + good) // 2
        if _starts_ok(conn, mid):
            good = mid
        else:
            low = mid
    return good


def _write_fresh(path: Path, rows: list[Row], meta: dict[str, int]) -> None:
    """Build the new file beside the target and rename it in, so a crash here loses nothing."""
    tmp = path.with_name(path.name + ".salvage")
    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        leftover.unlink(missing_ok=True)
    conn = connect(tmp)
    try:
        conn.executescript(SCHEMA)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO readings VALUES (?, ?, ?)", rows)
        # The counter must stay above every seq ever issued: the old meta, the rows found, and
        # (when both are gone) the clock in microseconds, as for a brand-new buffer.
        floor = time.time_ns() // 1000 if "next_seq" not in meta else 0
        next_seq = max(meta.get("next_seq", 0), rows[-1][0] + 1 if rows else 0, floor)
        new_meta = {k: v for k, v in meta.items() if k.startswith("dropped.")}
        new_meta |= {
            "next_seq": next_seq,
            "depth": len(rows),
            "bytes": sum(len(body) + ROW_OVERHEAD for _, _, body in rows),
        }
        conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", new_meta.items())
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

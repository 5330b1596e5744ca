"""The durable store-and-forward buffer: SQLite, fsync'd group commits, sequence numbers, budget.

Semantics (docs/reliability.md says the same in prose):
- `append`/`put` return only after the readings are in an fsync'd commit (WAL, synchronous=FULL).
  `put` is the async sink: concurrent callers share one transaction (group commit) started at
  most every `sync_interval` seconds, or at once when `group_max` readings are waiting.
- Every stored reading gets the next sequence number. The counter lives in the `meta` table and
  is updated in the same transaction as the rows, so it never goes back, even when the buffer
  is empty. A brand-new (or unrecoverable) file starts the counter at the current time in
  microseconds: above anything this gateway issued before, so the edge's (gateway, seq)
  deduplication never mistakes new readings for old ones after a buffer file was lost.
- Rows leave only through `ack` (the broker's PUBACK), the disk budget or the TTL; every drop
  is counted by cause in `dropped`, persisted in `meta`.
- An OS "database or disk is full" is treated like the budget: the budget shrinks to what fits
  and the policy applies; what still cannot be stored is counted as `disk_full`. Never raised.
- A corrupt or truncated file is quarantined at open and its intact rows salvaged
  (see repair.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from factory_common.wire import Reading
from gateway_image.firmware.buffer.format import (
    ROW_OVERHEAD,
    BufferClosed,
    BufferStats,
    DropCause,
    Policy,
    connect,
    decode_reading,
    encode_reading,
    is_disk_full,
    log,
)
from gateway_image.firmware.buffer.repair import open_checked
from gateway_image.firmware.config import BufferConfig

__all__ = ["BufferClosed", "BufferStats", "DropCause", "DurableBuffer", "Policy"]

DISK_RETRY: Final = 60.0  # seconds before trying to grow the file again after a disk-full


class DurableBuffer:
    """Thread-safe; sync methods do disk I/O, so async code calls them via asyncio.to_thread."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        path: Path,
        max_bytes: int,
        policy: Policy | str = Policy.DROP_OLDEST,
        ttl: float | None = None,
        sync_interval: float = 0.1,
        group_max: int = 5000,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.policy = Policy(policy)
        self.ttl = ttl
        self.sync_interval = sync_interval
        self.group_max = group_max
        self._clock = clock
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.Lock()
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        self._next_seq: int = meta.get("next_seq") or time.time_ns() // 1000
        self._depth: int = meta.get("depth", 0)
        self._bytes: int = meta.get("bytes", 0)
        self.dropped: dict[str, int] = {
            k.removeprefix("dropped."): v for k, v in meta.items() if k.startswith("dropped.")
        }
        self._disk_limit: int | None = None  # set when the OS reported the disk full
        self._disk_limit_at = 0.0
        self._page_size: int = conn.execute("PRAGMA page_size").fetchone()[0]
        self._last_expire = 0
        # Group commit state; only touched on the event loop thread.
        self._queue: list[tuple[list[Reading], asyncio.Future[tuple[int, int]]]] = []
        self._queued = 0
        self._wake: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._last_commit = 0.0
        self.committed = asyncio.Event()  # set after every commit; the uplink waits on it
        self.quarantined: list[Path] = []
        # pending() reads through its own connection: WAL readers never wait for a writer, so
        # the uplink's reads do not queue behind a group commit's fsync.
        self._reader: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()

    # ------------------------------------------------------------------ open / close

    @classmethod
    def open(cls, path: str | Path, **settings: object) -> DurableBuffer:
        """Open (or create) the buffer at `path`, repairing a damaged file first."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn, quarantined, lost = open_checked(path)
        buffer = cls(conn, path=path, **settings)  # type: ignore[arg-type]
        buffer.quarantined = quarantined
        buffer._reader = connect(path)
        if lost:
            buffer._count_persist(DropCause.CORRUPT, lost)
        return buffer

    @classmethod
    def from_config(cls, config: BufferConfig, path: Path) -> DurableBuffer:
        """Open the buffer a gateway config's `buffer:` section describes, at `path`."""
        return cls.open(
            path,
            max_bytes=config.max_bytes,
            policy=config.policy,
            ttl=config.ttl,
            sync_interval=config.sync_interval,
        )

    def close(self) -> None:
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    async def flush(self) -> None:
        """Until every reading handed to put() so far is committed (or refused and counted)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    async def aclose(self) -> None:
        """Commit what callers are still waiting for, then close."""
        await self.flush()
        self.close()

    # ------------------------------------------------------------------ state

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def last_seq(self) -> int:
        """The highest sequence number ever issued (0 before the first)."""
        return self._next_seq - 1

    def stats(self) -> BufferStats:
        return BufferStats(self._depth, self._bytes, self.last_seq, dict(self.dropped))

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise BufferClosed(f"buffer {self.path} is closed")
        return self._conn

    def _limit(self) -> int:
        if self._disk_limit is not None and time.monotonic() - self._disk_limit_at > DISK_RETRY:
            self._disk_limit = None  # space may have been freed: the next failure clamps again
        return self.max_bytes if self._disk_limit is None else min(self.max_bytes, self._disk_limit)

    def _budget_cause(self) -> DropCause:
        clamped = self._disk_limit is not None and self._disk_limit < self.max_bytes
        return DropCause.DISK_FULL if clamped else DropCause.DISK_BUDGET

    # ------------------------------------------------------------------ writing

    def append(self, readings: Sequence[Reading]) -> tuple[int, int]:
        """Store readings durably; returns (first_seq, last_seq) of those stored.

        Readings refused by the budget get no sequence number: then last_seq < first_seq + n - 1
        (and last_seq == first_seq - 1 when none was stored).
        """
        return self.append_many([readings])[0]

    def append_many(self, groups: Sequence[Sequence[Reading]]) -> list[tuple[int, int]]:
        """One transaction for several callers' readings; one (first, last) per group."""
        bodies = [encode_reading(r) for group in groups for r in group]
        with self._lock:
            first, kept = self._write_handling_full(bodies)
        ranges, start = [], 0
        for group in groups:
            mine = max(0, min(len(group), kept - start))
            # Sequence numbers of the kept prefix are contiguous from `first`.
            ranges.append((first + start, first + start + mine - 1))
            start += len(group)
        return ranges

    def _write_handling_full(self, bodies: list[bytes]) -> tuple[int, int]:
        for _attempt in (1, 2):
            try:
                return self._write(bodies)
            except sqlite3.OperationalError as exc:
                if not is_disk_full(exc):
                    raise
                self._rollback()
                # The file cannot grow: it may hold what it holds now; drop_oldest also makes
                # room for this write plus two pages (SQLite reuses only emptied pages).
                room = sum(len(b) + ROW_OVERHEAD for b in bodies) + 2 * self._page_size
                dropping = self.policy is Policy.DROP_OLDEST
                self._disk_limit = max(0, self._bytes - (room if dropping else 0))
                self._disk_limit_at = time.monotonic()
                log.warning("disk_full", path=str(self.path), limit=self._disk_limit)
        self._count(DropCause.DISK_FULL, len(bodies))
        return self._next_seq, 0

    def _write(self, bodies: list[bytes]) -> tuple[int, int]:
        conn = self._db()
        now = self._clock()
        conn.execute("BEGIN IMMEDIATE")
        depth, nbytes, drops = self._depth, self._bytes, dict(self.dropped)
        gone, freed = self._expire(conn, now)
        depth, nbytes = depth - gone, nbytes - freed
        _add(drops, DropCause.TTL, gone)
        sizes = [len(b) + ROW_OVERHEAD for b in bodies]
        limit = self._limit()
        if self.policy is Policy.REFUSE_NEWEST:
            keep = _fitting(sizes, limit - nbytes)
            _add(drops, self._budget_cause(), len(bodies) - keep)
            bodies, sizes = bodies[:keep], sizes[:keep]
        first = self._next_seq
        dropping = self.policy is Policy.DROP_OLDEST
        # drop_oldest makes room before inserting (after an OS disk-full, inserts can only reuse
        # emptied pages), and again after if the new readings alone exceed the budget.
        if dropping and nbytes + sum(sizes) > limit:
            depth, nbytes = self._drop_oldest(
                conn, nbytes + sum(sizes) - limit, depth, nbytes, drops
            )
        conn.executemany(
            "INSERT INTO readings VALUES (?, ?, ?)",
            [(first + i, now, body) for i, body in enumerate(bodies)],
        )
        depth, nbytes = depth + len(bodies), nbytes + sum(sizes)
        if dropping and nbytes > limit:
            depth, nbytes = self._drop_oldest(conn, nbytes - limit, depth, nbytes, drops)
        next_seq = first + len(bodies)
        self._save_meta(conn, next_seq, depth, nbytes, drops)
        conn.execute("COMMIT")
        self._next_seq, self._depth, self._bytes, self.dropped = next_seq, depth, nbytes, drops
        return first, len(bodies)

    def _drop_oldest(
        self, conn: sqlite3.Connection, excess: int, depth: int, nbytes: int, drops: dict
    ) -> tuple[int, int]:
        gone, freed = self._trim(conn, excess)
        _add(drops, self._budget_cause(), gone)
        return depth - gone, nbytes - freed

    def _save_meta(
        self, conn: sqlite3.Connection, next_seq: int, depth: int, nbytes: int, drops: dict
    ) -> None:
        rows = [("next_seq", next_seq), ("depth", depth), ("bytes", nbytes)]
        rows += [(f"dropped.{k}", v) for k, v in drops.items()]
        conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows)

    def _expire(self, conn: sqlite3.Connection, now: int) -> tuple[int, int]:
        """Delete readings stored longer than ttl ago; at most once a second (it is a scan)."""
        if self.ttl is None or now - self._last_expire < 1_000_000_000:
            return 0, 0
        self._last_expire = now
        cutoff = now - int(self.ttl * 1e9)
        # stored_at grows with seq, so the expired rows are a prefix: stop at the first fresh one.
        cursor = conn.execute("SELECT seq, stored_at, length(body) FROM readings ORDER BY seq")
        rows: list[tuple[int, int]] = []
        while chunk := cursor.fetchmany(512):
            fresh = next((i for i, row in enumerate(chunk) if row[1] >= cutoff), None)
            rows += [(seq, size) for seq, _, size in chunk[:fresh]]
            if fresh is not None:
                break
        cursor.close()
        return self._delete_prefix(conn, rows)

    def _trim(self, conn: sqlite3.Connection, excess: int) -> tuple[int, int]:
        """drop_oldest: delete the oldest rows until `excess` bytes are free."""
        cursor = conn.execute("SELECT seq, length(body) FROM readings ORDER BY seq")
        rows, freed = [], 0
        while freed < excess and (chunk := cursor.fetchmany(512)):
            for seq, size in chunk:
                rows.append((seq, size))
                freed += size + ROW_OVERHEAD
                if freed >= excess:
                    break
        cursor.close()
        return self._delete_prefix(conn, rows)

    @staticmethod
    def _delete_prefix(conn: sqlite3.Connection, rows: list[tuple[int, int]]) -> tuple[int, int]:
        if not rows:
            return 0, 0
        conn.execute("DELETE FROM readings WHERE seq <= ?", (rows[-1][0],))
        return len(rows), sum(size + ROW_OVERHEAD for _, size in rows)

    def expire(self) -> int:
        """Apply the ttl now (the uplink calls this while idle); returns readings dropped."""
        with self._lock:
            before = self.dropped.get(DropCause.TTL, 0)
            self._last_expire = 0
            try:
                self._write([])
            except sqlite3.OperationalError as exc:
                self._rollback()
                if not is_disk_full(exc):
                    raise
            return self.dropped.get(DropCause.TTL, 0) - before

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.OperationalError):
            self._db().execute("ROLLBACK")

    def _count(self, cause: DropCause, n: int) -> None:
        """Count in memory; persisted with the next successful transaction."""
        if n:
            self.dropped[cause.value] = self.dropped.get(cause.value, 0) + n

    def _count_persist(self, cause: DropCause, n: int) -> None:
        with self._lock:
            total = self.dropped[cause.value] = self.dropped.get(cause.value, 0) + n
            self._db().execute(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"dropped.{cause}", total)
            )

    # ------------------------------------------------------------------ reading / acking

    def pending(self, limit: int, after_seq: int | None = None) -> list[tuple[int, Reading]]:
        """Up to `limit` stored readings in sequence order, after `after_seq` if given."""
        query = "SELECT seq, body FROM readings WHERE seq > ? ORDER BY seq LIMIT ?"
        args = (-1 if after_seq is None else after_seq, limit)
        with self._read_lock:
            if self._reader is not None:
                rows = self._reader.execute(query, args).fetchall()
            else:
                with self._lock:
                    rows = self._db().execute(query, args).fetchall()
        return [(seq, decode_reading(body)) for seq, body in rows]

    def ack(self, first_seq: int, last_seq: int) -> int:
        """Delete readings first_seq..last_seq (the broker has them); returns how many."""
        return self.ack_ranges([(first_seq, last_seq)])

    def ack_ranges(self, ranges: Sequence[tuple[int, int]]) -> int:
        """Delete several acknowledged seq ranges in one transaction; returns how many."""
        with self._lock:
            conn = self._db()
            # An ack lost in a power cut only means a duplicate on the wire, which the edge
            # drops: this commit need not wait for the disk.
            conn.execute("PRAGMA synchronous=NORMAL")
            first_seq, last_seq = min(r[0] for r in ranges), max(r[1] for r in ranges)
            try:
                conn.execute("BEGIN IMMEDIATE")
                sizes = [
                    size
                    for first, last in ranges
                    for size in conn.execute(
                        "DELETE FROM readings WHERE seq BETWEEN ? AND ? RETURNING length(body)",
                        (first, last),
                    ).fetchall()
                ]
                depth = self._depth - len(sizes)
                nbytes = self._bytes - sum(s + ROW_OVERHEAD for (s,) in sizes)
                self._save_meta(conn, self._next_seq, depth, nbytes, self.dropped)
                conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                self._rollback()
                if not is_disk_full(exc):
                    raise
                log.warning("ack_not_stored", reason=str(exc), first=first_seq, last=last_seq)
                return 0
            finally:
                conn.execute("PRAGMA synchronous=FULL")
            self._depth, self._bytes = depth, nbytes
            return len(sizes)

    # ------------------------------------------------------------------ async group commit

    async def put(self, readings: Sequence[Reading]) -> tuple[int, int]:
        """The connectors' sink: returns once the readings are fsync'd (see append)."""
        if self._conn is None:
            raise BufferClosed(f"buffer {self.path} is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, int]] = loop.create_future()
        self._queue.append((list(readings), future))
        self._queued += len(readings)
        if self._wake is None:
            self._wake = asyncio.Event()
        if self._queued >= self.group_max:
            self._wake.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop(), name="buffer-flush")
        return await future

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wake is not None
        while self._queue:
            delay = self._last_commit + self.sync_interval - loop.time()
            if delay > 0 and self._queued < self.group_max:
                self._wake.clear()
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
            batch, self._queue, self._queued = self._queue, [], 0
            self._last_commit = loop.time()
            try:
                ranges = await asyncio.to_thread(self.append_many, [g for g, _ in batch])
            except (sqlite3.Error, BufferClosed) as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), seqs in zip(batch, ranges, strict=True):
                if not future.done():
                    future.set_result(seqs)
            self.committed.set()


def _fitting(sizes: list[int], room: int) -> int:
    """How many of `sizes`, in order, fit into `room` bytes."""
    used = 0
    for i, size in enumerate(sizes):
        used += size
        if used > room:
            return i
    return len(sizes)


def _add(drops: dict[str, int], cause: DropCause, n: int) -> None:
    if n:
        drops[cause.value] = drops.get(cause.value, 0) + n

"""The durable store-and-forward buffer: SQLite, fsync'd group commits, sequence numbers, budget.

Semantics (docs/reliability.md says the same in prose):
- `append` returns only after the readings are in an fsync'd commit (WAL, synchronous=FULL).
  Connectors hand readings over with `offer`, which returns at once; `put` returns after
  the commit. Both go through one group commit (committer.py) every `sync_interval` seconds.
- Every stored reading gets the next sequence number. The counter lives in the `meta` table and
  is updated in the same transaction as the rows, so it never goes back, even when the buffer
  is empty. A brand-new (or unrecoverable) file starts the counter at the current time in
  microseconds: above anything this gateway issued before, so the edge's (gateway, seq)
  deduplication never mistakes new readings for old ones after a buffer file was lost.
- Rows leave only through `ack`, the disk budget or the TTL (budget.py decides); every drop is
  counted by cause in `dropped`, persisted in `meta`.
- An OS "database or disk is full" is treated like the budget: the budget shrinks to what fits
  and the policy applies; what still cannot be stored is counted as `disk_full`. Never raised.
- A corrupt or truncated file is quarantined at open and its intact rows salvaged (repair.py).
- The readings committed last stay in memory (recent.py) for the uplink.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from factory_common.wire import Reading
from gateway_image.firmware.buffer import rows
from gateway_image.firmware.buffer.budget import Budget, Drops, Ttl
from gateway_image.firmware.buffer.committer import GroupCommit
from gateway_image.firmware.buffer.format import (
    ROW_OVERHEAD,
    BufferClosed,
    BufferStats,
    DropCause,
    Policy,
    connect,
    decode_readings,
    encode_readings,
    is_disk_full,
    log,
)
from gateway_image.firmware.buffer.recent import RecentCommits
from gateway_image.firmware.buffer.repair import open_checked
from gateway_image.firmware.config import BufferConfig

__all__ = ["BufferClosed", "BufferStats", "DropCause", "DurableBuffer", "Policy"]

Body = bytes  # an encoded reading (the class's `bytes` property hides the builtin inside it)


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
        queue_max: int = 50_000,
        recent_max: int = 50_000,
        clock: Callable[[], int] = time.time_ns,
        commit_delay: float = 0.0,
    ) -> None:
        self.path = path
        self.policy = Policy(policy)
        self.budget = Budget(max_bytes, self.policy)
        self.ttl_rule = Ttl(ttl)
        self._clock = clock
        # Test knob: seconds each commit holds its transaction before COMMIT, standing in
        # for a slow fsync (an SD card takes 5-50 ms).
        self.commit_delay = commit_delay
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.Lock()
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        self._next_seq: int = meta.get("next_seq") or time.time_ns() // 1000
        self._depth: int = meta.get("depth", 0)
        self._bytes: int = meta.get("bytes", 0)
        self.dropped = Drops(
            {k.removeprefix("dropped."): v for k, v in meta.items() if k.startswith("dropped.")}
        )
        self._page_size: int = conn.execute("PRAGMA page_size").fetchone()[0]
        self.group = GroupCommit(
            self.append_many,
            sync_interval=sync_interval,
            group_max=group_max,
            queue_max=queue_max,
            policy=self.policy,
        )
        self._recent: RecentCommits[Reading] = RecentCommits(recent_max)
        self._recent_lock = threading.Lock()
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
    def from_config(cls, config: BufferConfig, path: Path, **test: float) -> DurableBuffer:
        """Open the buffer a gateway config's `buffer:` section describes, at `path`."""
        return cls.open(
            path,
            max_bytes=config.max_bytes,
            policy=config.policy,
            ttl=config.ttl,
            sync_interval=config.sync_interval,
            queue_max=config.queue_max,
            **test,
        )

    def close(self) -> None:
        self.group.closed = True
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    async def flush(self) -> None:
        """Until every reading handed over so far is committed (or refused and counted)."""
        await self.group.flush()

    async def aclose(self) -> None:
        """Commit what is still waiting, then close."""
        await self.flush()
        self.close()

    # ------------------------------------------------------------------ state

    @property
    def max_bytes(self) -> int:
        return self.budget.max_bytes

    @property
    def ttl(self) -> float | None:
        return self.ttl_rule.seconds

    @property
    def committed(self) -> asyncio.Event:
        """Set after every group commit; the uplink waits on it."""
        return self.group.committed

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
        dropped = self.dropped.copy()
        dropped.add(DropCause.QUEUE_FULL, self.group.lost_unsaved)
        return BufferStats(self._depth, self._bytes, self.last_seq, dict(dropped))

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise BufferClosed(f"buffer {self.path} is closed")
        return self._conn

    # ------------------------------------------------------------------ writing

    def offer(self, readings: Sequence[Reading]) -> int:
        """The connectors' sink: queue for the next group commit, return at once (see
        committer.py); returns how many readings a full queue cost (counted as queue_full)."""
        return self.group.offer(readings)

    async def put(self, readings: Sequence[Reading]) -> tuple[int, int]:
        """Returns once the readings are fsync'd (see append)."""
        if self._conn is None:
            raise BufferClosed(f"buffer {self.path} is closed")
        return await self.group.put(readings)

    def append(self, readings: Sequence[Reading]) -> tuple[int, int]:
        """Store readings durably; returns (first_seq, last_seq) of those stored.

        Readings refused by the budget get no sequence number: then last_seq < first_seq + n - 1
        (and last_seq == first_seq - 1 when none was stored).
        """
        return self.append_many([readings])[0]

    def append_many(
        self, groups: Sequence[Sequence[Reading]], queue_lost: int = 0
    ) -> list[tuple[int, int]]:
        """One transaction for several callers' readings; one (first, last) per group.

        `queue_lost` readings the full intake queue cost are counted in the same transaction.
        """
        flat = [r for group in groups for r in group]
        bodies = encode_readings(flat)
        with self._lock:
            first, kept, gone_through = self._write_handling_full(bodies, queue_lost)
            with self._recent_lock:
                if gone_through is not None:
                    self._recent.forget_through(gone_through)
                if kept:
                    self._recent.committed(first, flat[:kept])
        ranges, start = [], 0
        for group in groups:
            mine = max(0, min(len(group), kept - start))
            # Sequence numbers of the kept prefix are contiguous from `first`.
            ranges.append((first + start, first + start + mine - 1))
            start += len(group)
        return ranges

    def _write_handling_full(
        self, bodies: list[Body], queue_lost: int = 0, force_ttl: bool = False
    ) -> tuple[int, int, int | None]:
        for _attempt in (1, 2):
            try:
                return self._write(bodies, queue_lost, force_ttl)
            except sqlite3.OperationalError as exc:
                if not is_disk_full(exc):
                    raise
                self._rollback()
                incoming = sum(len(b) + ROW_OVERHEAD for b in bodies)
                limit = self.budget.disk_full(
                    self._bytes, incoming, self._page_size, time.monotonic()
                )
                log.warning("disk_full", path=str(self.path), limit=limit)
        self.dropped.add(DropCause.DISK_FULL, len(bodies))  # saved with the next commit
        self.dropped.add(DropCause.QUEUE_FULL, queue_lost)
        return self._next_seq, 0, None

    def _write(
        self, bodies: list[Body], queue_lost: int, force_ttl: bool
    ) -> tuple[int, int, int | None]:
        """One transaction: ttl, budget, insert, meta; returns (first, kept, dropped through)."""
        conn = self._db()
        now, mono = self._clock(), time.monotonic()
        conn.execute("BEGIN IMMEDIATE")
        drops = self.dropped.copy()
        drops.add(DropCause.QUEUE_FULL, queue_lost)
        cutoff = self.ttl_rule.cutoff(now, force_ttl)
        gone = rows.expired(conn, cutoff) if cutoff is not None else []
        drops.add(DropCause.TTL, len(gone))
        through = rows.delete_prefix(conn, gone)
        held = self._bytes - rows.freed(gone)
        sizes = [len(b) + ROW_OVERHEAD for b in bodies]
        keep = self.budget.keep(sizes, held, mono)
        held += sum(sizes[:keep])
        # drop_oldest makes room before inserting (after an OS disk-full, inserts can only reuse
        # emptied pages), and again after if the new readings alone exceed the budget.
        trimmed = rows.oldest(conn, self.budget.excess(held, mono))
        through = rows.delete_prefix(conn, trimmed) or through
        first = self._next_seq
        rows.insert(conn, first, now, bodies[:keep])
        later = rows.oldest(conn, self.budget.excess(held - rows.freed(trimmed), mono))
        through = rows.delete_prefix(conn, later) or through
        drops.add(self.budget.cause(), len(bodies) - keep + len(trimmed) + len(later))
        depth = self._depth - len(gone) - len(trimmed) - len(later) + keep
        nbytes = held - rows.freed(trimmed) - rows.freed(later)
        rows.save_meta(conn, first + keep, depth, nbytes, drops)
        if self.commit_delay:
            time.sleep(self.commit_delay)  # the test knob above: a slow fsync
        conn.execute("COMMIT")
        self._next_seq, self._depth, self._bytes, self.dropped = first + keep, depth, nbytes, drops
        return first, keep, through

    def expire(self) -> int:
        """Apply the ttl now (the uplink calls this while idle); returns readings dropped."""
        with self._lock:
            before = self.dropped.get(DropCause.TTL, 0)
            try:
                _, _, through = self._write([], 0, force_ttl=True)
            except sqlite3.OperationalError as exc:
                self._rollback()
                if not is_disk_full(exc):
                    raise
                return 0
            if through is not None:
                with self._recent_lock:
                    self._recent.forget_through(through)
            return self.dropped.get(DropCause.TTL, 0) - before

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.OperationalError):
            self._db().execute("ROLLBACK")

    def _count_persist(self, cause: DropCause, n: int) -> None:
        with self._lock:
            self.dropped.add(cause, n)
            self._db().execute(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                (f"dropped.{cause}", self.dropped[cause.value]),
            )

    # ------------------------------------------------------------------ reading / acking

    def recent(self, after_seq: int | None, limit: int) -> list[tuple[int, Reading]] | None:
        """Committed readings after `after_seq` from memory; None: read `pending` instead."""
        with self._recent_lock:
            return self._recent.after(after_seq, limit)

    def pending(self, limit: int, after_seq: int | None = None) -> list[tuple[int, Reading]]:
        """Up to `limit` stored readings in sequence order, after `after_seq` if given."""
        with self._read_lock:
            if self._reader is not None:
                found = rows.after(self._reader, after_seq, limit)
            else:
                with self._lock:
                    found = rows.after(self._db(), after_seq, limit)
        if not found:
            return []
        seqs, bodies = zip(*found, strict=True)
        return list(zip(seqs, decode_readings(bodies), strict=True))

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
            try:
                conn.execute("BEGIN IMMEDIATE")
                count, size = rows.delete_ranges(conn, ranges)
                depth = self._depth - count
                nbytes = self._bytes - size - ROW_OVERHEAD * count
                rows.save_meta(conn, self._next_seq, depth, nbytes, self.dropped)
                conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                self._rollback()
                if not is_disk_full(exc):
                    raise
                first = min(r[0] for r in ranges)
                log.warning("ack_not_stored", reason=str(exc), first=first)
                return 0
            finally:
                conn.execute("PRAGMA synchronous=FULL")
            self._depth, self._bytes = depth, nbytes
            return count

"""How much the buffer may hold and what goes when it is full: disk budget, OS disk-full, ttl.

The decisions the store applies inside each transaction, from plain numbers: how many new
readings `refuse_newest` keeps, how many bytes `drop_oldest` must free, which oldest rows
that means, which rows the ttl expired, and what an OS "disk full" shrinks the budget to for
a while. Every reading dropped is counted by cause (`Drops`). Pure: the caller passes the
clock readings in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from gateway_image.firmware.buffer.format import ROW_OVERHEAD, DropCause, Policy

DISK_RETRY: Final = 60.0  # seconds before trying to grow the file again after a disk-full
EXPIRE_EVERY: Final = 1_000_000_000  # ns between ttl scans (each is a scan of the oldest rows)


class Drops(dict[str, int]):
    """Readings dropped, by cause (the keys are DropCause values, as persisted in meta)."""

    def add(self, cause: DropCause, n: int) -> None:
        if n:
            self[cause.value] = self.get(cause.value, 0) + n

    def copy(self) -> Drops:
        return Drops(self)


def fitting(sizes: Iterable[int], room: int) -> int:
    """How many of `sizes`, in order, fit into `room` bytes."""
    used = 0
    count = 0
    for size in sizes:
        used += size
        if used > room:
            return count
        count += 1
    return count


def prefix_to_free(rows: Iterable[tuple[int, int]], excess: int) -> list[tuple[int, int]]:
    """The oldest (seq, body size) rows whose deletion frees at least `excess` bytes."""
    chosen, freed = [], 0
    for seq, size in rows:
        if freed >= excess:
            break
        chosen.append((seq, size))
        freed += size + ROW_OVERHEAD
    return chosen


def expired_prefix(rows: Iterable[tuple[int, int, int]], cutoff: int) -> list[tuple[int, int]]:
    """(seq, size) of the leading (seq, stored_at, size) rows stored before `cutoff`.

    stored_at grows with seq, so the expired rows are a prefix: stop at the first fresh one.
    """
    chosen = []
    for seq, stored_at, size in rows:
        if stored_at >= cutoff:
            break
        chosen.append((seq, size))
    return chosen


@dataclass
class Budget:
    """The byte budget in force: `max_bytes`, or less while the OS says the disk is full."""

    max_bytes: int
    policy: Policy = Policy.DROP_OLDEST
    disk_limit: int | None = None  # set when the OS reported the disk full
    disk_limit_at: float = 0.0

    def limit(self, now: float) -> int:
        """Bytes the buffer may hold now (`now` is a monotonic clock reading)."""
        if self.disk_limit is not None and now - self.disk_limit_at > DISK_RETRY:
            self.disk_limit = None  # space may have been freed: the next failure clamps again
        return self.max_bytes if self.disk_limit is None else min(self.max_bytes, self.disk_limit)

    def cause(self) -> DropCause:
        """What a reading dropped for lack of room is counted as."""
        clamped = self.disk_limit is not None and self.disk_limit < self.max_bytes
        return DropCause.DISK_FULL if clamped else DropCause.DISK_BUDGET

    def keep(self, sizes: list[int], held: int, now: float) -> int:
        """How many new rows of `sizes` bytes to store: all, or refuse_newest's prefix."""
        if self.policy is Policy.REFUSE_NEWEST:
            return fitting(sizes, self.limit(now) - held)
        return len(sizes)

    def excess(self, held: int, now: float) -> int:
        """Bytes drop_oldest must free for `held` bytes to fit (0: nothing to drop)."""
        if self.policy is not Policy.DROP_OLDEST:
            return 0
        return max(0, held - self.limit(now))

    def disk_full(self, held: int, incoming: int, page_size: int, now: float) -> int:
        """The OS refused to grow the file: the budget becomes what it holds now; returns it.

        drop_oldest also makes room for the write plus two pages (SQLite reuses only emptied
        pages), so new readings keep coming.
        """
        room = incoming + 2 * page_size if self.policy is Policy.DROP_OLDEST else 0
        self.disk_limit = max(0, held - room)
        self.disk_limit_at = now
        return self.disk_limit


@dataclass
class Ttl:
    """When the ttl scan is due (at most once a second) and what it expires."""

    seconds: float | None
    last_scan: int = 0

    def cutoff(self, now: int, force: bool = False) -> int | None:
        """Rows stored before the returned ns time expire now; None: no scan due."""
        if self.seconds is None or (not force and now - self.last_scan < EXPIRE_EVERY):
            return None
        self.last_scan = now
        return now - int(self.seconds * 1e9)

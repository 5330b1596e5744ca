"""The readings committed last, kept in memory so a caught-up uplink need not read them back.

Once the uplink has sent everything older, what it sends next is what was committed a moment
ago: reading those rows back from SQLite and decoding them cost about a fifth of the
gateway's CPU. The group commit records each committed run here (only after its COMMIT
returned, so nothing reaches the uplink before it is on disk); `after()` answers only when it
holds the run that follows the uplink's cursor without a gap, else the caller reads SQLite,
and forgets what the uplink has sent. Rows the budget or the ttl deleted are never answered
(`forget_through`). Pure.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class RecentCommits(Generic[T]):
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: deque[tuple[int, T]] = deque()
        self._floor = -1  # seqs at or below this may be gone from the store: never answered

    def __len__(self) -> int:
        return len(self._items)

    def committed(self, first_seq: int, items: list[T]) -> None:
        """Record a committed run first_seq, first_seq + 1, ... (contiguous)."""
        if self._items and first_seq != self._items[-1][0] + 1:
            self._items.clear()  # a gap (refused readings have no seq): start afresh
        self._items.extend(zip(range(first_seq, first_seq + len(items)), items, strict=True))
        while len(self._items) > self.capacity:
            self._items.popleft()

    def forget_through(self, seq: int) -> None:
        """Rows up to `seq` were deleted by the budget or the ttl."""
        self._floor = max(self._floor, seq)
        while self._items and self._items[0][0] <= seq:
            self._items.popleft()

    def after(self, seq: int | None, limit: int) -> list[tuple[int, T]] | None:
        """Up to `limit` entries after `seq`; None when memory cannot answer for certain.

        An empty list: nothing was committed after `seq`. Every commit is recorded here.
        """
        if seq is None or seq < self._floor:
            return None
        if not self._items:
            return None
        if seq + 1 < self._items[0][0]:
            return None  # rows between the cursor and memory: only SQLite has them
        # The caller has sent everything up to `seq`: memory need not keep it (a re-send or
        # a rewind reads SQLite), so memory holds about what the uplink lags behind, no more.
        while self._items and self._items[0][0] <= seq:
            self._items.popleft()
        return [self._items[i] for i in range(min(limit, len(self._items)))]

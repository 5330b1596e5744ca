"""The readings committed last, kept in memory so a caught-up uplink need not read them back.

Once the uplink has sent everything older, what it sends next is what was committed a moment
ago: reading those rows back from SQLite and decoding them costs several times what memory
does, so an uplink that falls out of memory falls further behind. The group commit records
each committed run here (only after its COMMIT returned, so nothing reaches the uplink before
it is on disk); `after()` answers only when it holds the run that follows the uplink's cursor
without a gap, else the caller reads SQLite, and forgets what the uplink has sent. Rows the
budget or the ttl deleted are never answered (`forget_through`). Runs are kept as the lists
the commit made (no object per reading). Pure.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class RecentCommits(Generic[T]):
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._runs: deque[tuple[int, list[T]]] = deque()  # (first seq, items), contiguous
        self._skip = 0  # items of the first run already forgotten
        self._size = 0  # items held (not forgotten)
        self._floor = -1  # seqs at or below this may be gone from the store: never answered
        self._next: int | None = None  # the seq after the newest committed

    def __len__(self) -> int:
        return self._size

    @property
    def _first(self) -> int:
        """The oldest seq held (only when something is held)."""
        return self._runs[0][0] + self._skip

    def committed(self, first_seq: int, items: list[T]) -> None:
        """Record a committed run first_seq, first_seq + 1, ... (contiguous)."""
        if not items:
            return
        if self._runs:
            last_first, last_items = self._runs[-1]
            if first_seq != last_first + len(last_items):
                self._clear()  # a gap (refused readings have no seq): start afresh
        self._runs.append((first_seq, items))
        self._size += len(items)
        self._next = first_seq + len(items)
        if self._size > self.capacity:
            self._forget_below(first_seq + len(items) - self.capacity)

    def forget_through(self, seq: int) -> None:
        """Rows up to `seq` were deleted by the budget or the ttl."""
        self._floor = max(self._floor, seq)
        self._forget_below(seq + 1)

    def after(self, seq: int | None, limit: int) -> list[tuple[int, T]] | None:
        """Up to `limit` entries after `seq`; None when memory cannot answer for certain.

        An empty list: nothing was committed after `seq`. Every commit is recorded here.
        """
        if seq is None or seq < self._floor:
            return None
        if not self._size:  # all sent: caught up if the cursor is at the newest commit
            return [] if seq + 1 == self._next else None
        if seq + 1 < self._first:
            return None  # rows between the cursor and memory: only SQLite has them
        # The caller has sent everything up to `seq`: memory need not keep it (a re-send or
        # a rewind reads SQLite), so memory holds about what the uplink lags behind, no more.
        self._forget_below(seq + 1)
        found: list[tuple[int, T]] = []
        skip = self._skip
        for first, items in self._runs:
            if len(found) >= limit:
                break
            part = items[skip : skip + limit - len(found)]
            found += zip(range(first + skip, first + skip + len(part)), part, strict=True)
            skip = 0
        return found

    def _forget_below(self, seq: int) -> None:
        """Drop every item with a seq below `seq`."""
        while self._runs:
            first, items = self._runs[0]
            if first + len(items) <= seq:  # the whole run
                self._runs.popleft()
                self._size -= len(items) - self._skip
                self._skip = 0
                continue
            cut = seq - first - self._skip
            if cut > 0:
                self._skip += cut
                self._size -= cut
            return

    def _clear(self) -> None:
        self._runs.clear()
        self._skip = self._size = 0

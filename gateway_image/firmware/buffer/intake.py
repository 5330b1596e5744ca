"""Readings handed over by connectors, waiting for the next group commit: a bounded queue.

A connector hands its poll over and polls again on schedule; the group commit takes whatever
has arrived. The queue is bounded so a disk slower than the connectors cannot grow memory
without end: when it is full, the buffer's policy applies to what waits here, as the disk
budget applies to what is stored: `drop_oldest` discards the oldest waiting readings,
`refuse_newest` refuses what does not fit. Either way the readings lost are counted
(`queue_full`). Groups whose caller awaits their commit (`put`) are never dropped: that caller
is held back by its own await. Pure: no I/O, no clock, no event loop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from gateway_image.firmware.buffer.format import Policy

T = TypeVar("T")
W = TypeVar("W")


@dataclass(slots=True)
class Group(Generic[T, W]):
    """One hand-over: its items, and who awaits their commit (None: nobody waits)."""

    items: list[T]
    waiter: W | None = None


@dataclass
class Intake(Generic[T, W]):
    capacity: int
    policy: Policy = Policy.DROP_OLDEST
    dropped: int = 0  # readings lost because the queue was full (queue_full)
    _groups: deque[Group[T, W]] = field(default_factory=deque)
    _size: int = 0

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"intake capacity must be >= 1, not {self.capacity}")

    def __len__(self) -> int:
        """Readings waiting."""
        return self._size

    def offer(self, items: Sequence[T]) -> int:
        """Queue items nobody awaits; returns how many readings the full queue cost."""
        items = list(items)
        lost = 0
        over = self._size + len(items) - self.capacity
        if over > 0 and self.policy is Policy.DROP_OLDEST:
            freed = self._drop_oldest(over)
            lost += freed
            over -= freed
        if over > 0:  # the newcomers themselves: their oldest, or under refuse_newest the rest
            lost += over
            dropping = self.policy is Policy.DROP_OLDEST
            items = items[over:] if dropping else items[: len(items) - over]
        if items:
            self._groups.append(Group(items))
            self._size += len(items)
        self.dropped += lost
        return lost

    def put(self, items: Sequence[T], waiter: W) -> None:
        """Queue items whose caller awaits the commit; never dropped, may exceed capacity."""
        self._groups.append(Group(list(items), waiter))
        self._size += len(items)

    def take(self) -> list[Group[T, W]]:
        """Everything waiting, in hand-over order; the queue is empty after."""
        groups, self._groups, self._size = list(self._groups), deque(), 0
        return groups

    def _drop_oldest(self, count: int) -> int:
        """Discard up to `count` of the oldest readings nobody awaits; returns how many."""
        freed = 0
        for group in self._groups:
            if freed >= count:
                break
            if group.waiter is not None:
                continue
            cut = min(count - freed, len(group.items))
            del group.items[:cut]
            freed += cut
        self._groups = deque(g for g in self._groups if g.items or g.waiter is not None)
        self._size -= freed
        return freed

"""Which published batches the edge has confirmed storing, and which a later receipt shows lost.

With `mqtt.confirm: edge` a batch's readings leave the buffer only when an edge receipt
(`wire.Stored`, edge_node/receipts.py) lists their seqs, not on the broker's PUBACK. A batch
the broker acknowledged but the edge never stored is found by publish order: a broker delivers
one client's messages to a subscriber in the order they were published, and the edge commits
them in arrival order, so once a receipt covers something published *after* a batch (a later
batch, or a status whose ts the receipt names) while that batch is still missing, the batch
was lost between broker and edge. It is then sent again (the edge drops duplicates), at most
MAX_RESENDS times; after that it stays in the buffer and is reported. Pure: no I/O, no clock.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from typing import Final

MAX_RESENDS: Final = 3
# Batches watched for loss at once: an edge away for days must not grow this without bound.
# Past it the oldest are no longer watched; their rows still go when a receipt lists them.
MAX_AWAITING: Final = 100_000
STATUS_MEMORY: Final = 256  # statuses remembered for matching a receipt's status_ts


@dataclass(frozen=True, slots=True)
class Sent:
    """One published batch: seqs first..last, its place in publish order, times re-sent."""

    first: int
    last: int
    order: int
    attempts: int = 0


@dataclass
class Outcome:
    confirmed: list[Sent] = field(default_factory=list)  # delete these rows now
    lost: list[Sent] = field(default_factory=list)  # send these again
    given_up: list[Sent] = field(default_factory=list)  # lost MAX_RESENDS times: keep, report


class Confirmations:
    def __init__(self) -> None:
        self._order = 0
        self._awaiting: dict[int, Sent] = {}  # order -> batch the broker acknowledged
        self._statuses: deque[tuple[int, int]] = deque(maxlen=STATUS_MEMORY)  # (ts, order)
        self._los: list[int] = []  # the newest receipt's ranges, as two sorted lists
        self._his: list[int] = []

    def next_order(self) -> int:
        self._order += 1
        return self._order

    def status_sent(self, ts: int) -> None:
        self._statuses.append((ts, self.next_order()))

    @property
    def awaiting(self) -> int:
        """Batches the broker acknowledged that no receipt has confirmed yet."""
        return len(self._awaiting)

    def covered(self, first: int, last: int) -> bool:
        """Whether the newest receipt lists every seq first..last."""
        i = bisect_right(self._los, first) - 1
        return i >= 0 and self._his[i] >= last

    def broker_acked(self, sent: Sent) -> bool:
        """Record a PUBACKed batch; True when the newest receipt already covers it."""
        if self.covered(sent.first, sent.last):
            return True
        self._awaiting[sent.order] = sent
        if len(self._awaiting) > MAX_AWAITING:
            del self._awaiting[next(iter(self._awaiting))]  # the oldest: orders only grow
        return False

    def receipt(self, ranges: list[tuple[int, int]], status_ts: int) -> Outcome:
        self._los = [lo for lo, _ in ranges]
        self._his = [hi for _, hi in ranges]
        outcome = Outcome()
        newest_seen = next((order for ts, order in self._statuses if ts == status_ts), 0)
        for order, sent in list(self._awaiting.items()):
            if self.covered(sent.first, sent.last):
                outcome.confirmed.append(self._awaiting.pop(order))
                newest_seen = max(newest_seen, order)
        for order, sent in list(self._awaiting.items()):
            if order < newest_seen:
                del self._awaiting[order]
                (outcome.lost if sent.attempts < MAX_RESENDS else outcome.given_up).append(sent)
        return outcome

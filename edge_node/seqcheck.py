"""Is a batch's seq range one its gateway can have issued yet? The check against seq jumps.

The store drops a reading whose (gateway, seq) it already holds. A batch claiming seqs the
gateway has not issued yet (a buggy gateway, or anyone holding its certificate) would make
the real readings with those seqs drop as duplicates when they come: silent loss. So such a
batch is refused before the store sees it, and the ledger stays clean.

The bound (docs/reliability.md, "Seq jumps"). A gateway's seqs only grow, across restarts
too (its buffer persists the counter). `Known` is the highest seq the gateway has shown the
edge it issued: the `last_seq` of a status (a last will carries none) or the highest seq of a
batch let through, and when the edge learned it. Readings the gateway dropped (budget, TTL)
or still buffers have seqs at or below its `last_seq`, so a genuine gap never exceeds it.
Since then the gateway can have issued at most MAX_RATE readings a second, for the time since
(the edge's own clock: a batch's `sent_at` is the sender's word) plus STATUS_GAP_S: a gateway
publishes its status on every connect before any batch, then every `status_interval` (10 s by
default), so a batch follows a status by at most that much of the gateway's time, also when
the edge receives both at once from a broker's backlog. A new buffer file (a lost SD card)
restarts the counter at the gateway's clock in microseconds: that new boot's status, sent
first, raises `Known` before its batches arrive. With nothing known (first contact) the only
bound is that seeding: no seq is above the clock in microseconds (plus CLOCK_AHEAD_S).

Pure: the caller passes the edge clock (ns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Readings per second one gateway sustains, and about all that one edge ingests from every
# gateway (docs/benchmarks.md). One connector polled flat out can burst above it (about
# 130,000/s), but a status comes every 10 s and STATUS_GAP_S of slack at this rate is 3
# million seqs, far more than such a burst issues between two statuses.
MAX_RATE: Final = 100_000
# Gateway time a batch may follow the status before it: 3x the default status_interval.
STATUS_GAP_S: Final = 30
# How far a gateway's clock may run ahead of the edge's when it seeded a new buffer.
CLOCK_AHEAD_S: Final = 86_400


@dataclass(frozen=True, slots=True)
class Known:
    seq: int  # the highest seq the gateway has shown it issued
    at: int  # ns, edge clock: when the edge learned it


def bound(known: Known | None, now: int) -> int:
    """The highest seq the gateway can have issued by `now` (ns, edge clock)."""
    if known is None:
        return now // 1000 + CLOCK_AHEAD_S * 1_000_000
    elapsed_ns = max(0, now - known.at) + STATUS_GAP_S * 1_000_000_000
    return known.seq + MAX_RATE * elapsed_ns // 1_000_000_000  # integers: exact near 2**63


@dataclass(frozen=True, slots=True)
class Jump:
    """A refused batch: what the edge knew and the bound its last seq exceeded."""

    known: Known | None
    bound: int


class SeqCheck:
    """Per gateway, what the edge knows of its seqs; fed in arrival order."""

    def __init__(self) -> None:
        self._known: dict[str, Known] = {}

    def __contains__(self, gateway: object) -> bool:
        return gateway in self._known

    def known(self, gateway: str) -> Known | None:
        return self._known.get(gateway)

    def seed(self, gateway: str, known: Known | None) -> None:
        """What the store held at start; later messages only ever raise it."""
        if known is not None:
            self._raise(gateway, known.seq, known.at)

    def status(self, gateway: str, ts: int, last_seq: int, now: int) -> None:
        """A status: the gateway's own word on its last seq. A last will (ts 0) says nothing.
        An equal last_seq renews `at` too: an idle gateway has issued nothing since."""
        if ts:
            self._raise(gateway, last_seq, now)

    def batch(self, gateway: str, last_seq: int, now: int) -> Jump | None:
        """None, and the batch raises what is known; or a Jump: refuse it, learn nothing."""
        known = self._known.get(gateway)
        limit = bound(known, now)
        if last_seq > limit:
            return Jump(known, limit)
        if known is None or last_seq > known.seq:
            self._known[gateway] = Known(last_seq, now)
        return None

    def _raise(self, gateway: str, seq: int, at: int) -> None:
        known = self._known.get(gateway)
        if known is None or seq >= known.seq:
            self._known[gateway] = Known(seq, at)

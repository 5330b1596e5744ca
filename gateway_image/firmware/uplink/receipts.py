"""What an edge receipt makes the uplink do: delete, send again, give up; plus the sweep.

Confirmations (confirmations.py) matches a receipt against the batches this process sent.
Beyond those, at most every SWEEP_EVERY seconds while the buffer holds rows, every range the
receipt lists is deleted as well: rows no batch of this process carried (sent before a
restart) or no longer watched. Seq-range deletes on the primary key. Pure: the caller passes
the clock reading and the buffer depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from gateway_image.firmware.uplink.confirmations import Confirmations, Sent
from gateway_image.firmware.uplink.window import Counters

SWEEP_EVERY: Final = 1.0  # seconds between deletes of everything a receipt lists


@dataclass
class Actions:
    delete: list[tuple[int, int]] = field(default_factory=list)  # seq ranges to delete now
    resend: list[Sent] = field(default_factory=list)  # lost batches to publish again
    given_up: list[Sent] = field(default_factory=list)  # lost too often: keep and report


class ReceiptPolicy:
    def __init__(self, counters: Counters, confirmations: Confirmations | None = None) -> None:
        self.counters = counters
        self.confirmations = confirmations or Confirmations()
        self.resend: list[Sent] = []  # batches a receipt showed lost, to publish again
        self._swept_at = -SWEEP_EVERY

    def receipt(
        self, ranges: list[tuple[int, int]], status_ts: int, now: float, depth: int
    ) -> Actions:
        outcome = self.confirmations.receipt(ranges, status_ts)
        actions = Actions(
            delete=[(s.first, s.last) for s in outcome.confirmed],
            resend=outcome.lost,
            given_up=outcome.given_up,
        )
        if depth and now - self._swept_at >= SWEEP_EVERY:
            self._swept_at = now
            actions.delete += ranges
        self.resend += outcome.lost
        self.counters.batches_resent += len(outcome.lost)
        self.counters.batches_unconfirmed += len(outcome.given_up)
        return actions

    def next_resend(self) -> Sent | None:
        return self.resend.pop(0) if self.resend else None

    def resend_later(self, sent: Sent) -> None:
        """Disconnected before it could go again: first in line after the reconnect."""
        self.resend.insert(0, sent)

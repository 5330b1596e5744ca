"""The uplink's in-flight window and what each PUBACK means for the batch it answers.

At most `size` data batches wait for their PUBACK at once (paho message id -> the batch).
A PUBACK either refuses the batch (keep the rows, send again from its first seq after a
pause), says "No matching subscribers" (MQTT 5 reason 0x10: accepted but dropped, because the
edge never subscribed: keep the rows likewise), or stores it (then the rows go on the PUBACK
with `confirm: broker`, or on the edge's receipt). Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from gateway_image.firmware.uplink.confirmations import Sent

NO_MATCHING_SUBSCRIBERS: Final = 0x10  # MQTT 5 PUBACK reason code (a success code, but dropped)


class Verdict(Enum):
    STORED = "stored"
    REFUSED = "refused"
    UNROUTED = "unrouted"


def verdict(is_failure: bool, reason_code: int) -> Verdict:
    """What a PUBACK's reason code means for the batch's rows."""
    if is_failure:
        return Verdict.REFUSED
    if reason_code == NO_MATCHING_SUBSCRIBERS:
        return Verdict.UNROUTED
    return Verdict.STORED


@dataclass
class Counters:
    """What the uplink did since start (shown in status and logs, read by tests)."""

    batches_acked: int = 0
    batches_refused: int = 0
    batches_unrouted: int = 0
    readings_acked: int = 0
    batches_resent: int = 0
    batches_unconfirmed: int = 0  # lost MAX_RESENDS times: kept in the buffer, reported


class Window:
    """Data batches published and not yet answered by a PUBACK; see the module docstring."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._sent: dict[int, Sent] = {}  # paho mid -> the batch it carries
        self.retry_from: int | None = None  # a refused or unrouted batch: send again from here
        self.counters = Counters()
        self._unrouted_logged = False

    def __len__(self) -> int:
        return len(self._sent)

    def has_room(self, connected: bool) -> bool:
        return connected and len(self._sent) < self.size

    def published(self, mid: int, sent: Sent) -> None:
        self._sent[mid] = sent

    def answered(self, mid: int, verdict_: Verdict) -> tuple[Sent | None, bool]:
        """Record the PUBACK for `mid`: (its batch or None for a status/ack, log it now?).

        Refused and unrouted batches set `retry_from`; "log it now" is True for every refusal
        and for the first unrouted batch of a run of them (the edge may stay away for days).
        """
        sent = self._sent.pop(mid, None)
        if sent is None:
            return None, False
        if verdict_ is Verdict.STORED:
            self._unrouted_logged = False
            return sent, False
        self.retry_from = min(sent.first, self.retry_from or sent.first)
        if verdict_ is Verdict.REFUSED:
            self.counters.batches_refused += 1
            return sent, True
        self.counters.batches_unrouted += 1
        first_of_run = not self._unrouted_logged
        self._unrouted_logged = True
        return sent, first_of_run

    def take_retry(self) -> int | None:
        """The seq to send again from, once (None: nothing refused)."""
        seq, self.retry_from = self.retry_from, None
        return seq

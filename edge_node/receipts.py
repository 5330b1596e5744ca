"""End-to-end receipts: after each commit, tell every gateway heard from which seqs are stored.

The broker's PUBACK only says the broker took a batch; a broker that loses it afterwards (a
power cut between autosaves, a bug in its queue) would lose it for good if the gateway deleted
on PUBACK. So the edge publishes a `Stored` receipt (retained, QoS 1) on the gateway's `stored`
topic, and a gateway with `mqtt.confirm: edge` deletes readings only once a receipt lists them,
and sends again a batch that a later receipt shows was skipped (gateway_image/firmware/
confirmations.py). Receipts carry the edge's committed ledger, so they are idempotent: a lost
or repeated receipt changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from factory_common.wire import MAX_STORED_RANGES, WIRE_VERSION, Stored, now_ns


class Receipts:
    """Builds the receipts of one flush; remembers the last status ts stored per gateway."""

    def __init__(self, edge_id: str) -> None:
        self.edge_id = edge_id
        self._status_ts: dict[str, int] = {}

    def status_stored(self, gateway: str, ts: int) -> None:
        """Called in arrival order: the receipt names the status that arrived last (what the
        gateway's loss check needs), not the largest ts, which a clock step back would pin."""
        self._status_ts[gateway] = ts

    def receipt(self, gateway: str, ranges: Iterable[tuple[int, int]]) -> Stored:
        """`ranges`: the store's committed ledger of this gateway, ascending."""
        newest = list(ranges)[-MAX_STORED_RANGES:]
        return Stored(
            v=WIRE_VERSION,
            gateway=gateway,
            edge=self.edge_id,
            ts=now_ns(),
            ranges=newest,
            status_ts=self._status_ts.get(gateway, 0),
        )

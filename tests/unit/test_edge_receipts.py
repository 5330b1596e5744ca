"""The edge's receipts: the newest ranges, and the status that arrived last."""

from __future__ import annotations

from edge_node.receipts import Receipts
from factory_common import wire


def test_receipt_keeps_the_newest_ranges_and_decodes() -> None:
    ledger = [(10 * i, 10 * i + 5) for i in range(wire.MAX_STORED_RANGES + 10)]
    receipt = Receipts("e1").receipt("gw1", ledger)
    assert receipt.ranges == ledger[-wire.MAX_STORED_RANGES :]
    assert wire.decode(wire.encode(receipt), wire.Stored) == receipt


def test_receipt_names_the_status_that_arrived_last_even_after_a_clock_step_back() -> None:
    receipts = Receipts("e1")
    assert receipts.receipt("gw1", []).status_ts == 0
    receipts.status_stored("gw1", 2_000)
    receipts.status_stored("gw1", 1_500)  # the gateway's clock was stepped back
    receipts.status_stored("gw2", 9_000)
    assert receipts.receipt("gw1", []).status_ts == 1_500

"""Disk budget reached while the broker is away: drop_oldest applies, and the dropped counter
the edge shows (gateway status, /api/gateways) is exactly the number of seqs the edge lacks."""

from __future__ import annotations

import pytest

from tests.fault.rig import (
    Rig,
    buffer_meta,
    committed_last_seq,
    edge_holdings,
    first_seq_from_log,
    note,
)

BUDGET = 100_000  # bytes: about 1,000 readings of the simulated line


def stable_last_seq(rig: Rig) -> int:
    """Wait until the gateway stops committing (its simulator is gone) and return last_seq."""
    seen: list[int | None] = []

    def unchanged() -> bool:
        seen.append(committed_last_seq(rig.buffer_path))
        return len(seen) > 15 and seen[-1] == seen[-15]

    rig.wait(unchanged, 30, "the gateway to stop committing")
    assert seen[-1] is not None
    return seen[-1]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_budget_drops_the_oldest_and_counts_exactly_what_the_edge_lacks(rig: Rig) -> None:
    rig.edge()  # its session exists: it gets what the gateway sends after the outage
    rig.broker.stop()  # nothing can leave the buffer
    simulator = rig.simulator()
    rig.write_gateway_config(buffer={"max_bytes": BUDGET, "policy": "drop_oldest"})
    gateway = rig.gateway()
    dropped = lambda: buffer_meta(rig.buffer_path).get("dropped.disk_budget", 0)  # noqa: E731
    rig.wait(lambda: dropped() >= 3000, 60, "the budget to overflow")
    assert buffer_meta(rig.buffer_path)["bytes"] <= BUDGET
    simulator.stop()
    last = stable_last_seq(rig)
    first = first_seq_from_log(gateway.log())
    lost = dropped()
    rig.broker.start()
    api = rig.api()
    try:

        def reported() -> dict | None:
            status = rig.gateway_status(api)
            done = status and status.get("buffer_depth", 0) == 0 and status.get("last_seq") == last
            return status if done else None

        status = rig.wait(reported, 60, "the edge to show the drained gateway's status")
    finally:
        api.close()
    # The readings between two status messages may still be in flight: wait for the store.
    rig.wait(
        lambda: edge_holdings(rig.store_path).ranges[-1:] == [(first + lost, last)], 30, "stored"
    )
    held = edge_holdings(rig.store_path)
    note(
        f"budget {BUDGET:,} bytes: seqs {first}..{last}, {lost:,} oldest dropped and counted, "
        f"{held.readings:,} at the edge; status at the edge: dropped={status['dropped']}"
    )
    assert status.get("dropped") == {"disk_budget": lost}
    assert held.ranges == [(first + lost, last)], "only the oldest were dropped"
    assert held.readings == last - first + 1 - lost and held.repeated == 0

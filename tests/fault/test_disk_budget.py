"""Disk budget or ttl reached while the broker is away: the policy applies, and the dropped
counter the edge shows (gateway status, /api/gateways) is exactly the number of seqs it lacks."""

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


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_ttl_expires_what_waited_too_long_and_counts_every_reading(rig: Rig) -> None:
    """Broker down, ttl 2 s: once production stops, everything expires while still waiting
    (the uplink applies the ttl while idle), and the counter the edge shows is every seq."""
    rig.edge()
    rig.broker.stop()
    simulator = rig.simulator()
    rig.write_gateway_config(buffer={"ttl": 2})
    gateway = rig.gateway()
    expired = lambda: buffer_meta(rig.buffer_path).get("dropped.ttl", 0)  # noqa: E731
    rig.wait(lambda: expired() >= 1000, 60, "readings to expire")
    simulator.stop()
    last = stable_last_seq(rig)
    first = first_seq_from_log(gateway.log())
    rig.wait(lambda: buffer_meta(rig.buffer_path)["depth"] == 0, 30, "the rest to expire")
    assert expired() == last - first + 1
    rig.broker.start()
    api = rig.api()
    try:

        def reported() -> dict | None:
            status = rig.gateway_status(api)
            return status if status and status.get("last_seq") == last else None

        status = rig.wait(reported, 60, "the gateway's status at the edge")
    finally:
        api.close()
    note(f"ttl 2 s: seqs {first}..{last} all expired; the edge shows {status.get('dropped')}")
    assert status.get("dropped") == {"ttl": last - first + 1}
    assert status.get("buffer_depth", 0) == 0
    assert edge_holdings(rig.store_path).readings == 0

"""kill -9 of the edge node mid-ingest, three times: nothing lost, nothing stored twice; and
readings sent before the edge ever subscribed are not lost either.

What makes it hold: the edge PUBACKs only after its store commit (manual_ack), its MQTT session
is persistent so the broker queues for it while it is down and redelivers what was not
acknowledged, and the store drops redelivered (gateway, seq) it already has.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from tests.fault.rig import (
    Rig,
    assert_exactly_once,
    first_seq_from_log,
    note,
    received_ranges,
    settle,
)


@pytest.mark.slow
@pytest.mark.timeout(200)
def test_edge_killed_mid_ingest_loses_nothing_and_stores_nothing_twice(rig: Rig) -> None:
    seed = int(os.environ.get("FAULT_SEED", random.randrange(10**6)))
    rng = random.Random(seed)
    note(f"edge kill test: FAULT_SEED={seed}")
    simulator = rig.simulator()
    rig.write_gateway_config()
    # The gateway first, on a broker the edge has never subscribed to: until it has, the
    # broker answers "No matching subscribers" and the gateway keeps its readings.
    gateway = rig.gateway()
    rig.wait(lambda: '"batch_unrouted"' in gateway.log(), 30, "the first unrouted batch")
    edge = rig.edge()
    for kill in range(3):
        stored = received_ranges(rig.store_path)
        rig.wait(lambda s=stored: received_ranges(rig.store_path) != s, 30, "ingest")
        time.sleep(rng.uniform(0.0, 1.5))
        edge.kill9()
        rig.children.remove(edge)
        time.sleep(rng.uniform(0.2, 2.0))  # the gateway keeps publishing; the broker queues
        note(f"edge kill {kill + 1}: restarting")
        edge = rig.edge()
    first = first_seq_from_log(gateway.log())
    last = settle(rig, simulator)
    held = assert_exactly_once(rig, first, last)
    note(f"edge killed 3 times: {held.readings} readings, seqs {first}..{last}, each once")

"""kill -9 of the gateway at 50 random moments while it polls fast and the edge ingests.

After recovery the edge must hold every reading the gateway had committed (fsync'd) before
each kill, with no duplicates and no gaps in sequence. FAULT_SEED=N repeats a run's moments.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from tests.fault.rig import (
    Rig,
    assert_exactly_once,
    buffer_meta,
    committed_last_seq,
    first_seq_from_log,
    note,
    settle,
)

KILLS = int(os.environ.get("FAULT_KILLS", "50"))  # fewer only while developing


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_gateway_killed_50_times_loses_nothing_and_repeats_nothing(rig: Rig) -> None:
    seed = int(os.environ.get("FAULT_SEED", random.randrange(10**6)))
    rng = random.Random(seed)
    note(f"gateway kill test: FAULT_SEED={seed}")
    started = time.monotonic()
    simulator = rig.simulator()
    rig.edge()
    rig.write_gateway_config()
    first: int | None = None
    committed: list[int] = []
    unacked_at_kill = 0
    for _ in range(KILLS):
        log_start = len(rig.log("gateway"))
        gateway = rig.gateway()
        rig.wait(lambda g=gateway, s=log_start: '"gateway_starting"' in g.log()[s:], 30, "start")
        time.sleep(rng.uniform(0.0, 1.0))  # a random moment of polling, committing, sending
        gateway.kill9()
        rig.children.remove(gateway)
        last = committed_last_seq(rig.buffer_path)
        if last is not None and first is None:
            first = first_seq_from_log(gateway.log()[log_start:])
        if last is not None:
            assert not committed or last >= committed[-1], "the seq counter went back"
            committed.append(last)
            unacked_at_kill += buffer_meta(rig.buffer_path).get("depth", 0) > 0
    assert first is not None and committed, "the gateway never committed a reading"
    rig.gateway()  # recovery: the last start sends whatever is left
    last = settle(rig, simulator)
    assert last >= committed[-1]
    assert not [k for k in buffer_meta(rig.buffer_path) if k.startswith("dropped.")]
    held = assert_exactly_once(rig, first, last)
    note(
        f"{KILLS} kills, {unacked_at_kill} with unacknowledged readings in the buffer; "
        f"{held.readings} readings, seqs {first}..{last}, all stored once; "
        f"{time.monotonic() - started:.0f} s"
    )

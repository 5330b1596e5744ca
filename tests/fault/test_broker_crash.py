"""A broker that loses messages it had acknowledged: kill -9 of Mosquitto (a crash, or power
lost between autosaves) while it holds batches for a stalled edge. With `mqtt.confirm: edge`
(the default) the gateway still holds those readings, sees from the edge's receipts that they
never arrived, and sends them again: nothing lost, nothing stored twice.
"""

from __future__ import annotations

import signal
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

STALL = 3.0  # seconds the edge is frozen, so the broker queues (and acknowledges) for it


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_broker_killed_with_acknowledged_batches_queued_loses_nothing(rig: Rig) -> None:
    simulator = rig.simulator()
    edge = rig.edge()
    rig.write_gateway_config()
    gateway = rig.gateway()
    rig.wait(lambda: received_ranges(rig.store_path), 30, "first readings at the edge")
    assert edge.process is not None
    edge.process.send_signal(signal.SIGSTOP)
    time.sleep(STALL)
    rig.broker.kill9()  # what it queued for the edge was only in memory: gone
    edge.process.send_signal(signal.SIGCONT)
    rig.broker.start()
    rig.wait(lambda: '"batch_resent"' in gateway.log(), 90, "the gateway re-sending lost batches")
    resent = gateway.log().count('"batch_resent"')
    first = first_seq_from_log(gateway.log())
    last = settle(rig, simulator)
    held = assert_exactly_once(rig, first, last)
    note(
        f"broker kill -9 with {STALL:.0f} s queued for a stalled edge: {resent} batches re-sent "
        f"from the gateway buffer; edge holds {held.readings:,} readings, each once"
    )

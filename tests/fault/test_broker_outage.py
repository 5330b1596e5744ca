"""The broker stopped for 2 real minutes while the gateway polls fast: nothing lost, and the
backlog drains after reconnect at >= 10x the production rate (measured and printed).

Mosquitto runs with persistence on, as deploy/mosquitto ships it: messages it had accepted for
the edge's persistent session before the stop are written out at shutdown and delivered after.
FAULT_OUTAGE=seconds shortens the outage while developing.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.fault.rig import (
    Rig,
    Tap,
    assert_exactly_once,
    buffer_meta,
    committed_last_seq,
    first_seq_from_log,
    note,
    received_ranges,
    settle,
)

OUTAGE = float(os.environ.get("FAULT_OUTAGE", "120"))


def production_rate(rig: Rig, seconds: float) -> float:
    start, before = time.monotonic(), committed_last_seq(rig.buffer_path) or 0
    time.sleep(seconds)
    after = committed_last_seq(rig.buffer_path) or 0
    return (after - before) / (time.monotonic() - start)


@pytest.mark.slow
@pytest.mark.timeout(OUTAGE + 150)
def test_two_minute_broker_outage_loses_nothing_and_drains_10x_faster(rig: Rig) -> None:
    simulator = rig.simulator()
    rig.edge()
    tap = Tap(rig.broker)
    rig.write_gateway_config()
    gateway = rig.gateway()
    rig.wait(lambda: received_ranges(rig.store_path), 30, "first readings at the edge")
    rate = production_rate(rig, 3.0)
    connects = gateway.log().count('"mqtt_connected"')
    rig.broker.stop()
    time.sleep(OUTAGE)
    backlog = buffer_meta(rig.buffer_path)["depth"]
    rig.broker.start()
    back = time.monotonic()
    # paho's backoff (jittered, capped at 30 s) decides when the gateway tries again.
    rig.wait(lambda: gateway.log().count('"mqtt_connected"') > connects, 45, "reconnect")
    reconnected = time.monotonic()
    # Drained: what is left is live readings waiting for their batch, PUBACK and the edge's
    # receipt (~0.5 s worth).
    live_level = 0.5 * rate
    rig.wait(lambda: buffer_meta(rig.buffer_path)["depth"] <= live_level, 120, "drained")
    drain_s = time.monotonic() - reconnected
    drain_rate = (backlog - live_level) / drain_s
    note(
        f"broker outage {OUTAGE:.0f} s at {rate:,.0f} readings/s: backlog {backlog:,} readings; "
        f"gateway reconnected {reconnected - back:.1f} s after the broker was back, then drained "
        f"in {drain_s:.1f} s = {drain_rate:,.0f} readings/s = {drain_rate / rate:.0f}x production"
    )
    first = first_seq_from_log(gateway.log())
    last = settle(rig, simulator)
    held = assert_exactly_once(rig, first, last, tap)
    note(f"after the outage: {held.readings:,} readings, seqs {first}..{last}, each stored once")
    assert backlog >= 0.8 * rate * OUTAGE, "production went on during the outage"
    assert drain_rate >= 10 * rate

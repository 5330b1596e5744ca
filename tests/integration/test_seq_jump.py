"""A forged batch claiming a gateway's future seqs, against a real `edge-node` and Mosquitto.

Before the check, the edge stored the forged readings and dropped the gateway's real readings
with those seqs as duplicates when they came: silent loss. Now the forged batch is refused,
counted and logged once, and the real readings are stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from factory_common import wire
from tests.support.edge_process import EdgeProcess, Receipts, edge_on_broker

GATEWAY = "gw1"
EDGE_CLIENT = "edge-seqjump"
FORGED_FIRST = 10**12  # gw1 is near 100: a thousand billion seqs ahead
GENUINE = 21.5
FORGED = -1.0


@dataclass
class Rig:
    edge: EdgeProcess
    publisher: mqtt.Client
    receipts: Receipts

    def publish(self, message: wire.Batch | wire.GatewayStatus) -> None:
        kind = wire.data_topic if isinstance(message, wire.Batch) else wire.status_topic
        info = self.publisher.publish(kind(GATEWAY), wire.encode(message), qos=1)
        info.wait_for_publish(30)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    with edge_on_broker(tmp_path, EDGE_CLIENT, GATEWAY) as on:
        yield Rig(on.edge, on.publisher, on.receipts)


def _status(last_seq: int) -> wire.GatewayStatus:
    return wire.GatewayStatus(
        wire.WIRE_VERSION, GATEWAY, True, ts=wire.now_ns(), boot="real", last_seq=last_seq
    )


def _batch(first: int, n: int, value: float, boot: str) -> wire.Batch:
    now = wire.now_ns()
    readings = [wire.Reading("press1", "temp", now + i, value) for i in range(n)]
    return wire.Batch(wire.WIRE_VERSION, GATEWAY, boot, first, first + n - 1, readings)


def test_a_forged_future_batch_is_refused_and_the_real_readings_are_stored(rig: Rig) -> None:
    # The genuine gateway: its status (sent first on every connect), then its readings.
    rig.publish(_status(100))
    rig.publish(_batch(91, 10, GENUINE, "real"))
    rig.receipts.wait_covered(rig.edge, 91, 100)

    # The forgery, twice (logged once for its boot), then the gateway's next live batch: the
    # one publisher's messages arrive in order, so once that is stored the forgery was seen.
    for _ in range(2):
        rig.publish(_batch(FORGED_FIRST, 10, FORGED, "forged"))
    rig.publish(_status(101))
    rig.publish(_batch(101, 1, GENUINE, "real"))
    rig.receipts.wait_covered(rig.edge, 101, 101)

    api = rig.edge.api()
    try:
        assert api.get("/api/stats").json()["ingest"]["rejected"] == {GATEWAY: {"seq_jump": 2}}
        (gateway,) = api.get("/api/gateways").json()
        assert gateway["rejected"] == {"seq_jump": 2}
        metrics = api.get("/metrics").text
    finally:
        api.close()
    assert 'edge_ingest_rejected_total{gateway="gw1",reason="seq_jump"} 2.0' in metrics
    logged = [
        json.loads(line[line.index("{") :])
        for line in rig.edge.child.log().splitlines()
        if '"seq_jump_refused"' in line
    ]
    assert [(e["gateway"], e["boot"], e["known_seq"]) for e in logged] == [(GATEWAY, "forged", 100)]

    # Much later the gateway really reaches those seqs (here: a new buffer file, whose counter
    # starts high; its status comes first). Its readings are stored, not dropped as duplicates.
    last = FORGED_FIRST + 9
    rig.publish(_status(last))
    rig.publish(_batch(FORGED_FIRST, 10, GENUINE, "real"))
    rig.receipts.wait_covered(rig.edge, FORGED_FIRST, last)
    api = rig.edge.api()
    try:
        body = api.get("/api/history", params={"tag": f"{GATEWAY}/press1/temp"}).json()
    finally:
        api.close()
    (series,) = body["series"]
    assert series["v"] == [GENUINE] * 21, "the gateway's real readings were dropped"

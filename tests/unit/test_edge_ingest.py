"""Ingest decoding without a broker: rejections are counted per gateway/reason, logged once."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from edge_node.config import parse_edge_config
from edge_node.ingest import Incoming, Ingest
from edge_node.store import Store
from factory_common.wire import (
    WIRE_VERSION,
    Batch,
    GatewayStatus,
    Reading,
    data_topic,
    encode,
    status_topic,
)


@pytest.fixture
def ingest(tmp_path: Path):
    store = Store(tmp_path / "ts.sqlite")
    yield Ingest(parse_edge_config("edge: {id: e}\n"), store)  # constructing does no I/O
    store.close()


def item(topic: str, payload: bytes) -> Incoming:
    return Incoming(generation=1, topic=topic, payload=payload, mid=1, qos=1)


def batch(v: int = WIRE_VERSION, gateway: str = "gw1") -> bytes:
    reading = Reading(device="d", tag="t", ts=1, value=1.0)
    return encode(
        Batch(v=v, gateway=gateway, boot="b", first_seq=0, last_seq=0, readings=[reading])
    )


def test_rejections_are_counted_per_gateway_and_reason_and_logged_once(ingest: Ingest) -> None:
    items = [item(data_topic("gw1"), b"\x00garbage")] * 3 + [
        item(data_topic("gw1"), batch(v=WIRE_VERSION + 1)),
        item(data_topic("gw2"), batch(gateway="gw1")),
        item("factory/v1/other", b"{}"),
        item(status_topic("gw1"), b"{}"),
        item(status_topic("gw1"), b""),  # a cleared retained status: not an error
        item(data_topic("gw1"), batch()),
        item(
            status_topic("gw1"), encode(GatewayStatus(v=WIRE_VERSION, gateway="gw1", online=True))
        ),
    ]
    with capture_logs() as logs:
        batches, statuses, catalogues = ingest._decode_all(items)
    assert len(batches) == 1 and len(statuses) == 1 and catalogues == []
    assert ingest.stats.as_dict()["rejected"] == {
        "gw1": {"malformed": 4, "wrong_version": 1},
        "gw2": {"gateway_mismatch": 1},
        "?": {"bad_topic": 1},
    }
    warned = [(e["gateway"], e["reason"]) for e in logs if e["event"] == "payload_rejected"]
    assert sorted(warned) == [
        ("?", "bad_topic"),
        ("gw1", "malformed"),
        ("gw1", "wrong_version"),
        ("gw2", "gateway_mismatch"),
    ]
    assert all(e["log_level"] == "warning" for e in logs)


async def test_an_integer_beyond_64_bits_rejects_only_its_batch(ingest: Ingest) -> None:
    huge = Batch(
        v=WIRE_VERSION,
        gateway="gw1",
        boot="b",
        first_seq=1,
        last_seq=1,
        readings=[Reading(device="d", tag="t", ts=2, value=2**64 - 1)],
    )
    good = Batch(
        v=WIRE_VERSION,
        gateway="gw1",
        boot="b",
        first_seq=2,
        last_seq=2,
        readings=[Reading(device="d", tag="t", ts=3, value=3.0)],
    )
    await ingest._flush(
        [item(data_topic("gw1"), encode(huge)), item(data_topic("gw1"), encode(good))]
    )
    assert ingest.stats.readings_stored == 1
    assert ingest.stats.as_dict()["rejected"] == {"gw1": {"malformed": 1}}
    assert ingest.store.received("gw1") == [(2, 2)]


def test_a_message_the_store_cannot_hold_is_refused_alone(ingest: Ingest) -> None:
    # Built in Python, past the wire's checks: the store's own limit is the last line of
    # defence, and it must refuse only the offender (a status here, the crash-loop case).
    bad = GatewayStatus(v=WIRE_VERSION, gateway="gw2", online=True, ts=2**63)
    good = Batch(
        v=WIRE_VERSION,
        gateway="gw1",
        boot="b",
        first_seq=5,
        last_seq=5,
        readings=[Reading(device="d", tag="t", ts=3, value=3.0)],
    )
    fine = GatewayStatus(v=WIRE_VERSION, gateway="gw1", online=True, ts=7)
    results, refused = ingest._write([good], [bad, fine])
    assert [message for message, _ in refused] == [bad]
    assert isinstance(refused[0][1], OverflowError)
    assert sum(r.stored for r in results) == 1
    assert ingest.store.received("gw1") == [(5, 5)]
    assert [s.gateway for s in ingest.store.gateways()] == ["gw1"]


async def test_a_failing_observer_neither_stops_ingest_nor_the_others(ingest: Ingest) -> None:
    seen: list[int] = []

    def broken(_batches: object) -> None:
        raise RuntimeError("rule bug")

    ingest.observers.extend([broken, lambda batches: seen.append(len(batches))])
    with capture_logs() as logs:
        for _ in range(2):
            await ingest._flush([item(data_topic("gw1"), batch())])
    assert seen == [1, 1]
    assert ingest.stats.observer_errors == 2
    assert [e["event"] for e in logs].count("observer_failed") == 1

"""Hostile MQTT input against a real `edge-node` process: nothing published can make it exit.

Hypothesis generates status, batch, ack, command and receipt messages with every field at its
extremes (integers beyond 64 bits, negative times, names with '/', huge strings, the wrong
message on a topic, retained copies that come back on every reconnect) and publishes them to
a real Mosquitto the edge ingests from. After each example a good batch of a sentinel gateway
must be stored (its receipt lists the seq) by the same process: alive and still ingesting.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factory_common import wire
from tests.support.edge_process import Receipts, edge_on_broker
from tests.support.processes import Child

SENTINEL = "sentinel-gw"
EDGE_CLIENT = "edge-hostile"
# Ids a hostile publisher would use: a real gateway's, the edge's own client id, a short one.
GATEWAYS = ["gw1", EDGE_CLIENT, "g"]

extreme_ints = st.one_of(
    st.sampled_from(
        [0, 1, -1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 10**30]
    ),
    st.integers(),
)
extreme_floats = st.one_of(
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, float("nan"), float("inf")]),
    st.floats(),
)
extreme_text = st.one_of(
    st.sampled_from(["", "a/b", "+", "#", "\x00", "x" * 70_000, "dev ice", "é"]),
    st.text(max_size=20),
)
numbers = st.one_of(extreme_ints, extreme_floats)
values = st.one_of(st.none(), st.booleans(), numbers, extreme_text)
names = st.one_of(st.sampled_from(["d1", "t1"]), extreme_text)


@st.composite
def readings(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "device": draw(names),
        "tag": draw(names),
        "ts": draw(extreme_ints),
        "value": draw(values),
        "quality": draw(st.sampled_from(["good", "bad", "uncertain", "worse"])),
    }


@st.composite
def batch(draw: st.DrawFn, gateway: str) -> dict[str, Any]:
    items = draw(st.lists(readings(), min_size=1, max_size=4))
    first = draw(extreme_ints)
    consistent = draw(st.booleans())
    return {
        "v": draw(st.sampled_from([wire.WIRE_VERSION, wire.WIRE_VERSION, 2**63, -1])),
        "gateway": gateway,
        "boot": draw(extreme_text),
        "first_seq": first,
        "last_seq": first + len(items) - 1 if consistent else draw(extreme_ints),
        "readings": items,
        "sent_at": draw(extreme_ints),
    }


@st.composite
def status(draw: st.DrawFn, gateway: str) -> dict[str, Any]:
    counters = st.dictionaries(extreme_text, extreme_ints, max_size=2)
    connector = st.fixed_dictionaries(
        {"name": extreme_text, "type": extreme_text, "state": extreme_text},
        optional={
            "last_success": extreme_ints,
            "polls": extreme_ints,
            "errors": extreme_ints,
            "latency_ms": extreme_floats,
            "counters": counters,
            "clock_jumps": extreme_ints,
        },
    )
    return {
        "v": wire.WIRE_VERSION,
        "gateway": gateway,
        "online": draw(st.booleans()),
        **draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "ts": extreme_ints,
                    "started_at": extreme_ints,
                    "uptime_s": numbers,
                    "buffer_depth": extreme_ints,
                    "buffer_bytes": extreme_ints,
                    "last_seq": extreme_ints,
                    "dropped": counters,
                    "connectors": st.lists(connector, max_size=2),
                    "resent": extreme_ints,
                    "unconfirmed": extreme_ints,
                    "version": extreme_text,
                },
            )
        ),
    }


@st.composite
def ack(draw: st.DrawFn, gateway: str) -> dict[str, Any]:
    result = st.fixed_dictionaries(
        {"device": names, "tag": names, "ok": st.booleans(), "readback": values}
    )
    return {
        "v": wire.WIRE_VERSION,
        "id": draw(extreme_text),
        "gateway": gateway,
        "status": draw(st.sampled_from([*wire.AckStatus, "exploded"])),
        "ts": draw(extreme_ints),
        "results": draw(st.lists(result, max_size=2)),
    }


@st.composite
def command(draw: st.DrawFn, gateway: str) -> dict[str, Any]:
    write = st.fixed_dictionaries({"device": names, "tag": names, "value": values})
    return {
        "v": wire.WIRE_VERSION,
        "id": draw(extreme_text),
        "gateway": gateway,
        "writes": draw(st.lists(write, max_size=2)),
        "issued_at": draw(extreme_ints),
        "expires_at": draw(extreme_ints),
    }


@st.composite
def receipt(draw: st.DrawFn, gateway: str) -> dict[str, Any]:
    pair = st.tuples(extreme_ints, extreme_ints)
    return {
        "v": wire.WIRE_VERSION,
        "gateway": gateway,
        "edge": draw(extreme_text),
        "ts": draw(extreme_ints),
        "ranges": draw(st.lists(pair, max_size=3)),
        "status_ts": draw(extreme_ints),
    }


BUILDERS = {"data": batch, "status": status, "ack": ack, "cmd": command, "stored": receipt}


@dataclass(frozen=True)
class Publish:
    topic: str
    payload: bytes
    retain: bool


@st.composite
def hostile(draw: st.DrawFn) -> Publish:
    gateway = draw(st.sampled_from(GATEWAYS))
    kind = draw(st.sampled_from(sorted(BUILDERS)))
    # Mostly the message its topic expects; sometimes another kind's, or another gateway's.
    topic_kind = draw(st.sampled_from([kind, kind, kind, *sorted(BUILDERS)]))
    topic_gateway = draw(st.sampled_from([gateway, gateway, *GATEWAYS]))
    body = draw(BUILDERS[kind](gateway))
    return Publish(
        topic=f"{wire.TOPIC_ROOT}/gw/{topic_gateway}/{topic_kind}",
        payload=json.dumps(body).encode(),
        retain=draw(st.booleans()),
    )


@dataclass
class HostileRig:
    edge: Child
    publisher: mqtt.Client
    receipts: Receipts
    next_seq: int = 1


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileRig]:
    with edge_on_broker(tmp_path_factory.mktemp("hostile"), EDGE_CLIENT, SENTINEL) as on:
        yield HostileRig(on.edge.child, on.publisher, on.receipts)


def _good_batch(rig: HostileRig) -> int:
    seq = rig.next_seq
    rig.next_seq += 1
    reading = wire.Reading("press1", "temp", wire.now_ns(), 21.5)
    message = wire.Batch(wire.WIRE_VERSION, SENTINEL, "boot", seq, seq, [reading])
    rig.publisher.publish(wire.data_topic(SENTINEL), wire.encode(message), qos=1).wait_for_publish(
        30
    )
    return seq


def _assert_still_ingesting(rig: HostileRig, seq: int) -> None:
    with rig.receipts.changed:
        stored = rig.receipts.changed.wait_for(
            lambda: rig.receipts.covers(seq, seq) or not rig.edge.alive, timeout=60
        )
    assert rig.edge.alive, f"edge-node exited:\n{rig.edge.log()[-3000:]}"
    assert stored, f"the edge never stored seq {seq}:\n{rig.edge.log()[-3000:]}"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(messages=st.lists(hostile(), min_size=1, max_size=6))
def test_no_message_stops_the_edge(rig: HostileRig, messages: list[Publish]) -> None:
    for message in messages:
        info = rig.publisher.publish(message.topic, message.payload, qos=1, retain=message.retain)
        info.wait_for_publish(30)
    _assert_still_ingesting(rig, _good_batch(rig))


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        # The crash loop this test was written for: a retained status whose ts is 2**63.
        ("status", {"v": 1, "gateway": "gw1", "online": True, "ts": 2**63}),
        ("status", {"v": 1, "gateway": "gw1", "online": True, "dropped": {"ttl": 2**64}}),
        ("data", {"v": 1, "gateway": "gw1", "boot": "b", "first_seq": 2**63 - 1,
                  "last_seq": 2**63 - 1,
                  "readings": [{"device": "d", "tag": "t", "ts": 1, "value": 2**63}]}),
    ],
)  # fmt: skip
def test_the_known_killers_are_refused_counted_and_logged_once(
    rig: HostileRig, kind: str, body: dict[str, Any]
) -> None:
    topic = f"{wire.TOPIC_ROOT}/gw/gw1/{kind}"
    for _ in range(3):
        rig.publisher.publish(topic, json.dumps(body).encode(), qos=1, retain=True)
    _assert_still_ingesting(rig, _good_batch(rig))
    rejected = [
        json.loads(line[line.index("{") :])
        for line in rig.edge.log().splitlines()
        if '"payload_rejected"' in line
    ]
    keys = [(r["gateway"], r["reason"]) for r in rejected]
    assert ("gw1", "malformed") in keys
    assert len(keys) == len(set(keys)), "a rejection was logged more than once"

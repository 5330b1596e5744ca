"""The wire contract: round-trips, topics, and clear errors for anything malformed."""

from __future__ import annotations

import contextlib
import math

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from factory_common import wire
from factory_common.wire import (
    AckStatus,
    Batch,
    Command,
    CommandAck,
    GatewayStatus,
    Quality,
    Reading,
    TimeSource,
    WireError,
    Write,
    WriteResult,
)

ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,20}\Z")
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
readings = st.builds(
    Reading,
    device=st.text(min_size=1, max_size=20),
    tag=st.text(min_size=1, max_size=20),
    ts=st.integers(min_value=0, max_value=2**63 - 1),
    value=values,
    quality=st.sampled_from(Quality),
    reason=st.text(max_size=30),
    src=st.sampled_from(TimeSource),
)


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    items = draw(st.lists(readings, min_size=1, max_size=20))
    first = draw(st.integers(min_value=0, max_value=2**40))
    return Batch(
        v=wire.WIRE_VERSION,
        gateway=draw(ids),
        boot=draw(st.text(max_size=36)),
        first_seq=first,
        last_seq=first + len(items) - 1,
        readings=items,
        sent_at=draw(st.integers(min_value=0, max_value=2**62)),
        replay=draw(st.booleans()),
        clock_synced=draw(st.booleans()),
    )


@given(batches())
def test_batch_round_trip(batch: Batch) -> None:
    assert wire.decode(wire.encode(batch), Batch) == batch


@given(
    st.builds(
        Command,
        v=st.just(wire.WIRE_VERSION),
        id=st.text(min_size=1, max_size=36),
        gateway=ids,
        writes=st.lists(st.builds(Write, device=st.text(), tag=st.text(), value=values)),
        issued_at=st.integers(min_value=0, max_value=2**62),
        expires_at=st.integers(min_value=0, max_value=2**62),
        issued_by=st.text(max_size=20),
    )
)
def test_command_round_trip(command: Command) -> None:
    assert wire.decode(wire.encode(command), Command) == command


@given(
    st.builds(
        CommandAck,
        v=st.just(wire.WIRE_VERSION),
        id=st.text(min_size=1),
        gateway=ids,
        status=st.sampled_from(AckStatus),
        ts=st.integers(min_value=0, max_value=2**62),
        results=st.lists(
            st.builds(
                WriteResult,
                device=st.text(),
                tag=st.text(),
                ok=st.booleans(),
                readback=values,
                error=st.text(),
            )
        ),
        detail=st.text(),
    )
)
def test_ack_round_trip(ack: CommandAck) -> None:
    assert wire.decode(wire.encode(ack), CommandAck) == ack


def test_status_round_trip_and_last_will_is_minimal() -> None:
    status = GatewayStatus(
        v=wire.WIRE_VERSION,
        gateway="gw-1",
        online=True,
        ts=5,
        version="1.0",
        buffer_depth=3,
        dropped={"disk_budget": 2},
        connectors=[wire.ConnectorHealth(name="bath", type="modbus_tcp", state="up", polls=4)],
    )
    assert wire.decode(wire.encode(status), GatewayStatus) == status
    will = wire.encode(GatewayStatus(v=wire.WIRE_VERSION, gateway="gw-1", online=False))
    assert wire.decode(will, GatewayStatus).online is False


def test_float_and_int_values_keep_their_type() -> None:
    batch = Batch(
        v=1,
        gateway="g",
        boot="b",
        first_seq=0,
        last_seq=1,
        readings=[Reading("d", "a", 1, 2.0), Reading("d", "b", 1, 2)],
    )
    decoded = wire.decode(wire.encode(batch), Batch)
    assert isinstance(decoded.readings[0].value, float)
    assert isinstance(decoded.readings[1].value, int)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", "malformed Batch"),
        (b"{not json", "malformed Batch"),
        (b"[1,2]", "Expected `object`"),
        (b'{"v":1}', "missing required field"),
        (b'{"v":7,"something":"else"}', "wire version 7"),
        (
            b'{"v":1,"gateway":"g","boot":"b","first_seq":0,"last_seq":4,"readings":[]}',
            "but 0 readings",
        ),
        (
            b'{"v":1,"gateway":"g/x","boot":"b","first_seq":1,"last_seq":0,"readings":[]}',
            "invalid gateway id",
        ),
        (
            b'{"v":1,"gateway":"g","boot":"b","first_seq":0,"last_seq":0,"readings":'
            b'[{"device":"d","tag":"t","ts":"yesterday","value":1}]}',
            "$.readings[0].ts",
        ),
        (
            b'{"v":1,"gateway":"g","boot":"b","first_seq":0,"last_seq":0,"readings":'
            b'[{"device":"d","tag":"t","ts":1,"value":1,"quality":"meh"}]}',
            "quality",
        ),
        (b"[" * 100_000, "malformed Batch"),
    ],
)
def test_malformed_batches_raise_wire_error_with_location(payload: bytes, expected: str) -> None:
    with pytest.raises(WireError, match=None) as info:
        wire.decode(payload, Batch)
    assert expected in str(info.value)


def test_oversized_payload_is_refused_before_parsing() -> None:
    with pytest.raises(WireError, match="exceeds"):
        wire.decode(b" " * (wire.MAX_PAYLOAD_BYTES + 1), Batch)


@given(st.binary(max_size=300))
def test_decoder_never_raises_anything_but_wire_error(payload: bytes) -> None:
    for kind in (Batch, GatewayStatus, Command, CommandAck):
        with contextlib.suppress(WireError):
            wire.decode(payload, kind)


def test_topics_round_trip() -> None:
    for kind in wire.TopicKind:
        name = wire.topic(kind, "press-3")
        assert wire.parse_topic(name) == ("press-3", kind)
    assert wire.subscription(wire.TopicKind.DATA) == "factory/v1/gw/+/data"


@pytest.mark.parametrize(
    "name",
    ["factory/v1/gw/a/b/data", "other/gw/a/data", "factory/v1/gw/a/nope", "factory/v1/gw//data"],
)
def test_bad_topics_are_refused(name: str) -> None:
    with pytest.raises(WireError):
        wire.parse_topic(name)


@pytest.mark.parametrize("bad", ["", "a/b", "+", "#", "a b", "-x", "x" * 65])
def test_gateway_ids_that_would_break_topics_are_refused(bad: str) -> None:
    with pytest.raises(WireError):
        wire.data_topic(bad)


def test_non_finite_floats_do_not_pass_silently() -> None:
    # JSON has no NaN; msgspec writes null. A reading whose value is NaN must say so in quality.
    encoded = wire.encode(
        Batch(
            v=1,
            gateway="g",
            boot="b",
            first_seq=0,
            last_seq=0,
            readings=[Reading("d", "t", 1, math.nan)],
        )
    )
    assert wire.decode(encoded, Batch).readings[0].value is None


@pytest.mark.parametrize(
    "reading",
    [
        b'{"device":"d","tag":"t","ts":1,"value":99999999999999999999999}',
        b'{"device":"d","tag":"t","ts":99999999999999999999999,"value":1}',
        b'{"device":"d","tag":"t","ts":-1,"value":1}',
    ],
)
def test_integers_beyond_64_bits_are_refused(reading: bytes) -> None:
    payload = b'{"v":1,"gateway":"g","boot":"b","first_seq":0,"last_seq":0,"readings":[%s]}'
    with pytest.raises(WireError, match=r"readings\[0\]"):
        wire.decode(payload % reading, Batch)


def test_stored_receipt_round_trips_and_rejects_bad_ranges() -> None:
    receipt = wire.Stored(v=wire.WIRE_VERSION, gateway="gw1", edge="e1", ts=5, ranges=[(1, 9)])
    assert wire.decode(wire.encode(receipt), wire.Stored) == receipt
    bad = [
        b'{"v":1,"gateway":"gw1","edge":"e1","ts":5,"ranges":[[9,1]]}',
        b'{"v":1,"gateway":"gw1","edge":"e1","ts":5,"ranges":[[1,5],[3,9]]}',
        b'{"v":1,"gateway":"gw1","edge":"e1","ts":5,"ranges":[[-1,5]]}',
        b'{"v":1,"gateway":"g/1","edge":"e1","ts":5,"ranges":[]}',
    ]
    for payload in bad:
        with pytest.raises(wire.WireError, match="Stored"):
            wire.decode(payload, wire.Stored)
    many = [(2 * i, 2 * i) for i in range(wire.MAX_STORED_RANGES + 1)]
    payload = wire.encode(wire.Stored(v=1, gateway="gw1", edge="e1", ts=5, ranges=many))
    with pytest.raises(wire.WireError, match="at most"):
        wire.decode(payload, wire.Stored)
    assert wire.parse_topic(wire.stored_topic("gw1")) == ("gw1", wire.TopicKind.STORED)


update_requests = st.builds(
    wire.UpdateRequest,
    v=st.just(wire.WIRE_VERSION),
    id=st.text(min_size=1, max_size=36),
    gateway=ids,
    action=st.sampled_from(wire.UpdateAction),
    artifact=st.text(min_size=1, max_size=60),
    release=st.text(max_size=20),
    sha256=st.text(alphabet="0123456789abcdef", max_size=64),
    downgrade=st.booleans(),
    config=st.text(min_size=1, max_size=200),
    health_timeout_s=st.floats(min_value=0.001, max_value=1e6),
    issued_at=st.integers(min_value=0, max_value=2**62),
    issued_by=st.text(max_size=20),
)


@given(update_requests)
def test_update_request_round_trip(request: wire.UpdateRequest) -> None:
    assert wire.decode(wire.encode(request), wire.UpdateRequest) == request


@given(
    st.builds(
        wire.UpdateState,
        v=st.just(wire.WIRE_VERSION),
        gateway=ids,
        ts=st.integers(min_value=0, max_value=2**62),
        phase=st.sampled_from(wire.UpdatePhase),
        release=st.text(max_size=20),
        slot=st.sampled_from(["", "a", "b"]),
        config_sha256=st.text(alphabet="0123456789abcdef", max_size=64),
        request=st.text(max_size=36),
        action=st.none() | st.sampled_from(wire.UpdateAction),
        target=st.text(max_size=20),
        detail=st.text(max_size=80),
        crashes=st.integers(min_value=0, max_value=1000),
    )
)
def test_update_state_round_trip(state: wire.UpdateState) -> None:
    assert wire.decode(wire.encode(state), wire.UpdateState) == state


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"action": "install"}, "action install needs `artifact`"),
        ({"action": "config"}, "action config needs `config`"),
        ({"action": "rollback", "health_timeout_s": 0}, "health_timeout_s > 0"),
    ],
)
def test_update_request_without_what_it_needs_is_refused(
    fields: dict[str, object], message: str
) -> None:
    payload = msgspec.json.encode({"v": 1, "id": "r1", "gateway": "gw1", **fields})
    with pytest.raises(WireError, match=message):
        wire.decode(payload, wire.UpdateRequest)


def test_update_topics_parse_back() -> None:
    assert wire.parse_topic(wire.update_topic("gw1")) == ("gw1", wire.TopicKind.UPDATE)
    assert wire.parse_topic(wire.update_request_topic("gw1")) == (
        "gw1",
        wire.TopicKind.UPDATE_REQUEST,
    )

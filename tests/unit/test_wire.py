"""The wire contract: round-trips, topics, and clear errors for anything malformed."""

from __future__ import annotations

import contextlib
import copy
import gc
import json
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
    TagCatalogue,
    TagInfo,
    TagType,
    TimeSource,
    WireError,
    Write,
    WriteResult,
)

ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,20}\Z")
names = st.from_regex(r"\A[^/+#\x00-\x1f\x7f]{1,20}\Z")
stamps = st.integers(min_value=0, max_value=2**63 - 1)
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
readings = st.builds(
    Reading,
    device=names,
    tag=names,
    ts=stamps,
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
        sent_at=draw(stamps),
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
        writes=st.lists(st.builds(Write, device=names, tag=names, value=values)),
        issued_at=stamps,
        expires_at=stamps,
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
        ts=stamps,
        results=st.lists(
            st.builds(
                WriteResult,
                device=names,
                tag=names,
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


finite = st.floats(allow_nan=False, allow_infinity=False)
tag_infos = st.builds(
    TagInfo,
    device=ids,
    tag=ids,
    type=st.sampled_from(TagType),
    unit=st.text(max_size=5),
    label=st.text(max_size=20),
    description=st.text(max_size=40),
    writable=st.booleans(),
    min=st.none() | finite,
    max=st.none() | finite,
    enum=st.dictionaries(st.integers(0, 99).map(str), st.text(min_size=1, max_size=12)),
    precision=st.none() | st.integers(0, 6),
    connector=st.text(max_size=12),
    interval=st.none() | st.floats(min_value=0.01, max_value=3600),
)


@given(
    st.builds(
        TagCatalogue,
        v=st.just(wire.WIRE_VERSION),
        gateway=ids,
        ts=st.integers(min_value=0, max_value=2**62),
        tags=st.lists(tag_infos, max_size=10),
    )
)
def test_tag_catalogue_round_trip(catalogue: TagCatalogue) -> None:
    assert wire.decode(wire.encode(catalogue), TagCatalogue) == catalogue


def test_tag_catalogue_topic_and_bad_type() -> None:
    assert wire.parse_topic(wire.tags_topic("gw-1")) == ("gw-1", wire.TopicKind.TAGS)
    payload = b'{"v":1,"gateway":"g","ts":1,"tags":[{"device":"d","tag":"t","type":"double"}]}'
    with pytest.raises(WireError, match=r"tags\[0\]\.type"):
        wire.decode(payload, TagCatalogue)


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


def test_readings_are_not_tracked_by_the_cyclic_gc() -> None:
    """A gateway makes 100,000 readings a second: tracked, they drive the collector's full
    passes, which stop the event loop. Built or decoded, a Reading is left out of them."""
    made = Reading("d", "a", 1, "text", Quality.BAD, reason="r")
    batch = Batch(v=1, gateway="g", boot="b", first_seq=0, last_seq=0, readings=[made])
    decoded = wire.decode(wire.encode(batch), Batch).readings[0]
    assert decoded == made
    assert not gc.is_tracked(made)
    assert not gc.is_tracked(decoded)


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


@given(
    st.builds(
        GatewayStatus,
        v=st.just(wire.WIRE_VERSION),
        gateway=ids,
        online=st.booleans(),
        ts=stamps,
        started_at=stamps,
        uptime_s=st.floats(min_value=0, max_value=1e15),
        buffer_depth=stamps,
        buffer_bytes=stamps,
        last_seq=stamps,
        dropped=st.dictionaries(st.text(max_size=10), stamps, max_size=3),
        resent=stamps,
        unconfirmed=stamps,
    )
)
def test_status_round_trip(status: GatewayStatus) -> None:
    assert wire.decode(wire.encode(status), GatewayStatus) == status


# One valid message of each kind, as JSON objects, and the path of every integer in it: each
# must refuse a value a 64-bit store cannot hold (or a negative time, seq or counter), naming it.
_VALID: dict[type, dict[str, object]] = {
    Batch: {
        "v": 1, "gateway": "g", "boot": "b", "first_seq": 0, "last_seq": 0, "sent_at": 0,
        "readings": [{"device": "d", "tag": "t", "ts": 1, "value": 1}],
    },
    GatewayStatus: {
        "v": 1, "gateway": "g", "online": True, "ts": 1, "started_at": 1, "buffer_depth": 0,
        "buffer_bytes": 0, "last_seq": 0, "dropped": {"ttl": 0}, "resent": 0, "unconfirmed": 0,
        "connectors": [{
            "name": "c", "type": "modbus_tcp", "state": "up", "last_success": 1, "polls": 0,
            "errors": 0, "readings": 0, "counters": {"crc": 0}, "clock_jumps": 0,
            "devices": {"d": {"state": "up", "last_success": 1, "errors": 0}},
        }],
    },
    Command: {
        "v": 1, "id": "c1", "gateway": "g", "issued_at": 1, "expires_at": 2,
        "writes": [{"device": "d", "tag": "t", "value": 1}],
    },
    CommandAck: {
        "v": 1, "id": "c1", "gateway": "g", "status": "done", "ts": 1,
        "results": [{"device": "d", "tag": "t", "ok": True, "readback": 1}],
    },
    wire.Stored: {"v": 1, "gateway": "g", "edge": "e", "ts": 1, "ranges": [[0, 1]], "status_ts": 1},
    wire.UpdateRequest: {
        "v": 1, "id": "u1", "gateway": "g", "action": "install", "artifact": "a.fwr",
        "issued_at": 1,
    },
    wire.UpdateState: {"v": 1, "gateway": "g", "ts": 1, "phase": "idle", "crashes": 0},
}  # fmt: skip


def _int_paths(node: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    if isinstance(node, bool):
        return []
    if isinstance(node, int):
        return [path]
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    return [p for key, child in items for p in _int_paths(child, (*path, key))]


def _case_id(part: object) -> str:
    return getattr(part, "__name__", None) or ".".join(map(str, part))  # type: ignore[call-overload]


_INT_FIELDS = [(kind, path) for kind, body in _VALID.items() for path in _int_paths(body)]


@pytest.mark.parametrize(("kind", "path"), _INT_FIELDS, ids=_case_id)
@given(bad=st.one_of(st.integers(min_value=2**63), st.integers(max_value=-(2**63) - 1)))
def test_every_integer_field_refuses_what_64_bits_cannot_hold(
    kind: type, path: tuple[str | int, ...], bad: int
) -> None:
    assert wire.decode(json.dumps(_VALID[kind]).encode(), kind)  # the base message is valid
    body = copy.deepcopy(_VALID[kind])
    node: object = body
    for key in path[:-1]:
        node = node[key]  # type: ignore[index]
    node[path[-1]] = bad  # type: ignore[index]
    with pytest.raises(WireError, match=kind.__name__):
        wire.decode(json.dumps(body).encode(), kind)


@pytest.mark.parametrize(
    ("kind", "path"),
    [(k, p) for k, p in _INT_FIELDS if p[-1] not in ("value", "readback", "v")],
    ids=_case_id,
)
def test_times_seqs_and_counters_are_never_negative(
    kind: type, path: tuple[str | int, ...]
) -> None:
    body = copy.deepcopy(_VALID[kind])
    node: object = body
    for key in path[:-1]:
        node = node[key]  # type: ignore[index]
    node[path[-1]] = -1  # type: ignore[index]
    with pytest.raises(WireError):
        wire.decode(json.dumps(body).encode(), kind)


@pytest.mark.parametrize("name", ["a/b", "", "a+", "#", "a\nb", "x" * 256])
def test_device_and_tag_names_that_would_merge_series_are_refused(name: str) -> None:
    for field in ("device", "tag"):
        reading = {"device": "d", "tag": "t", "ts": 1, "value": 1, field: name}
        body = {**_VALID[Batch], "readings": [reading]}
        with pytest.raises(WireError, match=rf"readings\[0\]\.{field}"):
            wire.decode(json.dumps(body).encode(), Batch)

"""The wire contract: every message between gateway, edge node and cloud, its topics and encoding.

Encoding: JSON, decoded and validated by msgspec straight into typed structs.
- Debuggable: `mosquitto_sub -v -t 'factory/v1/#'` shows readable messages on the shop floor.
- Fast: msgspec validates while it parses (no intermediate dicts), about as fast as msgpack
  through a generic decoder, so ingest does not need a binary format to reach 100k readings/s.
- Safe: a malformed or wrong-version payload raises `WireError` with the JSON path of the
  problem; it never raises anything else, so a receiver can count it and carry on.

Timestamps are integers: nanoseconds since the Unix epoch, UTC. `Reading.src` says whose
clock took them (the device's or the gateway's).

Sequence numbers: a gateway numbers every reading it commits to its buffer, monotonically and
persisted across restarts. A `Batch` carries a contiguous run `first_seq..last_seq`; reading i
of the batch has sequence `first_seq + i`. The edge deduplicates on (gateway, seq).
"""

from __future__ import annotations

import re
import time
from enum import StrEnum
from typing import Annotated, Any, Final, TypeVar

import msgspec

from factory_common.errors import FactoryError

WIRE_VERSION: Final = 1
TOPIC_ROOT: Final = f"factory/v{WIRE_VERSION}"
# A batch larger than this is refused before parsing: it protects the edge's memory and
# bounds the time one message can hold the ingest loop.
MAX_PAYLOAD_BYTES: Final = 4 * 1024 * 1024
_ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# Every integer on the wire is 64-bit: SQLite's INTEGER and the cloud's BIGINT columns hold
# nothing larger, and a value a store cannot hold must be refused here, where the error names
# the field, rather than by the store, where it fails a whole transaction. Timestamps (ns since
# the epoch, up to the year 2262), seqs and counters are never negative.
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Timestamp = Count
Version = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
# JSON has no inf or NaN, and msgspec refuses numbers beyond a double; the bound only says so.
Seconds = Annotated[float, msgspec.Meta(ge=0.0, le=1e15)]
# Device and tag names become series keys joined by '/' and URL path segments: no '/' (so
# `a/b`+`c` and `a`+`b/c` can never name the same series), no MQTT wildcards or control
# characters. Configs are stricter (check_id); the wire refuses only what breaks the edge.
Name = Annotated[str, msgspec.Meta(pattern=r"^[^/+#\x00-\x1f\x7f]{1,255}$")]
Value = bool | Int64 | float | str | None


class WireError(FactoryError, ValueError):
    """A payload or topic that does not follow this contract; the message says what and where."""


class Quality(StrEnum):
    GOOD = "good"
    BAD = "bad"
    UNCERTAIN = "uncertain"


class TimeSource(StrEnum):
    DEVICE = "device"
    GATEWAY = "gateway"


class Reading(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """One value of one tag at one moment. Equipment events and product IDs are readings too.

    gc=False: its fields are scalars, so a Reading can never be part of a reference cycle; left
    to the cyclic collector, the hundred thousand a second a gateway makes triggered its
    collections over and over, and a full one stopped the event loop for tens of ms.
    """

    device: Name
    tag: Name
    ts: Timestamp
    value: Value
    quality: Quality = Quality.GOOD
    reason: str = ""
    src: TimeSource = TimeSource.GATEWAY


class Batch(msgspec.Struct, frozen=True, omit_defaults=True):
    """A contiguous run of a gateway's buffered readings, published with QoS 1."""

    v: Version
    gateway: str
    boot: str
    first_seq: Count
    last_seq: Count
    readings: list[Reading]
    sent_at: Timestamp = 0
    # True when the batch comes from the backlog after an outage rather than live polling.
    replay: bool = False
    # False when the gateway clock was not NTP-synchronised when these readings were taken.
    clock_synced: bool = True

    def seqs(self) -> range:
        return range(self.first_seq, self.last_seq + 1)


class DeviceHealth(msgspec.Struct, frozen=True, omit_defaults=True):
    state: str
    last_success: Timestamp | None = None
    errors: Count = 0
    last_error: str = ""


class ConnectorHealth(msgspec.Struct, frozen=True, omit_defaults=True):
    """How one connector is doing; `state` is one of starting, up, degraded, down."""

    name: str
    type: str
    state: str
    last_success: Timestamp | None = None
    polls: Count = 0
    errors: Count = 0
    readings: Count = 0
    latency_ms: Seconds | None = None
    last_error: str = ""
    devices: dict[str, DeviceHealth] = {}
    # Protocol-specific error counts by kind (garbled lines, CRC errors, refused filters...).
    counters: dict[str, Count] = {}
    # Poll cycles whose readings were flagged uncertain because the wall clock jumped.
    clock_jumps: Count = 0


class GatewayStatus(msgspec.Struct, frozen=True, omit_defaults=True):
    """Retained on the status topic. The MQTT last will is a minimal one (online=False, the
    gateway's identity, version and boot): the broker sends it long after it was registered,
    so it carries no counters; `ts` 0 says it is not a moment the gateway spoke."""

    v: Version
    gateway: str
    online: bool
    ts: Timestamp = 0
    version: str = ""
    boot: str = ""
    started_at: Timestamp = 0
    uptime_s: Seconds = 0.0
    buffer_depth: Count = 0
    buffer_bytes: Count = 0
    last_seq: Count = 0
    # Readings dropped, by cause (disk_budget, ttl, corrupt, ...): never silently lost.
    dropped: dict[str, Count] = {}
    connectors: list[ConnectorHealth] = []
    clock_synced: bool = True
    # Batches the broker acknowledged but an edge receipt showed lost: re-sent, and (after 3
    # tries) kept in the buffer unconfirmed. Since the gateway process started.
    resent: Count = 0
    unconfirmed: Count = 0


MAX_STORED_RANGES: Final = 64


class Stored(msgspec.Struct, frozen=True, omit_defaults=True):
    """The edge's end-to-end receipt, retained on a gateway's `stored` topic after each commit
    that held anything of that gateway: which of its seqs the edge has stored.

    A gateway deletes buffered readings only once they appear here (`mqtt.confirm: edge`), so
    a batch a broker acknowledged and then lost is noticed and sent again.
    """

    v: Version
    gateway: str
    edge: str
    ts: Timestamp
    # The newest (highest) MAX_STORED_RANGES merged seq ranges the edge holds, ascending.
    ranges: list[tuple[Count, Count]]
    # ts of the GatewayStatus of this gateway the edge committed last (0: none yet).
    status_ts: Timestamp = 0


class UpdateAction(StrEnum):
    INSTALL = "install"  # a release artifact into the inactive slot, on trial until healthy
    CONFIG = "config"  # a new gateway config, on trial until healthy; the last good one is kept
    ROLLBACK = "rollback"  # back to the release and config that were committed before this one


class UpdateRequest(msgspec.Struct, frozen=True, omit_defaults=True):
    """The fleet asks a gateway's update agent for one update; the agent decides the outcome.

    Sent with QoS 1 to the gateway's `update-request` topic (only fleet identities may publish
    there), or handed to the agent's local CLI over SSH. `id` makes it idempotent: a request
    seen before is answered with the state it already reached, never carried out twice.
    """

    v: Version
    id: str
    gateway: str
    action: UpdateAction
    # INSTALL: where the agent finds the artifact (a path on the gateway or an http(s) URL),
    # its version, and its sha256 (checked before the signature, so a swapped file is named).
    artifact: str = ""
    release: str = ""
    sha256: str = ""
    # A lower version is refused unless the request says it is meant.
    downgrade: bool = False
    # CONFIG: the whole gateway config (YAML), validated by the gateway's models before use.
    config: str = ""
    # How long the new release or config has to report healthy before the agent returns.
    health_timeout_s: Seconds = 120.0
    issued_at: Timestamp = 0
    issued_by: str = ""


class UpdatePhase(StrEnum):
    IDLE = "idle"  # running the committed release; nothing in progress
    VERIFYING = "verifying"
    INSTALLING = "installing"
    SWITCHING = "switching"  # the slot (or config) link is being switched and the gateway restarted
    TRIAL = "trial"  # running the new release or config, waiting for it to report healthy
    COMMITTED = "committed"  # healthy: the new release or config is the committed one
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"  # unhealthy (or interrupted): back on the previous committed one
    REFUSED = "refused"  # not started: bad signature, hash, downgrade, invalid config, busy
    FAILED = "failed"  # could not be installed (e.g. pip failed); still on the committed one


TERMINAL_PHASES: Final = frozenset(
    {
        UpdatePhase.IDLE,
        UpdatePhase.COMMITTED,
        UpdatePhase.ROLLED_BACK,
        UpdatePhase.REFUSED,
        UpdatePhase.FAILED,
    }
)


class UpdateState(msgspec.Struct, frozen=True, omit_defaults=True):
    """Retained on the gateway's `update` topic by its update agent after every step."""

    v: Version
    gateway: str
    ts: Timestamp
    phase: UpdatePhase
    # The committed release and slot, and the sha256 of the committed config.
    release: str = ""
    slot: str = ""
    config_sha256: str = ""
    # The request being (or last) handled and what it asked for.
    request: str = ""
    action: UpdateAction | None = None
    target: str = ""
    # Why a trial ended in a rollback, or why a request was refused or failed.
    detail: str = ""
    # Gateway exits seen during the current trial (a crash loop ends it early).
    crashes: Count = 0


class TagType(StrEnum):
    """What a tag's values are, after scaling: what the UI shows and what a write must be."""

    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    STR = "str"
    ANY = "any"  # known only from the device's values (an OPC UA node, a mapped JSON field)


class TagInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """One tag as its gateway's config describes it: the metadata every screen needs."""

    device: str
    tag: str
    type: TagType
    unit: str = ""
    label: str = ""  # a human name ("Bath temperature"); empty: the UI derives one from `tag`
    description: str = ""
    writable: bool = False
    min: float | None = None
    max: float | None = None
    # Enumeration: value (as text, JSON keys are strings) -> name, e.g. {"2": "processing"}.
    enum: dict[str, str] = {}
    precision: int | None = None  # decimals to display; None: the UI chooses
    connector: str = ""  # the gateway connector that reads it (its health makes values stale)
    # Seconds between readings the gateway promises (poll interval, or max_interval for report
    # by exception); None when a value may legitimately stay unreported for any time.
    interval: float | None = None


class TagCatalogue(msgspec.Struct, frozen=True, omit_defaults=True):
    """Every tag of one gateway, retained on its `tags` topic and re-published on each connect,
    so the edge (and any other subscriber) knows units, types and limits before any reading."""

    v: int
    gateway: str
    ts: int
    tags: list[TagInfo] = []


class Write(msgspec.Struct, frozen=True):
    device: Name
    tag: Name
    value: Value


class Command(msgspec.Struct, frozen=True, omit_defaults=True):
    """Writes to devices (setpoint, recipe parameters, coil, GPIO output), executed at most once.

    A recipe is several writes in one command. A command past `expires_at` is refused.
    """

    v: Version
    id: str
    gateway: str
    writes: list[Write]
    issued_at: Timestamp
    expires_at: Timestamp
    issued_by: str = ""


class AckStatus(StrEnum):
    DONE = "done"  # every write executed and read back equal
    FAILED = "failed"  # at least one write failed or read back a different value
    REJECTED = "rejected"  # invalid for this gateway's config (unknown tag, not writable, range)
    EXPIRED = "expired"  # arrived after expires_at: not executed
    DUPLICATE = "duplicate"  # id already executed: not executed again, original result repeated


class WriteResult(msgspec.Struct, frozen=True, omit_defaults=True):
    device: Name
    tag: Name
    ok: bool
    readback: Value = None
    error: str = ""


class CommandAck(msgspec.Struct, frozen=True, omit_defaults=True):
    v: Version
    id: str
    gateway: str
    status: AckStatus
    ts: Timestamp
    results: list[WriteResult] = []
    detail: str = ""


# ---------------------------------------------------------------- topics


class TopicKind(StrEnum):
    DATA = "data"
    STATUS = "status"
    COMMAND = "cmd"
    ACK = "ack"
    STORED = "stored"
    UPDATE = "update"  # the update agent's retained UpdateState
    UPDATE_REQUEST = "update-request"  # UpdateRequest from fleet identities only
    TAGS = "tags"  # the gateway's retained TagCatalogue


def check_id(value: str, what: str = "gateway id") -> str:
    """Ids become topic levels and file names: no '/', '+', '#', spaces or empty strings."""
    if not _ID_PATTERN.match(value):
        raise WireError(
            f"invalid {what} {value!r}: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return value


def topic(kind: TopicKind, gateway: str) -> str:
    return f"{TOPIC_ROOT}/gw/{check_id(gateway)}/{kind.value}"


def data_topic(gateway: str) -> str:
    return topic(TopicKind.DATA, gateway)


def status_topic(gateway: str) -> str:
    return topic(TopicKind.STATUS, gateway)


def command_topic(gateway: str) -> str:
    return topic(TopicKind.COMMAND, gateway)


def ack_topic(gateway: str) -> str:
    return topic(TopicKind.ACK, gateway)


def stored_topic(gateway: str) -> str:
    return topic(TopicKind.STORED, gateway)


def update_topic(gateway: str) -> str:
    return topic(TopicKind.UPDATE, gateway)


def update_request_topic(gateway: str) -> str:
    return topic(TopicKind.UPDATE_REQUEST, gateway)


def tags_topic(gateway: str) -> str:
    return topic(TopicKind.TAGS, gateway)


def subscription(kind: TopicKind) -> str:
    """The wildcard an edge node subscribes to for one kind of message from every gateway."""
    return f"{TOPIC_ROOT}/gw/+/{kind.value}"


def parse_topic(name: str) -> tuple[str, TopicKind]:
    """Split a topic into (gateway id, kind); raises WireError for anything else."""
    prefix = f"{TOPIC_ROOT}/gw/"
    rest = name[len(prefix) :] if name.startswith(prefix) else ""
    parts = rest.split("/")
    if len(parts) != 2:
        raise WireError(f"topic {name!r} is not {prefix}<gateway>/<kind>")
    gateway, kind = parts
    try:
        return check_id(gateway), TopicKind(kind)
    except ValueError as exc:
        raise WireError(f"topic {name!r}: {exc}") from None


# ---------------------------------------------------------------- encoding

_encoder = msgspec.json.Encoder()
_decoders: dict[type, msgspec.json.Decoder[Any]] = {}


Message = (
    Batch
    | GatewayStatus
    | Command
    | CommandAck
    | Stored
    | UpdateRequest
    | UpdateState
    | TagCatalogue
)
# Bound, not constrained: decode(payload, kind) with kind typed as a union of message classes
# (a topic -> class table) returns that union.
M = TypeVar("M", bound=Message)


class _VersionOnly(msgspec.Struct):
    v: int


_version_decoder = msgspec.json.Decoder(_VersionOnly)


def now_ns() -> int:
    return time.time_ns()


def encode(message: Message) -> bytes:
    return _encoder.encode(message)


def decode(payload: bytes | bytearray, kind: type[M]) -> M:
    """Decode and validate one message; every failure is a WireError naming what and where."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireError(
            f"{kind.__name__} payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}"
        )
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    try:
        message: M = decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        _raise_version_error(payload, kind)
        raise WireError(f"malformed {kind.__name__}: {exc}") from None
    except (RecursionError, MemoryError) as exc:  # pathological nesting from a hostile client
        raise WireError(f"malformed {kind.__name__}: {type(exc).__name__}") from None
    if message.v != WIRE_VERSION:
        raise WireError(_version_message(kind, message.v))
    _check_ids(message)
    if isinstance(message, Batch):
        _check_batch(message)
    elif isinstance(message, Stored):
        _check_stored(message)
    elif isinstance(message, UpdateRequest):
        _check_update_request(message)
    return message


def _version_message(kind: type, version: int) -> str:
    return (
        f"{kind.__name__} has wire version {version}; this node speaks version {WIRE_VERSION}: "
        "upgrade the older side"
    )


def _raise_version_error(payload: bytes | bytearray, kind: type) -> None:
    """A payload of another version may fail shape checks first; report the version instead."""
    try:
        version = _version_decoder.decode(payload).v
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return
    if version != WIRE_VERSION:
        raise WireError(_version_message(kind, version)) from None


def _check_ids(message: Message) -> None:
    try:
        check_id(message.gateway)
    except WireError as exc:
        raise WireError(f"malformed {type(message).__name__}: {exc}") from None


def _check_batch(batch: Batch) -> None:
    count = batch.last_seq - batch.first_seq + 1
    if batch.first_seq < 0 or count != len(batch.readings):
        raise WireError(
            f"malformed Batch from {batch.gateway}: first_seq={batch.first_seq} "
            f"last_seq={batch.last_seq} but {len(batch.readings)} readings"
        )


def _check_stored(stored: Stored) -> None:
    if len(stored.ranges) > MAX_STORED_RANGES:
        raise WireError(
            f"malformed Stored for {stored.gateway}: {len(stored.ranges)} ranges, "
            f"at most {MAX_STORED_RANGES}"
        )
    previous = -1
    for lo, hi in stored.ranges:
        if lo < 0 or hi < lo or lo <= previous:
            raise WireError(
                f"malformed Stored for {stored.gateway}: range [{lo}, {hi}] is empty, "
                "negative or out of order"
            )
        previous = hi


def _check_update_request(request: UpdateRequest) -> None:
    needs = {UpdateAction.INSTALL: "artifact", UpdateAction.CONFIG: "config"}.get(request.action)
    if needs and not getattr(request, needs):
        raise WireError(
            f"malformed UpdateRequest {request.id!r} for {request.gateway}: "
            f"action {request.action.value} needs `{needs}`"
        )
    if not request.id or not request.health_timeout_s > 0:
        raise WireError(
            f"malformed UpdateRequest for {request.gateway}: needs an id and health_timeout_s > 0"
        )

"""Buffered readings into wire batches and statuses: contiguous runs, size limit, batching wait.

Pure: the uplink passes in the entries, the clock and the counters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from factory_common import wire
from gateway_image.firmware.buffer.format import BufferStats
from gateway_image.firmware.uplink.window import Counters

Entries = list[tuple[int, wire.Reading]]


def contiguous(entries: Entries) -> Entries:
    """The leading run of consecutive seqs (drops by budget or ttl leave gaps; a Batch can't)."""
    for i in range(1, len(entries)):
        if entries[i][0] != entries[0][0] + i:
            return entries[:i]
    return entries


def worth_waiting(found: int, replay: bool, max_readings: int, max_delay: float) -> bool:
    """A live batch that is not full yet may wait batch_max_delay for more readings."""
    return found < max_readings and not replay and max_delay > 0


@dataclass(frozen=True)
class Origin:
    """Who sends: the gateway id on the wire and this process's boot id."""

    gateway: str
    boot: str


def encode_batch(
    origin: Origin, entries: Entries, replay: bool, synced: bool, now: int
) -> tuple[wire.Batch, bytes]:
    """The batch for the longest prefix of `entries` that fits wire.MAX_PAYLOAD_BYTES."""
    while True:
        batch = wire.Batch(
            v=wire.WIRE_VERSION,
            gateway=origin.gateway,
            boot=origin.boot,
            first_seq=entries[0][0],
            last_seq=entries[-1][0],
            readings=[r for _, r in entries],
            sent_at=now,
            replay=replay,
            clock_synced=synced,
        )
        payload = wire.encode(batch)
        if len(payload) <= wire.MAX_PAYLOAD_BYTES or len(entries) == 1:
            return batch, payload
        entries = entries[: len(entries) // 2]  # the edge refuses oversized batches


@dataclass(frozen=True)
class Identity:
    """What a status says about the process besides the buffer and the connectors."""

    origin: Origin
    version: str
    started_at: int


def last_will(identity: Identity) -> wire.GatewayStatus:
    """Offline, who and which release, with `ts` 0: the broker sends it long after it was
    registered at connect, so counters in it would be stale and a time in it untrue."""
    return wire.GatewayStatus(
        v=wire.WIRE_VERSION,
        gateway=identity.origin.gateway,
        online=False,
        version=identity.version,
        boot=identity.origin.boot,
        started_at=identity.started_at,
    )


def status(
    identity: Identity,
    *,
    online: bool,
    now: int,
    uptime_s: float,
    stats: BufferStats,
    connectors: Sequence[wire.ConnectorHealth],
    counters: Counters,
    synced: bool,
) -> wire.GatewayStatus:
    return wire.GatewayStatus(
        v=wire.WIRE_VERSION,
        gateway=identity.origin.gateway,
        online=online,
        ts=now,
        version=identity.version,
        boot=identity.origin.boot,
        started_at=identity.started_at,
        uptime_s=round(uptime_s, 3),
        buffer_depth=stats.depth,
        buffer_bytes=stats.bytes,
        last_seq=stats.last_seq,
        dropped=stats.dropped,
        connectors=list(connectors),
        clock_synced=synced,
        resent=counters.batches_resent,
        unconfirmed=counters.batches_unconfirmed,
    )

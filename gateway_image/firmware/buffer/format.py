"""The buffer's on-disk format: schema, row encoding, SQLite connection settings, shared types."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final

import msgspec

from factory_common.errors import GatewayError
from factory_common.logs import get_logger
from factory_common.sqlite import open_db
from factory_common.wire import Reading

# Bytes SQLite spends on a row besides its body (rowid, stored_at, record header, cell
# pointer): counted so a budget of many tiny readings still bounds the file size.
ROW_OVERHEAD: Final = 24
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS readings (
    seq INTEGER PRIMARY KEY, stored_at INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Reading)
_many_decoder = msgspec.msgpack.Decoder(list[Reading])
log = get_logger(component="buffer")


class Policy(StrEnum):
    DROP_OLDEST = "drop_oldest"
    REFUSE_NEWEST = "refuse_newest"


class DropCause(StrEnum):
    DISK_BUDGET = "disk_budget"  # max_bytes reached (either policy)
    TTL = "ttl"  # waited longer than the ttl
    DISK_FULL = "disk_full"  # the OS refused to grow the file (the budget shrank to fit)
    CORRUPT = "corrupt"  # lost with a damaged part of the file
    QUEUE_FULL = "queue_full"  # handed over faster than commits could take them (intake.py)


class BufferClosed(GatewayError, RuntimeError):
    """The buffer was used after close()."""


@dataclass(frozen=True)
class BufferStats:
    depth: int
    bytes: int
    last_seq: int
    dropped: dict[str, int] = field(default_factory=dict)


def encode_reading(reading: Reading) -> bytes:
    return _encoder.encode(reading)


def decode_reading(body: bytes) -> Reading:
    return _decoder.decode(body)


def encode_readings(readings: Iterable[Reading]) -> list[bytes]:
    return list(map(_encoder.encode, readings))


def decode_readings(bodies: Sequence[bytes]) -> list[Reading]:
    """Many rows' bodies in one decoder call: each body is one msgpack value, so together,
    behind an array32 header, they are one msgpack array."""
    try:
        return _many_decoder.decode(b"".join([b"\xdd", len(bodies).to_bytes(4, "big"), *bodies]))
    except msgspec.DecodeError:
        return [decode_reading(body) for body in bodies]  # raises for the damaged row itself


def is_disk_full(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "is full" in str(exc)


def connect(path: Path) -> sqlite3.Connection:
    conn = open_db(path)
    # Appends touch the right edge of the seq index, deletes its left edge: a few pages. 512 KiB
    # instead of SQLite's 2 MiB per connection keeps the gateway's RSS down on a Pi.
    conn.execute("PRAGMA cache_size=-512")
    return conn

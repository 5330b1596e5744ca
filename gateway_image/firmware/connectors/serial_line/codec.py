"""Serial line instruments, pure: bytes in, framed lines out, lines parsed into tag values."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from factory_common.errors import GatewayError
from gateway_image.firmware.connectors.serial_line.checksum import (
    ChecksumMismatch,
    ChecksumSpec,
    verify,
)

FieldType = Literal["float", "int", "str"]


class Garbled(StrEnum):
    """Why a line was rejected; each kind is counted and logged once by the connector."""

    OVERLONG = "overlong"  # longer than max_length before a terminator arrived
    NOT_ASCII = "not_ascii"  # bytes outside printable text: line noise, wrong baud rate
    NO_MATCH = "no_match"  # text that the configured pattern does not describe
    BAD_VALUE = "bad_value"  # a group matched but does not convert to its type
    BAD_CHECKSUM = "bad_checksum"  # the line's checksum does not match its data


class LineError(GatewayError, ValueError):
    """A line that cannot be turned into readings; `kind` says which counter it goes to."""

    def __init__(self, kind: Garbled, detail: str) -> None:
        self.kind = kind
        super().__init__(detail)


@dataclass
class Framer:
    """Splits a byte stream into frames: by terminator, or every `length` bytes.

    An instrument switched on mid-line, or a baud-rate mismatch, produces runs of bytes with
    no terminator; they must not grow memory without bound, so anything longer than
    `max_length` is dropped up to the next terminator and reported as overlong.
    """

    terminator: bytes = b"\r\n"
    length: int | None = None
    max_length: int = 256
    _buffer: bytearray = field(default_factory=bytearray, repr=False)
    _discarding: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self.length is None and not self.terminator:
            raise ValueError("framing needs a terminator or a fixed length")
        if self.length is not None and self.length < 1:
            raise ValueError("fixed frame length must be at least 1 byte")

    def feed(self, data: bytes) -> list[bytes | LineError]:
        """Frames completed by `data`, in order; overlong runs appear as LineError items."""
        self._buffer += data
        if self.length is not None:
            return self._fixed()
        return self._terminated()

    def _fixed(self) -> list[bytes | LineError]:
        assert self.length is not None
        out: list[bytes | LineError] = []
        while len(self._buffer) >= self.length:
            out.append(bytes(self._buffer[: self.length]))
            del self._buffer[: self.length]
        return out

    def _terminated(self) -> list[bytes | LineError]:
        out: list[bytes | LineError] = []
        while True:
            end = self._buffer.find(self.terminator)
            if end < 0:
                break
            frame = bytes(self._buffer[:end])
            del self._buffer[: end + len(self.terminator)]
            if self._discarding:
                self._discarding = False
            elif len(frame) > self.max_length:
                out.append(_overlong(len(frame), self.max_length))
            else:
                out.append(frame)
        # Keep a possible partial terminator at the end; drop the rest once it is too long.
        if len(self._buffer) > self.max_length + len(self.terminator):
            if not self._discarding:
                out.append(_overlong(len(self._buffer), self.max_length))
            self._discarding = True
            del self._buffer[: len(self._buffer) - len(self.terminator) + 1]
        return out


def _overlong(size: int, limit: int) -> LineError:
    return LineError(
        Garbled.OVERLONG,
        f"{size} bytes arrived without a terminator, more than framing.max_length ({limit}): "
        "check framing.terminator (many instruments end lines with \\r alone) and the baud "
        "rate, or raise max_length if the instrument's lines really are that long",
    )


@dataclass(frozen=True)
class FieldSpec:
    """One named regex group mapped to one tag: value = converted group * scale + offset."""

    tag: str
    group: str
    type: FieldType = "float"
    scale: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True)
class LineSpec:
    pattern: re.Pattern[str]
    fields: Sequence[FieldSpec]
    encoding: str = "ascii"
    strip: bool = True
    checksum: ChecksumSpec | None = None


def is_blank(frame: bytes | LineError) -> bool:
    """An empty line (a lone terminator, or spaces): instruments send them between records."""
    return isinstance(frame, bytes) and not frame.strip()


Parsed = list[tuple[str, float | int | str | LineError]]


def decode_line(frame: bytes, encoding: str = "ascii", strip: bool = True) -> str:
    """Bytes to text; control characters other than tab mean noise, not an instrument line."""
    try:
        text = frame.decode(encoding)
    except UnicodeDecodeError as exc:
        raise LineError(Garbled.NOT_ASCII, f"undecodable byte at {exc.start}: {frame!r}") from None
    bad = next((c for c in text if not c.isprintable() and c not in "\t\r\n"), None)
    if bad is not None:
        raise LineError(Garbled.NOT_ASCII, f"control character {bad!r} in {frame!r}")
    return text.strip() if strip else text


def convert(raw: str, spec: FieldSpec) -> float | int | str:
    """One group's text to its tag value; raises LineError(BAD_VALUE) on a bad number."""
    if spec.type == "str":
        return raw
    try:
        number: float | int = int(raw.strip()) if spec.type == "int" else float(raw.strip())
    except ValueError:
        raise LineError(
            Garbled.BAD_VALUE, f"group {spec.group!r}: {raw!r} is not a valid {spec.type}"
        ) from None
    if spec.scale == 1.0 and spec.offset == 0.0:
        return number
    scaled = number * spec.scale + spec.offset
    # An int tag stays an int when scaling keeps it whole (counts scaled by 10, say).
    return int(scaled) if spec.type == "int" and float(scaled).is_integer() else scaled


def parse_line(frame: bytes, spec: LineSpec) -> Parsed:
    """A frame to (tag, value) pairs; a group that fails conversion yields a LineError value.

    Raises LineError for a line that is noise or does not match at all. Groups that did not
    take part in the match (alternatives in the pattern) produce nothing.
    """
    if spec.checksum is not None:
        try:
            verify(frame, spec.checksum)
        except ChecksumMismatch as exc:
            raise LineError(Garbled.BAD_CHECKSUM, str(exc)) from None
    text = decode_line(frame, spec.encoding, spec.strip)
    match = spec.pattern.fullmatch(text)
    if match is None:
        raise LineError(Garbled.NO_MATCH, f"line {text!r} does not match the pattern")
    out: Parsed = []
    for field_spec in spec.fields:
        raw = match.group(field_spec.group)
        if raw is None:
            continue
        try:
            out.append((field_spec.tag, convert(raw, field_spec)))
        except LineError as exc:
            out.append((field_spec.tag, exc))
    return out

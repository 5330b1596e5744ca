"""Reply checksums of serial instruments, and request commands as bytes (pure).

Instruments that guard their lines use a one-byte XOR (NMEA 0183 sentences, many scales) or
sum, or a CRC-16 (the Modbus polynomial, or CCITT's), over a span of the line, sent either as
hex digits or as raw bytes at a fixed place in the line. Both places are Python slices of the
frame (terminator removed): `data: [1, -3]` covers from the second byte to the fourth-last,
`field: [-2, null]` is the last two bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from factory_common.errors import GatewayError

Algorithm = Literal["xor8", "sum8", "crc16_modbus", "crc16_ccitt"]
Encoding = Literal["hex", "binary"]


def xor8(data: bytes) -> int:
    value = 0
    for byte in data:
        value ^= byte
    return value


def sum8(data: bytes) -> int:
    return sum(data) & 0xFF


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS: reflected polynomial 0xA001, initial 0xFFFF."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def crc16_ccitt(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: polynomial 0x1021, initial 0xFFFF, not reflected."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


ALGORITHMS: dict[str, tuple[Callable[[bytes], int], int]] = {
    "xor8": (xor8, 1),
    "sum8": (sum8, 1),
    "crc16_modbus": (crc16_modbus, 2),
    "crc16_ccitt": (crc16_ccitt, 2),
}


class ChecksumMismatch(GatewayError, ValueError):
    """The line's checksum field does not match its data."""


@dataclass(frozen=True)
class ChecksumSpec:
    algorithm: Algorithm
    data: tuple[int | None, int | None]
    field: tuple[int | None, int | None]
    encoding: Encoding = "hex"
    # Binary CRC-16s go low byte first on Modbus lines; hex digits read most significant first.
    little_endian: bool = False


def encode(value: int, spec: ChecksumSpec) -> bytes:
    width = ALGORITHMS[spec.algorithm][1]
    if spec.encoding == "hex":
        return f"{value:0{2 * width}X}".encode()
    return value.to_bytes(width, "little" if spec.little_endian else "big")


def verify(frame: bytes, spec: ChecksumSpec) -> None:
    """Raise ChecksumMismatch unless the frame's checksum field matches its data span."""
    function, _width = ALGORITHMS[spec.algorithm]
    data = frame[slice(*spec.data)]
    sent = frame[slice(*spec.field)]
    expected = encode(function(data), spec)
    if spec.encoding == "hex" and sent.upper() == expected:
        return
    if sent == expected:
        return
    raise ChecksumMismatch(
        f"{spec.algorithm} of {data!r} is {expected.decode('latin-1')!r}, the line says "
        f"{sent.decode('latin-1')!r}: a noisy line or a wrong checksum span in the config"
    )


ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|[rnt0\\]|.?)")
NAMED = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\"}


def unescape(text: str) -> bytes:
    """Text with \\r, \\n, \\t, \\0, \\\\ and \\xHH escapes to the bytes an instrument gets."""

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code.startswith("x") and len(code) == 3:
            return chr(int(code[1:], 16))
        if code in NAMED:
            return NAMED[code].decode("latin-1")
        raise ValueError(f"unknown escape \\{code} (use \\r \\n \\t \\0 \\\\ or \\xHH)")

    return ESCAPE.sub(one, text).encode("latin-1")


def command_bytes(text: str | None, hex_text: str | None) -> bytes:
    """A request from text with escapes, or from hex digits ("1B 70" or "1B:70")."""
    if hex_text is not None:
        return bytes.fromhex(hex_text.replace(":", " "))
    return unescape(text or "")

"""Pure Modbus codecs: register words <-> typed values, byte orders, bits, strings, scaling.

No I/O and no pymodbus here, so every rule is testable with hypothesis in microseconds.
Registers are ints 0..65535 as a Modbus read returns them (each already big-endian on the
wire, Modbus application protocol 4.2); the tag's byte order says how a device laid a wider
value across them.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

from factory_common.errors import GatewayError
from factory_common.wire import Value
from gateway_image.firmware.connectors.modbus.config import (
    ByteOrder,
    DataType,
    ModbusTag,
    register_count,
)

_FORMATS = {
    DataType.INT16: ">h",
    DataType.UINT16: ">H",
    DataType.INT32: ">i",
    DataType.UINT32: ">I",
    DataType.INT64: ">q",
    DataType.UINT64: ">Q",
    DataType.FLOAT32: ">f",
    DataType.FLOAT64: ">d",
}
_WORDS = (DataType.INT16, DataType.UINT16)
_INT_RANGES = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT64: (0, 2**64 - 1),
}


class CodecError(GatewayError, ValueError):
    """A value that cannot be encoded, or registers that do not fit the tag."""


def _reorder(data: bytes, order: ByteOrder, words: bool = True) -> bytes:
    """Swap between wire order and ABCD; the operation is its own inverse."""
    if order.byte_swap:
        data = b"".join(data[i + 1 : i + 2] + data[i : i + 1] for i in range(0, len(data), 2))
    if words and order.word_swap:
        data = b"".join(data[i : i + 2] for i in reversed(range(0, len(data), 2)))
    return data


def registers_to_bytes(registers: Sequence[int]) -> bytes:
    for word in registers:
        if not 0 <= word <= 0xFFFF:
            raise CodecError(f"register value {word} is not a 16-bit word")
    return struct.pack(f">{len(registers)}H", *registers)


def bytes_to_registers(data: bytes) -> list[int]:
    return list(struct.unpack(f">{len(data) // 2}H", data))


def decode_number(registers: Sequence[int], data_type: DataType, order: ByteOrder) -> int | float:
    """Registers as read from the device -> int or float, per type and byte order."""
    need = register_count(data_type)
    if len(registers) != need:
        raise CodecError(f"{data_type} needs {need} registers, got {len(registers)}")
    if data_type in _WORDS:
        # One word, no bytes object: most tags are 16-bit, and this ran for every one of them.
        return _decode_word(registers[0], data_type, order)
    data = _reorder(registers_to_bytes(registers), order)
    value = struct.unpack(_FORMATS[data_type], data)[0]
    return shortest_float32(value, data) if data_type is DataType.FLOAT32 else value


def _decode_word(word: int, data_type: DataType, order: ByteOrder) -> int:
    """An int16 or uint16 from one register: the same as the struct path, without bytes."""
    if not 0 <= word <= 0xFFFF:
        raise CodecError(f"register value {word} is not a 16-bit word")
    if order.byte_swap:
        word = ((word & 0xFF) << 8) | (word >> 8)
    return word - 0x10000 if data_type is DataType.INT16 and word & 0x8000 else word


def shortest_float32(value: float, data: bytes) -> float:
    """The shortest decimal that is the same float32: 123.456, not 123.45600128173828.

    Devices hold float32; widening it to a Python float exposes binary noise that would
    travel to the edge, its charts and CSV exports. Writing the result back gives the same
    bits, so nothing is lost.
    """
    if not math.isfinite(value):
        return value
    for digits in range(6, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.pack(">f", candidate) == data:
            return candidate
    return value


def encode_number(value: int | float, data_type: DataType, order: ByteOrder) -> list[int]:
    """int or float -> registers to write, per type and byte order; range-checked."""
    if data_type in _INT_RANGES:
        low, high = _INT_RANGES[data_type]
        if not isinstance(value, int) or not low <= value <= high:
            raise CodecError(f"{value!r} does not fit {data_type} ({low}..{high})")
    try:
        data = struct.pack(_FORMATS[data_type], value)
    except (struct.error, OverflowError) as exc:
        raise CodecError(f"{value!r} cannot be encoded as {data_type}: {exc}") from None
    return bytes_to_registers(_reorder(data, order))


def decode_string(registers: Sequence[int], order: ByteOrder) -> str:
    """Characters run in register order; BADC/DCBA devices swap the two bytes of each register.

    Trailing NUL padding is removed; undecodable bytes become U+FFFD rather than an error,
    because a product ID with one bad byte is still worth reporting.
    """
    data = _reorder(registers_to_bytes(registers), order, words=False)
    return data.rstrip(b"\x00").decode("utf-8", errors="replace")


def encode_string(text: str, length: int, order: ByteOrder) -> list[int]:
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CodecError(f"text cannot be encoded as UTF-8: {exc.reason}") from None
    if len(data) > 2 * length:
        raise CodecError(f"{len(data)} bytes of text do not fit {length} registers")
    data = data.ljust(2 * length, b"\x00")
    return bytes_to_registers(_reorder(data, order, words=False))


def get_bit(register: int, bit: int) -> bool:
    """Bit 0 is the least significant bit of the register (as PLC manuals number them)."""
    return bool((register >> bit) & 1)


def set_bit(register: int, bit: int, on: bool) -> int:
    return register | (1 << bit) if on else register & ~(1 << bit) & 0xFFFF


WHOLE_TOLERANCE = 1e-6


def scale_value(raw: int | float, scale: float, offset: float) -> int | float:
    """Engineering value = raw * scale + offset; an unscaled integer stays an integer."""
    if scale == 1 and offset == 0:
        return raw
    # 15 significant digits drop binary noise (3 * 0.1 = 0.30000000000000004) that would
    # otherwise reach charts and exports; registers never carry that much precision.
    return float(f"{raw * scale + offset:.15g}")


def unscale_value(
    value: int | float, scale: float, offset: float, data_type: DataType
) -> int | float:
    """The raw value to write for an engineering value. An integer register holds whole
    multiples of `scale` only: a value between two steps is refused, never rounded (a
    setpoint of 21.5 to a whole-number tag must not become 22 and be reported done)."""
    raw = value if scale == 1 and offset == 0 else (value - offset) / scale
    if data_type in _INT_RANGES:
        if isinstance(raw, float):
            if not math.isfinite(raw):
                raise CodecError(f"{value!r} is not a finite number")
            whole = round(raw)
            # Decimal inputs are not exact in binary (21.5 / 0.1 = 214.99999999999997).
            if abs(raw - whole) > WHOLE_TOLERANCE * max(1.0, abs(raw)):
                step = "a whole number" if scale == 1 else f"a multiple of {scale:g}"
                if offset:
                    step += f" (plus {offset:g})"
                raise CodecError(f"{value!r} does not fit: this tag takes {step}")
            raw = whole
        return int(raw)
    return float(raw)


def decode_tag(tag: ModbusTag, words: Sequence[int] | Sequence[bool]) -> Value:
    """The engineering value of `tag` from exactly its slice of a read (registers or bits)."""
    if tag.table.is_bits:
        return bool(words[0])
    if tag.type is DataType.BOOL:
        word = int(words[0])
        return get_bit(word, tag.bit) if tag.bit is not None else word != 0
    if tag.type is DataType.STRING:
        return decode_string([int(w) for w in words], tag.byte_order)
    raw = decode_number([int(w) for w in words], tag.type, tag.byte_order)
    return scale_value(raw, tag.scale, tag.offset)


def encode_tag(tag: ModbusTag, value: Value, current: int | None = None) -> list[int] | bool:
    """What to write for `value`: a bool for coils, else registers.

    A bit-in-register write needs the register's `current` value (read-modify-write), so
    the other 15 bits are written back unchanged.
    """
    if tag.type is DataType.BOOL:
        if not isinstance(value, bool) and value not in (0, 1):
            raise CodecError(f"tag {tag.name} is bool: write true or false, not {value!r}")
        on = bool(value)
        if tag.table.is_bits:
            return on
        if tag.bit is None:
            return [int(on)]
        if current is None:
            raise CodecError("writing one bit needs the register's current value")
        return [set_bit(current, tag.bit, on)]
    if tag.type is DataType.STRING:
        if not isinstance(value, str):
            raise CodecError(f"tag {tag.name} is a string: write text, not {value!r}")
        return encode_string(value, tag.length or 0, tag.byte_order)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CodecError(f"tag {tag.name} is {tag.type}: write a number, not {value!r}")
    raw = unscale_value(value, tag.scale, tag.offset, tag.type)
    return encode_number(raw, tag.type, tag.byte_order)

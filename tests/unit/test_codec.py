"""Modbus codecs: round-trips for every type and byte order, and vectors from device manuals."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway_image.firmware.connectors.modbus.codec import (
    CodecError,
    decode_number,
    decode_string,
    decode_tag,
    encode_number,
    encode_string,
    encode_tag,
    get_bit,
    set_bit,
    unscale_value,
)
from gateway_image.firmware.connectors.modbus.config import ByteOrder, DataType, ModbusTag

ORDERS = list(ByteOrder)
INT_TYPES = {
    DataType.INT16: (16, True),
    DataType.UINT16: (16, False),
    DataType.INT32: (32, True),
    DataType.UINT32: (32, False),
    DataType.INT64: (64, True),
    DataType.UINT64: (64, False),
}


def int_values(bits: int, signed: bool) -> st.SearchStrategy[int]:
    if signed:
        return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return st.integers(0, 2**bits - 1)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("data_type", list(INT_TYPES))
def test_integer_round_trip(data_type: DataType, order: ByteOrder) -> None:
    @given(int_values(*INT_TYPES[data_type]))
    def check(value: int) -> None:
        words = encode_number(value, data_type, order)
        assert all(0 <= w <= 0xFFFF for w in words)
        assert decode_number(words, data_type, order) == value

    check()


@pytest.mark.parametrize("order", ORDERS)
@given(value=st.floats(width=32, allow_nan=False))
def test_float32_round_trip(order: ByteOrder, value: float) -> None:
    words = encode_number(value, DataType.FLOAT32, order)
    decoded = decode_number(words, DataType.FLOAT32, order)
    # The decoded float is the shortest decimal for the same float32: same bits both ways.
    assert struct.pack(">f", decoded) == struct.pack(">f", value)
    assert encode_number(decoded, DataType.FLOAT32, order) == words
    assert math.isinf(decoded) or float(f"{decoded:.9g}") == decoded  # at most 9 digits


def test_float32_reads_as_its_shortest_decimal() -> None:
    assert decode_number([0x42F6, 0xE979], DataType.FLOAT32, ByteOrder.ABCD) == 123.456


@pytest.mark.parametrize("order", ORDERS)
@given(value=st.floats(allow_nan=False))
def test_float64_round_trip(order: ByteOrder, value: float) -> None:
    assert (
        decode_number(encode_number(value, DataType.FLOAT64, order), DataType.FLOAT64, order)
        == value
    )


@pytest.mark.parametrize("order", ORDERS)
def test_nan_survives(order: ByteOrder) -> None:
    words = encode_number(math.nan, DataType.FLOAT32, order)
    assert math.isnan(decode_number(words, DataType.FLOAT32, order))


# float32 123.456 is 0x42F6E979; how each order puts it on the wire (vendor manual tables).
FLOAT_VECTORS = {
    ByteOrder.ABCD: [0x42F6, 0xE979],
    ByteOrder.CDAB: [0xE979, 0x42F6],
    ByteOrder.BADC: [0xF642, 0x79E9],
    ByteOrder.DCBA: [0x79E9, 0xF642],
}


@pytest.mark.parametrize(("order", "words"), FLOAT_VECTORS.items())
def test_float32_known_vectors(order: ByteOrder, words: list[int]) -> None:
    assert encode_number(123.456, DataType.FLOAT32, order) == words
    assert decode_number(words, DataType.FLOAT32, order) == pytest.approx(123.456, rel=1e-7)


def test_int64_orders_against_struct() -> None:
    value = 0x0102030405060708
    be = list(struct.unpack(">4H", struct.pack(">q", value)))
    le = list(struct.unpack(">4H", struct.pack("<q", value)))
    assert (
        encode_number(value, DataType.INT64, ByteOrder.ABCD)
        == be
        == [0x0102, 0x0304, 0x0506, 0x0708]
    )
    assert encode_number(value, DataType.INT64, ByteOrder.DCBA) == le
    assert encode_number(value, DataType.INT64, ByteOrder.CDAB) == be[::-1]
    assert encode_number(value, DataType.INT64, ByteOrder.BADC) == [0x0201, 0x0403, 0x0605, 0x0807]


def test_int16_negative_and_byte_swap() -> None:
    assert encode_number(-2, DataType.INT16, ByteOrder.ABCD) == [0xFFFE]
    assert decode_number([0x0100], DataType.INT16, ByteOrder.BADC) == 1
    assert decode_number([0x0100], DataType.UINT16, ByteOrder.CDAB) == 256


@pytest.mark.parametrize(
    ("value", "data_type"),
    [
        (70000, DataType.INT16),
        (-1, DataType.UINT32),
        (2**64, DataType.UINT64),
        (1.5, DataType.INT32),
    ],
)
def test_out_of_range_is_refused(value: float, data_type: DataType) -> None:
    with pytest.raises(CodecError, match="does not fit"):
        encode_number(value, data_type, ByteOrder.ABCD)


def test_wrong_register_count() -> None:
    with pytest.raises(CodecError, match="needs 2 registers"):
        decode_number([1], DataType.FLOAT32, ByteOrder.ABCD)


@pytest.mark.parametrize("order", ORDERS)
@given(
    text=st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=20),
    spare=st.integers(0, 3),
)
def test_string_round_trip(order: ByteOrder, text: str, spare: int) -> None:
    length = (len(text.encode()) + 1) // 2 + spare
    if length == 0:
        length = 1
    words = encode_string(text, length, order)
    assert len(words) == length
    assert decode_string(words, order) == text


def test_string_byte_layout() -> None:
    assert encode_string("AB-1", 3, ByteOrder.ABCD) == [0x4142, 0x2D31, 0]
    assert encode_string("AB-1", 3, ByteOrder.BADC) == [0x4241, 0x312D, 0]
    # Word order does not reorder characters: they run in register order.
    assert encode_string("AB-1", 3, ByteOrder.CDAB) == [0x4142, 0x2D31, 0]
    with pytest.raises(CodecError, match="do not fit"):
        encode_string("too long", 2, ByteOrder.ABCD)
    with pytest.raises(CodecError, match="UTF-8"):
        encode_string("\ud800", 2, ByteOrder.ABCD)


@given(register=st.integers(0, 0xFFFF), bit=st.integers(0, 15), on=st.booleans())
def test_bit_set_get(register: int, bit: int, on: bool) -> None:
    updated = set_bit(register, bit, on)
    assert get_bit(updated, bit) is on
    mask = 0xFFFF & ~(1 << bit)
    assert updated & mask == register & mask


def tag(**fields: object) -> ModbusTag:
    return ModbusTag.model_validate({"name": "t", "table": "holding", "address": 0, **fields})


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(
    "data_type", [t for t in DataType if t not in (DataType.BOOL, DataType.STRING)]
)
@given(
    raw=st.integers(-30000, 30000),
    scale=st.sampled_from([1.0, 0.1, 0.01, 2.5]),
    offset=st.sampled_from([0.0, -40.0, 273.15]),
)
def test_scaled_tag_round_trip(
    order: ByteOrder, data_type: DataType, raw: int, scale: float, offset: float
) -> None:
    if data_type.value.startswith("uint"):
        raw = abs(raw)
    t = tag(type=data_type, byte_order=order, scale=scale, offset=offset)
    value = decode_tag(
        t, encode_number(raw if "int" in data_type else float(raw), data_type, order)
    )
    assert value == pytest.approx(raw * scale + offset)
    words = encode_tag(t, value)
    assert decode_number(words, data_type, order) == pytest.approx(raw)


def test_unscaled_integer_stays_integer() -> None:
    assert decode_tag(tag(type="int16"), [5]) == 5
    assert isinstance(decode_tag(tag(type="int16"), [5]), int)
    assert decode_tag(tag(type="int16", scale=0.1), [215]) == pytest.approx(21.5)
    assert unscale_value(21.5, 0.1, 0.0, DataType.INT16) == 215


def test_a_value_between_integer_steps_is_refused_not_rounded() -> None:
    with pytest.raises(CodecError, match="takes a whole number"):
        unscale_value(21.5, 1, 0.0, DataType.UINT16)
    with pytest.raises(CodecError, match=r"multiple of 0\.1"):
        encode_tag(tag(type="int16", scale=0.1), 21.55)
    assert unscale_value(22.0, 1, 0.0, DataType.UINT16) == 22
    assert decode_tag(tag(type="uint16", scale=0.1), [3]) == 0.3  # not 0.30000000000000004


def test_bit_in_register_tag() -> None:
    t = tag(type="bool", bit=3)
    assert decode_tag(t, [0b1000]) is True
    assert decode_tag(t, [0b0111]) is False
    assert encode_tag(t, True, current=0b0001) == [0b1001]
    with pytest.raises(CodecError, match="current value"):
        encode_tag(t, True)


def test_coil_and_register_bool() -> None:
    coil = ModbusTag.model_validate({"name": "c", "table": "coil", "address": 1})
    assert decode_tag(coil, [True]) is True
    assert encode_tag(coil, False) is False
    flag = tag(type="bool")
    assert decode_tag(flag, [7]) is True
    assert encode_tag(flag, True) == [1]


@pytest.mark.parametrize(
    ("fields", "value", "message"),
    [
        ({"type": "int16"}, "x", "write a number"),
        ({"type": "int16"}, True, "write a number"),
        ({"type": "bool"}, 3, "write true or false"),
        ({"type": "string", "length": 2}, 5, "write text"),
        ({"type": "uint16", "scale": 0.1}, 7000, "does not fit"),
    ],
)
def test_encode_tag_rejects(fields: dict, value: object, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        encode_tag(tag(**fields), value)  # type: ignore[arg-type]

"""The decode plan (one struct per request, worked out once) against decode_tag, tag by tag:
the same readings, bit for bit, for every type, byte order, scale, bit and string tag."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from factory_common.wire import Reading
from gateway_image.firmware.connectors.modbus.coalesce import plan_device
from gateway_image.firmware.connectors.modbus.config import ByteOrder, DataType, ModbusTag, Table
from gateway_image.firmware.connectors.modbus.decode_plan import RequestDecoder

NUMERIC = [t for t in DataType if t not in (DataType.BOOL, DataType.STRING)]


@st.composite
def tags(draw: st.DrawFn, n: int) -> ModbusTag:
    table = draw(st.sampled_from(list(Table)))
    spec: dict[str, Any] = {"name": f"t{n}", "table": table, "address": draw(st.integers(0, 60))}
    if table.is_bits:
        return ModbusTag(**spec, type="bool")
    kind = draw(st.sampled_from([*NUMERIC, DataType.BOOL, DataType.STRING]))
    spec |= {"type": kind, "byte_order": draw(st.sampled_from(list(ByteOrder)))}
    if kind is DataType.STRING:
        spec["length"] = draw(st.integers(1, 6))
    elif kind is DataType.BOOL:
        spec["bit"] = draw(st.none() | st.integers(0, 15))
    elif draw(st.booleans()):
        spec["scale"] = draw(st.sampled_from([0.1, -1.0, 0.001, 2.5, 1e300, 1.0]))
        spec["offset"] = draw(st.sampled_from([0.0, -40.0, 273.15]))
    return ModbusTag(**spec)


@st.composite
def layouts(draw: st.DrawFn) -> list[ModbusTag]:
    size = draw(st.integers(1, 25))
    return [draw(tags(n)) for n in range(size)]


def exact(readings: list[Reading]) -> list[tuple[object, ...]]:
    """What must match bit for bit: repr tells 0.0 from -0.0, 1 from 1.0 and True."""
    return [
        (r.device, r.tag, r.ts, type(r.value), repr(r.value), r.quality, r.reason) for r in readings
    ]


# Words as a device may send them, weighted towards the patterns that decode specially
# (NaN, infinities, -0.0, all ones), plus now and then a value that is not a 16-bit word.
WORDS = st.one_of(
    st.integers(0, 0xFFFF),
    st.sampled_from([0, 0x7FC0, 0x7F80, 0xFF80, 0x8000, 0xFFFF, 0x3F80, 0x4141]),
)
BAD_WORDS = st.sampled_from([-1, 0x10000])


@settings(max_examples=300, deadline=None)
@given(layout=layouts(), data=st.data())
def test_plan_decodes_exactly_as_decode_tag(layout: list[ModbusTag], data: st.DataObject) -> None:
    for table, request in plan_device(layout, max_registers=40, max_gap=3):
        decoder = RequestDecoder(request)
        if table.is_bits:
            values: list[Any] = data.draw(
                st.lists(st.booleans(), min_size=request.count, max_size=request.count + 7)
            )
        else:
            values = data.draw(st.lists(WORDS, min_size=request.count, max_size=request.count))
            if data.draw(st.integers(0, 9)) == 0:
                values[data.draw(st.integers(0, request.count - 1))] = data.draw(BAD_WORDS)
        assert exact(decoder.readings("dev", 7, values)) == exact(
            decoder.reference("dev", 7, values)
        )


@given(words=st.lists(st.integers(0, 0xFFFF), min_size=120, max_size=120))
def test_plan_decodes_every_type_and_order_side_by_side(words: list[int]) -> None:
    # One request holding every numeric type in every byte order, back to back, with gaps.
    layout, address = [], 0
    for data_type in NUMERIC:
        for order in ByteOrder:
            tag = ModbusTag(
                name=f"{data_type}_{order}",
                table="holding",
                address=address,
                type=data_type,
                byte_order=order,
            )
            layout.append(tag)
            address += tag.count + 1
    ((_table, request),) = plan_device(layout, max_registers=125, max_gap=1)
    decoder = RequestDecoder(request)
    values = words[: request.count]
    assert exact(decoder.readings("dev", 1, values)) == exact(decoder.reference("dev", 1, values))

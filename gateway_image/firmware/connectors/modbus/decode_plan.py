"""Decoding one planned read's response into readings, worked out once per request.

`codec.decode_tag` decides per tag and per poll what the tag is (table, type, byte order,
scale) and slices the registers it needs; at 1,000 tags per poll that bookkeeping was most
of the gateway's decode time. A `RequestDecoder` makes those decisions when the request is
planned: numeric tags become fields of a few precompiled `struct.Struct`s (one unpack per
request decodes all of them), bits, bools and strings become offsets into the response, and
only the steps a tag really needs (float32 shortest form, scale, finiteness) run per poll.

The results are exactly `decode_tag`'s, which stays the reference (writes read back through
it, and a response with a word that is not 16-bit is decoded through it so its errors read
the same). Byte orders map onto two buffers: the response as it came (ABCD is big-endian,
DCBA little-endian over a value's span) and the same words with their bytes swapped (BADC is
big-endian there, CDAB little-endian).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from typing import Any

from factory_common.wire import Quality, Reading, Value
from gateway_image.firmware.connectors.modbus.coalesce import ReadRequest, split_response
from gateway_image.firmware.connectors.modbus.codec import (
    CodecError,
    decode_tag,
    scale_value,
    shortest_float32,
)
from gateway_image.firmware.connectors.modbus.config import ByteOrder, DataType, ModbusTag

_CODES = {
    DataType.INT16: "h",
    DataType.UINT16: "H",
    DataType.INT32: "i",
    DataType.UINT32: "I",
    DataType.INT64: "q",
    DataType.UINT64: "Q",
    DataType.FLOAT32: "f",
    DataType.FLOAT64: "d",
}
_INTEGERS = frozenset(_CODES) - {DataType.FLOAT32, DataType.FLOAT64}
_FLOAT32 = struct.Struct(">f")

# (device, tag name, timestamp, raw value from the response) -> its reading
Finish = Callable[[str, str, int, Any], Reading]


def to_reading(
    device: str, tag: ModbusTag, ts: int, words: Sequence[int] | Sequence[bool]
) -> Reading:
    """One tag's reading from its own slice of a response: the per-tag reference path."""
    try:
        value = decode_tag(tag, words)
    except CodecError as exc:
        return Reading(device, tag.name, ts, None, Quality.BAD, str(exc))
    return checked(device, tag.name, ts, value)


def checked(device: str, name: str, ts: int, value: Value) -> Reading:
    if isinstance(value, float) and not math.isfinite(value):
        # JSON has no NaN; devices use it for "sensor not ready", which is a bad reading.
        return Reading(device, name, ts, None, Quality.BAD, f"device returned {value}")
    return Reading(device, name, ts, value)


def _numeric_finish(tag: ModbusTag) -> Finish | None:
    """What a raw struct value still needs to become the reading (None: nothing)."""
    scale, offset = tag.scale, tag.offset
    scaled = not (scale == 1 and offset == 0)
    if tag.type in _INTEGERS and not scaled:
        return None
    if tag.type is DataType.FLOAT32:

        def finish32(device: str, name: str, ts: int, raw: Any) -> Reading:
            value = shortest_float32(raw, _FLOAT32.pack(raw)) if math.isfinite(raw) else raw
            if scaled:
                value = scale_value(value, scale, offset)
            return checked(device, name, ts, value)

        return finish32

    def finish(device: str, name: str, ts: int, raw: Any) -> Reading:
        return checked(device, name, ts, scale_value(raw, scale, offset) if scaled else raw)

    return finish


def _bit_finish(bit: int) -> Finish:
    def finish(device: str, name: str, ts: int, raw: Any) -> Reading:
        return Reading(device, name, ts, bool((int(raw) >> bit) & 1))

    return finish


def _nonzero(device: str, name: str, ts: int, raw: Any) -> Reading:
    return Reading(device, name, ts, int(raw) != 0)


def _flag(device: str, name: str, ts: int, raw: Any) -> Reading:
    return Reading(device, name, ts, bool(raw))


def _text(device: str, name: str, ts: int, raw: Any) -> Reading:
    return Reading(device, name, ts, raw.rstrip(b"\x00").decode("utf-8", errors="replace"))


class _Lane:
    """Tags decoded by one Struct: non-overlapping, ascending, one buffer and endianness."""

    def __init__(self, swapped: bool, endian: str, start: int) -> None:
        self.swapped, self.endian = swapped, endian
        self.format, self.end = "", start
        self.items: list[int] = []  # indexes into the request's items

    def add(self, index: int, tag: ModbusTag) -> None:
        self.format += f"{2 * (tag.address - self.end)}x" if tag.address > self.end else ""
        self.format += _CODES[tag.type]
        self.end = tag.address + tag.count
        self.items.append(index)

    def compile(self) -> struct.Struct:
        return struct.Struct(self.endian + self.format)


class RequestDecoder:
    """The readings of one planned register or bit read, from its response."""

    def __init__(self, request: ReadRequest[ModbusTag]) -> None:
        self.request = request
        self.count = request.count
        items = request.items
        self._words = struct.Struct(f">{self.count}H")
        self._swapped_words = struct.Struct(f"<{self.count}H")
        lanes: list[_Lane] = []
        order: list[int] = []  # item index of each value, in the order they are extracted
        self.names: list[str] = []
        self.finish: list[Finish | None] = []
        self.offsets: list[int] = []  # words read straight from the response
        self.texts: list[tuple[bool, int, int]] = []  # (swapped, first byte, end byte)
        word_later: list[tuple[int, Finish]] = []  # (item index, finish) of each offset
        text_later: list[tuple[int, Finish]] = []
        base = request.address
        for index, tag in enumerate(items):
            start = tag.address - base
            if tag.table.is_bits:
                self.offsets.append(start)
                word_later.append((index, _flag))
            elif tag.type is DataType.BOOL:
                self.offsets.append(start)
                word_later.append((index, _nonzero if tag.bit is None else _bit_finish(tag.bit)))
            elif tag.type is DataType.STRING:
                continue  # after the words, below
            else:
                swapped = tag.byte_order in (ByteOrder.BADC, ByteOrder.CDAB)
                endian = "<" if tag.byte_order in (ByteOrder.DCBA, ByteOrder.CDAB) else ">"
                lane = next(
                    (
                        lane
                        for lane in lanes
                        if (lane.swapped, lane.endian) == (swapped, endian)
                        and lane.end <= tag.address
                    ),
                    None,
                )
                if lane is None:
                    lane = _Lane(swapped, endian, base)
                    lanes.append(lane)
                lane.add(index, tag)
        for index, tag in enumerate(items):
            if tag.type is DataType.STRING and not tag.table.is_bits:
                start = tag.address - base
                self.texts.append((tag.byte_order.byte_swap, 2 * start, 2 * (start + tag.count)))
                text_later.append((index, _text))
        self.lanes = [(lane.compile(), lane.swapped) for lane in lanes]
        for lane in lanes:
            for index in lane.items:
                order.append(index)
                self.finish.append(_numeric_finish(items[index]))
        # Word and bit tags next, then texts: the order `readings` extracts them in.
        for index, finish in word_later + text_later:
            order.append(index)
            self.finish.append(finish)
        self.names = [items[i].name for i in order]
        self.simple = all(f is None for f in self.finish)
        self.needs_swap = any(s for _, s in self.lanes) or any(s for s, _, _ in self.texts)
        # Readings go out in the request's item order, as the per-tag path made them.
        self.perm: list[int] | None = None
        if order != list(range(len(items))):
            position = {index: k for k, index in enumerate(order)}
            self.perm = [position[i] for i in range(len(items))]

    def readings(
        self, device: str, ts: int, values: Sequence[int] | Sequence[bool]
    ) -> list[Reading]:
        """Every tag's reading from the response; raises ValueError if it is short."""
        if len(values) < self.count:
            raise ValueError(f"response has {len(values)} values, request asked for {self.count}")
        raws: list[Any] = []
        if self.lanes or self.texts:
            words = values[: self.count] if len(values) > self.count else values
            try:
                data = self._words.pack(*words)
            except struct.error:  # not 16-bit words: the reference path names the bad value
                return self.reference(device, ts, values)
            swapped = self._swapped_words.pack(*words) if self.needs_swap else data
            for lane, from_swapped in self.lanes:
                raws += lane.unpack_from(swapped if from_swapped else data)
        raws += [values[offset] for offset in self.offsets]
        if self.texts:
            raws += [(swapped if s else data)[a:b] for s, a, b in self.texts]
        if self.simple:
            out = [
                Reading(device, name, ts, raw) for name, raw in zip(self.names, raws, strict=True)
            ]
        else:
            out = [
                Reading(device, name, ts, raw) if finish is None else finish(device, name, ts, raw)
                for name, finish, raw in zip(self.names, self.finish, raws, strict=True)
            ]
        return out if self.perm is None else [out[k] for k in self.perm]

    def reference(
        self, device: str, ts: int, values: Sequence[int] | Sequence[bool]
    ) -> list[Reading]:
        """The same readings tag by tag through `decode_tag` (slow; the fast path's oracle)."""
        return [
            to_reading(device, tag, ts, part) for tag, part in split_response(self.request, values)
        ]

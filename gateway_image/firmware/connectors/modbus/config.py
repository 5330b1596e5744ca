"""Modbus config: the data model (tables, types, byte orders) and the Modbus TCP connector."""

from __future__ import annotations

import heapq
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from factory_common.config import StrictModel
from gateway_image.firmware.connectors.serial_line.config import Parity, SerialPort
from gateway_image.firmware.connectors.tags import Loc, TagBase, check_name, duplicates, raise_at
from gateway_image.firmware.tag_index import TagInfo, device_tag_infos
from hardware.claims import BusDevice, OverNetwork, PinClaim, SerialClaim

# Modbus application protocol v1.1b3, 6.1-6.4: the most one read request may ask for.
MAX_READ_REGISTERS = 125
MAX_READ_BITS = 2000


class Table(StrEnum):
    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE = "discrete"

    @property
    def is_bits(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE)


class DataType(StrEnum):
    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"


class ByteOrder(StrEnum):
    """Letters name the bytes of a value, A most significant, in the order they are on the wire.

    ABCD: big-endian words and bytes (the Modbus default). CDAB: word swap. BADC: byte swap
    inside each word. DCBA: fully little-endian. For 64-bit values the pattern extends to
    four words (CDAB means least significant word first).
    """

    ABCD = "ABCD"
    DCBA = "DCBA"
    BADC = "BADC"
    CDAB = "CDAB"

    @property
    def word_swap(self) -> bool:
        return self in (ByteOrder.CDAB, ByteOrder.DCBA)

    @property
    def byte_swap(self) -> bool:
        return self in (ByteOrder.BADC, ByteOrder.DCBA)


# The one place aliases become canonical orders (vendor manuals and other gateways use all of
# these); keys are compared case-insensitively with '_' and ' ' read as '-'.
BYTE_ORDER_ALIASES: dict[str, ByteOrder] = {
    "abcd": ByteOrder.ABCD,
    "ab": ByteOrder.ABCD,
    "big": ByteOrder.ABCD,
    "big-endian": ByteOrder.ABCD,
    "be": ByteOrder.ABCD,
    "msw-be": ByteOrder.ABCD,
    "dcba": ByteOrder.DCBA,
    "little": ByteOrder.DCBA,
    "little-endian": ByteOrder.DCBA,
    "le": ByteOrder.DCBA,
    "lsw-le": ByteOrder.DCBA,
    "badc": ByteOrder.BADC,
    "ba": ByteOrder.BADC,
    "byte-swap": ByteOrder.BADC,
    "byteswap": ByteOrder.BADC,
    "msw-le": ByteOrder.BADC,
    "cdab": ByteOrder.CDAB,
    "word-swap": ByteOrder.CDAB,
    "wordswap": ByteOrder.CDAB,
    "lsw-be": ByteOrder.CDAB,
}

TABLE_ALIASES: dict[str, Table] = {
    "holding": Table.HOLDING,
    "holding_register": Table.HOLDING,
    "holding_registers": Table.HOLDING,
    "input": Table.INPUT,
    "input_register": Table.INPUT,
    "input_registers": Table.INPUT,
    "coil": Table.COIL,
    "coils": Table.COIL,
    "discrete": Table.DISCRETE,
    "discrete_input": Table.DISCRETE,
    "discrete_inputs": Table.DISCRETE,
}

_REGISTERS = {
    DataType.BOOL: 1,
    DataType.INT16: 1,
    DataType.UINT16: 1,
    DataType.INT32: 2,
    DataType.UINT32: 2,
    DataType.FLOAT32: 2,
    DataType.INT64: 4,
    DataType.UINT64: 4,
    DataType.FLOAT64: 4,
}


def normalise_byte_order(value: object) -> ByteOrder:
    """'word-swap', 'CDAB', 'lsw_be' -> ByteOrder.CDAB; raises ValueError listing the choices."""
    key = str(value).strip().lower().replace("_", "-").replace(" ", "-")
    try:
        return BYTE_ORDER_ALIASES[key]
    except KeyError:
        raise ValueError(
            f"unknown byte order {value!r}: use ABCD (big endian), CDAB (word swap), "
            "BADC (byte swap) or DCBA (little endian)"
        ) from None


def register_count(data_type: DataType, length: int | None = None) -> int:
    """Registers one value of this type occupies (strings: their configured length)."""
    if data_type is DataType.STRING:
        return length or 0
    return _REGISTERS[data_type]


class ModbusTag(TagBase):
    """One value on a Modbus device: where it lives and how to decode it."""

    table: Table
    address: int = Field(ge=0, le=65535)
    type: DataType
    byte_order: ByteOrder = ByteOrder.ABCD
    bit: int | None = Field(default=None, ge=0, le=15)
    length: int | None = Field(default=None, ge=1, le=MAX_READ_REGISTERS)

    @model_validator(mode="before")
    @classmethod
    def _default_type(cls, data: Any) -> Any:
        # Coils and discrete inputs can only be bool, so `type` may be left out for them.
        if isinstance(data, dict) and "type" not in data:
            table = str(data.get("table", "")).strip().lower()
            if TABLE_ALIASES.get(table) in (Table.COIL, Table.DISCRETE):
                return {**data, "type": "bool"}
        return data

    @field_validator("table", mode="before")
    @classmethod
    def _table(cls, value: object) -> object:
        return TABLE_ALIASES.get(str(value).strip().lower(), value)

    @field_validator("byte_order", mode="before")
    @classmethod
    def _byte_order(cls, value: object) -> ByteOrder:
        return normalise_byte_order(value)

    @property
    def count(self) -> int:
        """Registers (or bits, on coil/discrete tables) one read of this tag needs."""
        return 1 if self.table.is_bits else register_count(self.type, self.length)

    @property
    def numeric(self) -> bool:
        return self.type not in (DataType.BOOL, DataType.STRING)

    @model_validator(mode="after")
    def _consistent(self) -> ModbusTag:
        raise_at("ModbusTag", self._problems())
        return self

    def _problems(self) -> list[tuple[Loc, str, Any]]:
        problems: list[tuple[Loc, str, Any]] = []
        if self.table.is_bits and self.type is not DataType.BOOL:
            problems.append(
                (("type",), f"a {self.table} holds single bits: use type bool", self.type)
            )
        if self.bit is not None and (self.table.is_bits or self.type is not DataType.BOOL):
            problems.append(
                (("bit",), "bit is only for type bool on a holding or input register", self.bit)
            )
        if self.type is DataType.STRING and self.length is None:
            problems.append((("length",), "type string needs `length` (in registers)", None))
        if self.type is not DataType.STRING and self.length is not None:
            problems.append((("length",), "length is only for type string", self.length))
        if not self.numeric:
            for key, default in (("scale", 1.0), ("offset", 0.0), ("min", None), ("max", None)):
                if getattr(self, key) != default:
                    problems.append(
                        ((key,), f"{key} applies only to numeric types", getattr(self, key))
                    )
            if self.deadband is not None:
                problems.append((("deadband",), "deadband applies only to numeric types", None))
        if self.writable and self.table in (Table.INPUT, Table.DISCRETE):
            problems.append(
                (("writable",), f"{self.table} is read-only in Modbus: use holding or coil", True)
            )
        if self.address + self.count > 65536:
            problems.append((("address",), "tag runs past register 65535", self.address))
        return problems


class ModbusDevice(StrictModel):
    """One slave / unit id and its tags."""

    name: str
    unit: int = Field(default=1, ge=0, le=247)
    tags: list[ModbusTag] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "device name")

    @model_validator(mode="after")
    def _unique_tags(self) -> ModbusDevice:
        keys = ((t.name, ("tags", i, "name")) for i, t in enumerate(self.tags))
        problems = duplicates(keys, f"tag name in device {self.name!r}:")
        raise_at("ModbusDevice", problems + overlaps(self.tags))
        return self


def overlaps(tags: list[ModbusTag]) -> list[tuple[Loc, str, Any]]:
    """Tags of one device whose registers partly overlap (a uint16 inside a float32's two
    registers is a typo in an address). Exactly the same registers read twice is a second
    view on purpose (another scale or unit), and bits of a register beside the whole
    register are fine; the same bit twice is not.

    Each problem is at the later tag and names the earlier one, in tag order. A sweep over
    the distinct spans of each table, so thousands of tags take milliseconds, not seconds.
    """
    pairs: list[tuple[int, int]] = []  # (later tag, earlier tag) that may not coexist
    whole: dict[tuple[Table, int, int], list[int]] = {}  # span -> its whole-register tags
    bits: dict[tuple[Table, int, int], list[int]] = {}  # one bit of one register -> tags
    for index, tag in enumerate(tags):
        if tag.bit is None:
            whole.setdefault((tag.table, tag.address, tag.count), []).append(index)
        else:
            bits.setdefault((tag.table, tag.address, tag.bit), []).append(index)
    for same in bits.values():  # the same bit twice: every pair
        pairs += [(j, i) for n, j in enumerate(same) for i in same[:n]]
    for first, second in _crossing_spans(list(whole)):
        pairs += [(max(a, b), min(a, b)) for a in whole[first] for b in whole[second]]
    problems: list[tuple[Loc, str, Any]] = []
    for j, i in sorted(pairs):
        tag, other = tags[j], tags[i]
        span = f"{other.table} {other.address}-{other.address + other.count - 1}"
        problems.append((
            ("tags", j, "address"),
            f"tag {tag.name!r} reads registers that tag {other.name!r} (tags[{i}], {span}) "
            "already reads: check both addresses",
            tag.address,
        ))  # fmt: skip
    return problems


_Span = tuple[Table, int, int]  # table, first address, count


def _crossing_spans(spans: list[_Span]) -> list[tuple[_Span, _Span]]:
    """Pairs of distinct spans of one table that share a register (sorted, then a sweep)."""
    crossing: list[tuple[_Span, _Span]] = []
    active: list[tuple[int, _Span]] = []  # heap of (end, span) still open at this address
    table: Table | None = None
    for span in sorted(spans, key=lambda s: (s[0], s[1], s[2])):
        if span[0] is not table:
            table, active = span[0], []
        while active and active[0][0] <= span[1]:
            heapq.heappop(active)
        crossing += [(other, span) for _end, other in active]
        heapq.heappush(active, (span[1] + span[2], span))
    return crossing


def modbus_device_problems(
    devices: list[ModbusDevice], max_registers: int
) -> list[tuple[Loc, str, Any]]:
    """Checks shared by Modbus TCP and RTU: unique device names, tags fit in one request."""
    problems = duplicates(
        ((d.name, ("devices", i, "name")) for i, d in enumerate(devices)), "device name"
    )
    for i, device in enumerate(devices):
        for j, tag in enumerate(device.tags):
            if not tag.table.is_bits and tag.count > max_registers:
                loc: Loc = ("devices", i, "tags", j, "length")
                msg = (
                    f"{tag.count} registers do not fit one request (max_registers={max_registers})"
                )
                problems.append((loc, msg, tag.length))
    return problems


def modbus_reading_keys(devices: list[ModbusDevice]) -> list[tuple[tuple[str, str], Loc]]:
    return [
        ((d.name, t.name), ("devices", i, "tags", j, "name"))
        for i, d in enumerate(devices)
        for j, t in enumerate(d.tags)
    ]


class ModbusTcpConfig(OverNetwork, StrictModel):
    """A Modbus TCP server (PLC, gateway); all its unit ids share one connection."""

    type: Literal["modbus_tcp"]
    name: str
    host: str
    port: int = Field(default=502, ge=1, le=65535)
    poll_interval: float = Field(default=1.0, gt=0)
    timeout: float = Field(default=1.0, gt=0)
    max_gap: int = Field(default=10, ge=0, le=MAX_READ_REGISTERS)
    max_registers: int = Field(default=MAX_READ_REGISTERS, ge=1, le=MAX_READ_REGISTERS)
    devices: list[ModbusDevice] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "connector name")

    @model_validator(mode="after")
    def _devices(self) -> ModbusTcpConfig:
        raise_at("ModbusTcpConfig", modbus_device_problems(self.devices, self.max_registers))
        return self

    def reading_keys(self) -> list[tuple[tuple[str, str], Loc]]:
        """(device, tag) of every Reading this connector produces, with its config location."""
        return modbus_reading_keys(self.devices)

    def tag_infos(self) -> list[TagInfo]:
        return device_tag_infos(self.name, self.devices)


# ---------------------------------------------------------------- Modbus RTU (serial line)


class ModbusRtuDevice(ModbusDevice):
    """A slave on an RS-485 line: its own timeout and retries, as slow slaves need more."""

    timeout: float = Field(default=0.5, gt=0, le=30)  # seconds to wait for each response
    retries: int = Field(default=1, ge=0, le=10)  # extra attempts before the poll gives up

    @field_validator("unit")
    @classmethod
    def _not_broadcast(cls, value: int) -> int:
        if value == 0:
            raise ValueError("unit 0 is broadcast on a serial line and never answers: use 1..247")
        return value


class ModbusRtuConfig(SerialPort):
    """Several slaves on one RS-485 port; every connector naming the same port shares the bus."""

    type: Literal["modbus_rtu"]
    name: str
    # Modbus over serial line v1.02, 2.5.1: 19200 baud, even parity are the defaults.
    baudrate: int = Field(default=19200, ge=300, le=4_000_000)
    parity: Parity = "E"
    bytesize: Literal[8] = 8  # RTU frames are 8-bit binary (spec 2.5.1); 7 bits is ASCII mode
    stopbits: Literal[1, 2] = 1
    poll_interval: float = Field(default=1.0, gt=0)
    max_gap: int = Field(default=10, ge=0, le=MAX_READ_REGISTERS)
    max_registers: int = Field(default=MAX_READ_REGISTERS, ge=1, le=MAX_READ_REGISTERS)
    # A slave that fails a poll is skipped for a growing interval, up to this many seconds.
    backoff_max: float = Field(default=60.0, gt=0, le=3600)
    devices: list[ModbusRtuDevice] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "connector name")

    @model_validator(mode="after")
    def _devices(self) -> ModbusRtuConfig:
        problems = modbus_device_problems(list(self.devices), self.max_registers)
        problems += duplicates(
            ((d.unit, ("devices", i, "unit")) for i, d in enumerate(self.devices)), "unit id"
        )
        raise_at("ModbusRtuConfig", problems)
        return self

    def reading_keys(self) -> list[tuple[tuple[str, str], Loc]]:
        return modbus_reading_keys(list(self.devices))

    def tag_infos(self) -> list[TagInfo]:
        return device_tag_infos(self.name, self.devices)

    def pin_claims(self) -> list[PinClaim]:
        return []

    def serial_port(self) -> SerialClaim:
        """The bus this connector polls, with every unit on it (the checks join buses)."""
        units = tuple(
            BusDevice(d.name, d.unit, ("devices", i, "unit")) for i, d in enumerate(self.devices)
        )
        return self.line_claim("modbus_rtu", units)

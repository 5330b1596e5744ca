"""Serial line instrument config: port settings, framing, and a regex mapping lines to tags."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from factory_common.config import StrictModel
from gateway_image.firmware.connectors.serial_line.checksum import (
    Algorithm,
    ChecksumSpec,
    Encoding,
    command_bytes,
)
from gateway_image.firmware.connectors.tags import Loc, TagBase, check_name, duplicates, raise_at
from gateway_image.firmware.tag_index import TagInfo, tag_info
from hardware.claims import BusDevice, PinClaim, SerialClaim

Parity = Literal["N", "E", "O", "M", "S"]


class SerialPort(StrictModel):
    """Settings every serial connector shares (instrument lines and Modbus RTU)."""

    port: str
    baudrate: int = Field(default=9600, ge=50, le=4_000_000)
    bytesize: Literal[5, 6, 7, 8] = 8
    parity: Parity = "N"
    stopbits: float = 1  # 1, 1.5 or 2 (a Literal cannot hold 1.5 for type checkers)

    @field_validator("stopbits")
    @classmethod
    def _stopbits(cls, value: float) -> float:
        if value not in (1, 1.5, 2):
            raise ValueError(f"stopbits must be 1, 1.5 or 2 (got {value})")
        return int(value) if float(value).is_integer() else value

    @field_validator("parity", mode="before")
    @classmethod
    def _parity(cls, value: object) -> object:
        names = {"none": "N", "even": "E", "odd": "O", "mark": "M", "space": "S"}
        text = str(value).strip()
        return names.get(text.lower(), text.upper())

    def line_claim(
        self, protocol: Literal["modbus_rtu", "serial_line"], devices: tuple[BusDevice, ...] = ()
    ) -> SerialClaim:
        """This port and its line settings as the wiring checks and sheet read them."""
        return SerialClaim(
            self.port,
            protocol,
            self.baudrate,
            self.bytesize,
            self.parity,
            float(self.stopbits),
            devices,
        )


class LineTag(TagBase):
    """One named regex group -> one tag; `group` defaults to the tag name."""

    group: str | None = None
    type: Literal["float", "int", "str"] = "float"

    @property
    def group_name(self) -> str:
        return self.group or self.name

    @model_validator(mode="after")
    def _only_reading(self) -> LineTag:
        problems: list[tuple[Loc, str, Any]] = []
        if self.writable:
            problems.append((("writable",), "a serial line instrument only sends: remove it", True))
        if self.type == "str" and (self.scale != 1.0 or self.offset != 0.0):
            problems.append((("scale",), "scale and offset apply only to float or int", self.scale))
        raise_at("LineTag", problems)
        return self


class Framing(StrictModel):
    """How lines are cut from the byte stream: at a terminator, or every `length` bytes."""

    terminator: str | None = "\n"
    length: int | None = Field(default=None, ge=1, le=4096)
    max_length: int = Field(default=256, ge=1, le=65536)

    @model_validator(mode="after")
    def _one(self) -> Framing:
        if (self.terminator in (None, "")) == (self.length is None):
            raise ValueError(
                'give exactly one of `terminator` (e.g. "\\r\\n") or `length` (bytes per frame);'
                " set terminator: null when using length"
            )
        return self


class Request(StrictModel):
    """Ask the instrument for each reading: a scale's "send stable weight", a meter's print key.

    One request is outstanding at a time on the port; a reply that does not come within
    `reply_timeout` counts as a failed poll (the device is marked down after the runner's
    usual retries).
    """

    command: str | None = None  # text; \\r \\n \\t \\0 \\\\ and \\xHH become bytes
    command_hex: str | None = None  # or the bytes as hex digits: "1B 70"
    interval: float = Field(default=1.0, gt=0, le=86_400)
    reply_timeout: float = Field(default=1.0, gt=0, le=60)

    @model_validator(mode="after")
    def _one_command(self) -> Request:
        if (self.command is None) == (self.command_hex is None):
            raise ValueError("give exactly one of `command` (text) or `command_hex` (bytes)")
        try:
            if not self.payload():
                raise ValueError("the command is empty")
        except ValueError as exc:
            raise ValueError(f"command: {exc}") from None
        if self.reply_timeout >= self.interval:
            raise ValueError(
                f"reply_timeout ({self.reply_timeout:g} s) must be shorter than interval "
                f"({self.interval:g} s): one request at a time"
            )
        return self

    def payload(self) -> bytes:
        return command_bytes(self.command, self.command_hex)


class Checksum(StrictModel):
    """Where a line carries its checksum and what it covers (slices of the line, no terminator)."""

    algorithm: Algorithm
    data: tuple[int | None, int | None] = (0, None)
    field: tuple[int | None, int | None]
    encoding: Encoding = "hex"
    little_endian: bool = False

    def spec(self) -> ChecksumSpec:
        return ChecksumSpec(
            self.algorithm, self.data, self.field, self.encoding, self.little_endian
        )


class SerialLineConfig(SerialPort):
    """A barcode scanner, scale or colourimeter sending ASCII lines on RS-232/USB serial."""

    type: Literal["serial_line"]
    name: str
    device: str | None = None  # the `device` of every Reading; defaults to the connector name
    framing: Framing = Framing()
    encoding: Literal["ascii", "latin-1", "utf-8"] = "ascii"
    pattern: str
    tags: list[LineTag] = Field(min_length=1)
    request: Request | None = None  # without it the instrument sends on its own
    checksum: Checksum | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "connector name")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value, "device name")

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        if not compiled.groupindex:
            raise ValueError("the pattern needs named groups, e.g. (?P<weight>[-0-9.]+)")
        return value

    @model_validator(mode="after")
    def _groups(self) -> SerialLineConfig:
        groups = set(re.compile(self.pattern).groupindex)
        problems = duplicates(
            ((t.name, ("tags", i, "name")) for i, t in enumerate(self.tags)), "tag name"
        )
        for i, tag in enumerate(self.tags):
            if tag.group_name not in groups:
                where: Loc = ("tags", i, "group" if tag.group else "name")
                msg = f"no group named {tag.group_name!r} in pattern; it has {sorted(groups)}"
                problems.append((where, msg, tag.group_name))
        raise_at("SerialLineConfig", problems)
        return self

    @property
    def poll_interval(self) -> float:
        """How often the runner polls an instrument that must be asked."""
        return self.request.interval if self.request else 1.0

    @property
    def device_name(self) -> str:
        return self.device or self.name

    def reading_keys(self) -> list[tuple[tuple[str, str], Loc]]:
        return [((self.device_name, t.name), ("tags", i, "name")) for i, t in enumerate(self.tags)]

    def tag_infos(self) -> list[TagInfo]:
        return [tag_info(self.name, self.device_name, spec) for spec in self.tags]

    def pin_claims(self) -> list[PinClaim]:
        return []

    def serial_port(self) -> SerialClaim:
        return self.line_claim("serial_line")

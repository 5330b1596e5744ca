"""What a connector config claims of the hardware: GPIOs and serial ports, as plain records.

Connector config models build these (their `pin_claims()` and `serial_port()` methods), and
the wiring checks and the wiring sheet read only these, so neither side guesses field names
and this package imports nothing from the gateway firmware.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from factory_common.config import format_path

Loc = tuple[int | str, ...]
Role = Literal["input", "counter", "output", "readback"]


@dataclass(frozen=True)
class PinClaim:
    """A GPIO some configured thing wants, e.g. output 'defect_lamp' of device 'io'.

    `loc` is relative to the connector (('outputs', 0, 'pin')); the checks prefix it with
    the connector's place in the config. Output fields are None for inputs and counters.
    """

    gpio: int
    loc: Loc
    role: Role
    name: str
    device: str
    driver: str | None = None
    active_high: bool = True
    external_pull: Literal["up", "down"] | None = None
    pull_up: bool | None = None
    bounce_time: float | None = None
    max_hz: float | None = None

    @property
    def who(self) -> str:
        return f"{self.role} {self.name!r} of device {self.device!r}"


@dataclass(frozen=True)
class BusDevice:
    """A device addressed on a serial bus (a Modbus unit)."""

    name: str
    unit: int
    loc: Loc


@dataclass(frozen=True)
class SerialClaim:
    """A serial port a connector opens, with its line settings and the devices behind it."""

    port: str
    protocol: Literal["modbus_rtu", "serial_line"]
    baudrate: int
    bytesize: int
    parity: str
    stopbits: float
    devices: tuple[BusDevice, ...] = ()

    @property
    def settings(self) -> str:
        stop = int(self.stopbits) if float(self.stopbits).is_integer() else self.stopbits
        return f"{self.baudrate} {self.bytesize}{self.parity}{stop}"


@dataclass(frozen=True)
class WiringProblem:
    """One wiring mistake: where in the config, what is wrong, and the offending value."""

    loc: Loc
    message: str
    value: Any = None

    def __str__(self) -> str:
        return f"{format_path(self.loc)}: {self.message}"


class OverNetwork:
    """Mixin for connector configs reached over Ethernet or Wi-Fi: no GPIO, no serial port."""

    def pin_claims(self) -> list[PinClaim]:
        return []

    def serial_port(self) -> SerialClaim | None:
        return None

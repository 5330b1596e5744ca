"""Wiring checks over a gateway config and its board profile: catch wiring mistakes before power-on.

Each check is a pure function returning problems that name the devices involved and the config
location (so the loader can print file:line). The checks read connector configs by their `type`
and fields only, so this module imports no connector model and the config package can call it
from its own validator without an import cycle.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from factory_common.config import ConfigError, format_path
from hardware.profiles import BoardProfile, load_board

if TYPE_CHECKING:
    from gateway_image.firmware.config import GatewayConfig

Loc = tuple[int | str, ...]

# Drivers that put nothing between the pin and the load (gpio.md: never a coil on a pin).
NO_DRIVER = {"direct", "none"}


@dataclass(frozen=True)
class WiringProblem:
    """One wiring mistake: where in the config, what is wrong, and the offending value."""

    loc: Loc
    message: str
    value: Any = None

    def __str__(self) -> str:
        return f"{format_path(self.loc)}: {self.message}"


@dataclass(frozen=True)
class PinClaim:
    """A GPIO some configured thing wants, e.g. output 'defect-lamp' of connector 'io'."""

    gpio: int
    loc: Loc
    who: str


@dataclass(frozen=True)
class SerialUse:
    """A connector that opens a serial port, with its line settings."""

    index: int
    connector: Any

    @property
    def name(self) -> str:
        return str(self.connector.name)

    @property
    def port(self) -> str:
        return str(self.connector.port)

    @property
    def settings(self) -> str:
        c = self.connector
        stop = int(c.stopbits) if float(c.stopbits).is_integer() else c.stopbits
        return f"{c.baudrate} {c.bytesize}{c.parity}{stop}"


def resolve_board(config: GatewayConfig) -> tuple[BoardProfile | None, list[WiringProblem]]:
    """The board named in `gateway.board`, or a problem listing the known boards."""
    name = config.gateway.board
    if name is None:
        return None, []
    try:
        return load_board(name), []
    except ConfigError as exc:
        return None, [WiringProblem(("gateway", "board"), "; ".join(exc.problems), name)]


def wiring_problems(
    config: GatewayConfig, board: BoardProfile | None = None
) -> list[WiringProblem]:
    """Every wiring problem in `config`; board checks run when a board is given or named."""
    problems: list[WiringProblem] = []
    if board is None:
        board, problems = resolve_board(config)
    claims = list(gpio_claims(config))
    problems += shared_pins(claims, board)
    if board is not None:
        problems += board_pins(claims, board)
    problems += outputs_without_driver(config)
    serial = serial_uses(config)
    problems += ports_named_twice(serial, board)
    for bus in group_by_port(serial, board).values():
        problems += mixed_settings(bus)
        problems += duplicate_units(bus)
    return problems


def gpio_claims(config: GatewayConfig) -> Iterator[PinClaim]:
    """Every GPIO a connector claims: GPIO inputs/counters/outputs and their readback pins."""
    kinds = {"inputs": "input", "counters": "counter", "outputs": "output"}
    for i, connector in enumerate(config.connectors):
        for key, kind in kinds.items():
            for j, item in enumerate(getattr(connector, key, None) or ()):
                who = f"{kind} {item.name!r} of connector {connector.name!r}"
                yield PinClaim(item.pin, ("connectors", i, key, j, "pin"), who)
                readback = getattr(item, "readback_pin", None)
                if readback is not None:
                    where = ("connectors", i, key, j, "readback_pin")
                    yield PinClaim(readback, where, f"readback of {who}")


def _pin_name(gpio: int, board: BoardProfile | None) -> str:
    pin = board.header_pin(gpio) if board is not None else None
    return f"GPIO{gpio} (header pin {pin})" if pin is not None else f"GPIO{gpio}"


def shared_pins(claims: Iterable[PinClaim], board: BoardProfile | None) -> list[WiringProblem]:
    """Two things wired to one GPIO: each later claim names the first one."""
    first: dict[int, PinClaim] = {}
    problems = []
    for claim in claims:
        if claim.gpio not in first:
            first[claim.gpio] = claim
            continue
        other = first[claim.gpio]
        problems.append(
            WiringProblem(
                claim.loc,
                f"{_pin_name(claim.gpio, board)} is wired to two things: {claim.who} and "
                f"{other.who} (at {format_path(other.loc)}); give one of them a free pin",
                claim.gpio,
            )
        )
    return problems


def board_pins(claims: Iterable[PinClaim], board: BoardProfile) -> list[WiringProblem]:
    """Pins the board does not have, or reserves for the HAT EEPROM or an enabled bus."""
    taken = board.taken_gpios()
    free = ", ".join(str(g) for g in board.free_gpios())
    problems = []
    for claim in claims:
        if board.header_pin(claim.gpio) is None:
            why = f"{board.title} ({board.name}) has no GPIO{claim.gpio} on its header"
        elif claim.gpio in taken:
            why = f"{_pin_name(claim.gpio, board)} is reserved on {board.name}: {taken[claim.gpio]}"
        else:
            continue
        message = f"{claim.who}: {why}; free GPIOs are {free}"
        problems.append(WiringProblem(claim.loc, message, claim.gpio))
    return problems


def outputs_without_driver(config: GatewayConfig) -> list[WiringProblem]:
    """An output with nothing between the pin and the load (a coil or lamp would kill the pin)."""
    problems = []
    for i, connector in enumerate(config.connectors):
        for j, output in enumerate(getattr(connector, "outputs", None) or ()):
            driver = getattr(output, "driver", None)
            if driver is None or str(driver) in NO_DRIVER:
                message = (
                    f"output {output.name!r} of connector {connector.name!r} on GPIO{output.pin} "
                    "has no driver between pin and load: a pin gives 3.3 V and a few mA and "
                    "must not drive a coil, lamp or buzzer; wire it through a relay module, SSR "
                    "or ULN2803 and name that driver"
                )
                loc: Loc = ("connectors", i, "outputs", j, "driver")
                problems.append(WiringProblem(loc, message, driver))
    return problems


def serial_uses(config: GatewayConfig) -> list[SerialUse]:
    """Connectors that open a serial port (Modbus RTU, serial line instruments)."""
    return [
        SerialUse(i, c)
        for i, c in enumerate(config.connectors)
        if isinstance(getattr(c, "port", None), str) and hasattr(c, "baudrate")
    ]


def port_key(port: str, board: BoardProfile | None) -> str:
    """One name per physical port: /dev/serial0 and /dev/ttyAMA0 are one UART on a Pi 4."""
    path = os.path.normpath(port)
    if board is not None:
        for known in board.serial_ports:
            if known.path == path and known.gpios:
                pins = "/".join(str(g) for g in known.gpios)
                return f"the UART on GPIO{pins}"
    return path


def group_by_port(uses: list[SerialUse], board: BoardProfile | None) -> dict[str, list[SerialUse]]:
    buses: dict[str, list[SerialUse]] = defaultdict(list)
    for use in uses:
        buses[port_key(use.port, board)].append(use)
    return dict(buses)


def _is_rtu(use: SerialUse) -> bool:
    return getattr(use.connector, "type", None) == "modbus_rtu"


def ports_named_twice(uses: list[SerialUse], board: BoardProfile | None) -> list[WiringProblem]:
    """A port opened by two connectors. Modbus RTU connectors naming the same port share one
    bus (that is allowed); anything else on that port fights them for the bytes."""
    problems = []
    for key, bus in group_by_port(uses, board).items():
        first = bus[0]
        for use in bus[1:]:
            if _is_rtu(use) and _is_rtu(first):
                if use.port == first.port:
                    continue
                message = (
                    f"serial port {use.port} of connector {use.name!r} and {first.port} of "
                    f"connector {first.name!r} (at connectors[{first.index}]) are {key} on "
                    f"{board.name if board else 'this board'}: write the same name in both so "
                    "they share one bus"
                )
            else:
                message = (
                    f"serial port {use.port}{_alias(use, first, key)} is used by connector "
                    f"{use.name!r} and by connector {first.name!r} (at connectors[{first.index}]);"
                    " a serial instrument needs a port of its own: give it another adapter"
                )
            problems.append(WiringProblem(("connectors", use.index, "port"), message, use.port))
    return problems


def _alias(use: SerialUse, first: SerialUse, key: str) -> str:
    return "" if use.port == first.port else f" ({key}, also named {first.port})"


def _devices(use: SerialUse) -> str:
    names = ", ".join(repr(d.name) for d in getattr(use.connector, "devices", None) or ())
    return f"connector {use.name!r} (devices {names})" if names else f"connector {use.name!r}"


def mixed_settings(bus: list[SerialUse]) -> list[WiringProblem]:
    """Devices on one RS-485 bus must share baud rate, parity, data and stop bits."""
    rtu = [use for use in bus if getattr(use.connector, "type", None) == "modbus_rtu"]
    problems = []
    for use in rtu[1:]:
        first = rtu[0]
        if use.settings != first.settings:
            message = (
                f"bus {use.port} mixes serial settings: {_devices(use)} uses {use.settings}, "
                f"{_devices(first)} uses {first.settings}; every device on one bus must use "
                "the same baud rate, parity and stop bits"
            )
            key = next(
                k
                for k in ("baudrate", "parity", "bytesize", "stopbits")
                if getattr(use.connector, k) != getattr(first.connector, k)
            )
            loc: Loc = ("connectors", use.index, key)
            problems.append(WiringProblem(loc, message, getattr(use.connector, key)))
    return problems


def duplicate_units(bus: list[SerialUse]) -> list[WiringProblem]:
    """Two Modbus devices with one address on a bus answer together and garble both replies."""
    seen: dict[int, tuple[str, Loc]] = {}
    problems = []
    for use in bus:
        if getattr(use.connector, "type", None) != "modbus_rtu":
            continue
        for k, device in enumerate(use.connector.devices):
            loc: Loc = ("connectors", use.index, "devices", k, "unit")
            if device.unit not in seen:
                seen[device.unit] = (device.name, loc)
                continue
            other, other_loc = seen[device.unit]
            message = (
                f"Modbus address {device.unit} is used twice on bus {use.port}: device "
                f"{device.name!r} and device {other!r} (at {format_path(other_loc)}); give each "
                "device on a bus its own address (1..247)"
            )
            problems.append(WiringProblem(loc, message, device.unit))
    return problems

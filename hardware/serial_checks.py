"""Serial port checks: ports the board has, one owner per port, one framing and address per bus."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from factory_common.config import format_path
from hardware.claims import Loc, SerialClaim, WiringProblem
from hardware.profiles import BoardProfile

# Device names of on-board and HAT UARTs: they exist only if the board and image make them.
# USB adapters (ttyUSB*, ttyACM*, /dev/serial/by-id/...) come and go and are not checked here.
ONBOARD = re.compile(r"^/dev/(serial\d+|ttyAMA\d+|ttyS\d+|ttySC\d+)$")


@dataclass(frozen=True)
class SerialUse:
    """A connector that opens a serial port: its place in the config, name and claim."""

    index: int
    name: str
    claim: SerialClaim

    @property
    def port(self) -> str:
        return self.claim.port

    @property
    def loc(self) -> Loc:
        return ("connectors", self.index, "port")


def serial_problems(
    ports: Sequence[tuple[int, SerialClaim]], names: Sequence[str], board: BoardProfile
) -> list[WiringProblem]:
    uses = [SerialUse(i, names[i], claim) for i, claim in ports]
    problems = ports_on_board(uses, board)
    problems += ports_named_twice(uses, board)
    for bus in group_by_port(uses, board).values():
        problems += mixed_settings(bus)
        problems += duplicate_units(bus)
    return problems


def port_key(port: str, board: BoardProfile) -> str:
    """One name per physical port: /dev/serial0 and /dev/ttyAMA0 are one UART on a Pi 4."""
    path = os.path.normpath(port)
    known = board.serial_port(path)
    if known is not None and known.gpios:
        return f"the UART on GPIO{'/'.join(str(g) for g in known.gpios)}"
    return path


def group_by_port(uses: list[SerialUse], board: BoardProfile) -> dict[str, list[SerialUse]]:
    buses: dict[str, list[SerialUse]] = defaultdict(list)
    for use in uses:
        buses[port_key(use.port, board)].append(use)
    return dict(buses)


def usable_ports(board: BoardProfile) -> str:
    return ", ".join(p.path for p in board.all_serial_ports() if p.usable and p.kind == "uart")


def ports_on_board(uses: list[SerialUse], board: BoardProfile) -> list[WiringProblem]:
    """An on-board UART name the board (with its HATs and image) does not offer for a bus."""
    problems = []
    for use in uses:
        path = os.path.normpath(use.port)
        if not ONBOARD.match(path):
            continue
        known = board.serial_port(path)
        if known is not None and known.usable:
            continue
        why = known.note if known else "the board, its HATs and the image make no such port"
        message = (
            f"connector {use.name!r} opens {path}, which is not a bus port on {board.title}: "
            f"{why}; on-board ports for a bus here are {usable_ports(board) or 'none'}, or "
            "use a USB adapter (/dev/serial/by-id/...)"
        )
        problems.append(WiringProblem(use.loc, message, use.port))
    return problems


def ports_named_twice(uses: list[SerialUse], board: BoardProfile) -> list[WiringProblem]:
    """A port opened by two connectors. Modbus RTU connectors naming the same port share one
    bus (that is allowed); anything else on that port fights them for the bytes."""
    problems = []
    for key, bus in group_by_port(uses, board).items():
        first = bus[0]
        for use in bus[1:]:
            rtu = use.claim.protocol == first.claim.protocol == "modbus_rtu"
            if rtu and use.port == first.port:
                continue
            if rtu:
                message = (
                    f"serial port {use.port} of connector {use.name!r} and {first.port} of "
                    f"connector {first.name!r} (at connectors[{first.index}]) are {key} on "
                    f"{board.name}: write the same name in both so they share one bus"
                )
            else:
                alias = "" if use.port == first.port else f" ({key}, also named {first.port})"
                message = (
                    f"serial port {use.port}{alias} is used by connector {use.name!r} and by "
                    f"connector {first.name!r} (at connectors[{first.index}]); a serial "
                    "instrument needs a port of its own: give it another adapter"
                )
            problems.append(WiringProblem(use.loc, message, use.port))
    return problems


def _devices(use: SerialUse) -> str:
    names = ", ".join(repr(d.name) for d in use.claim.devices)
    return f"connector {use.name!r} (devices {names})" if names else f"connector {use.name!r}"


def mixed_settings(bus: list[SerialUse]) -> list[WiringProblem]:
    """Devices on one RS-485 bus must share baud rate, parity, data and stop bits."""
    rtu = [use for use in bus if use.claim.protocol == "modbus_rtu"]
    problems = []
    for use in rtu[1:]:
        first = rtu[0]
        if use.claim.settings == first.claim.settings:
            continue
        message = (
            f"bus {use.port} mixes serial settings: {_devices(use)} uses {use.claim.settings}, "
            f"{_devices(first)} uses {first.claim.settings}; every device on one bus must use "
            "the same baud rate, parity and stop bits"
        )
        key = next(
            k
            for k in ("baudrate", "parity", "bytesize", "stopbits")
            if getattr(use.claim, k) != getattr(first.claim, k)
        )
        value = getattr(use.claim, key)
        problems.append(WiringProblem(("connectors", use.index, key), message, value))
    return problems


def duplicate_units(bus: list[SerialUse]) -> list[WiringProblem]:
    """Two Modbus devices with one address on a bus answer together and garble both replies."""
    seen: dict[int, tuple[str, Loc]] = {}
    problems = []
    for use in bus:
        if use.claim.protocol != "modbus_rtu":
            continue
        for device in use.claim.devices:
            loc: Loc = ("connectors", use.index, *device.loc)
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

"""Wiring sheet sections for serial circuits: an RS-485 bus and an RS-232 instrument.

Terminal names come from the board profile: a HAT port prints the maker's labels (on the
Waveshare HATs "A" is the + line); any other adapter gets the polarity rule instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hardware import wiring_svg as draw
from hardware.claims import SerialClaim
from hardware.profiles import BoardProfile, HatPort, HatProfile
from hardware.rs485_values import BIAS_5V, line_ohms, line_to_zero_ohms
from hardware.serial_checks import port_key
from hardware.sheet_parts import (
    BUS_PAIR,
    BUS_SHIELD,
    BUS_ZERO,
    PE_WIRE,
    PI_3V3,
    PI_GND,
    PI_SIGNAL,
    RS232,
    Section,
    Step,
    Terminals,
    Wire,
)

GENERIC_LABELS = ("+ (D1, often B)", "− (D0, often A)", "0 V / C", "shield")
MEANS = {
    "+": "+ (Modbus D1, TIA-485 B: higher at idle)",
    "-": "− (Modbus D0, TIA-485 A)",
    "0V": "0 V (Modbus Common)",
}
POLARITY = (
    "Polarity: + is the line that reads higher at idle. Modbus names it D1 (B in TIA/EIA-485); "
    "Maxim/TI-style boards print A for it. Measure, then wire + to + (hardware/rs485.md)."
)


def hat_port_for(port: str, board: BoardProfile) -> tuple[HatProfile, HatPort] | None:
    """The HAT port behind `port`, also when the config names an alias of it."""
    key = port_key(port, board)
    for hat in board.hats:
        for hat_port in hat.ports:
            if port_key(hat_port.path, board) == key:
                return hat, hat_port
    return None


def gateway_terminals(port: str, board: BoardProfile) -> tuple[str, str, str, str]:
    """The gateway port's terminals for +, −, 0 V and shield, as printed on the hardware."""
    found = hat_port_for(port, board)
    if found is None:
        return GENERIC_LABELS
    by_signal = {t.signal: t.label for t in found[1].terminals}
    zero = by_signal.get("0V", "— (no 0 V terminal: Pi GND, header pin 6)")
    return by_signal.get("+", "+"), by_signal.get("-", "−"), zero, "X3 shield terminal"


def _settings(claim: SerialClaim) -> str:
    return f"{claim.baudrate} baud {claim.bytesize}{claim.parity}{int(claim.stopbits)}"


def rs485_section(bus: Sequence[Any], board: BoardProfile, strip: Terminals) -> Section:
    """One bus: gateway port → cabinet terminals → daisy chain, terminated at both ends."""
    first = bus[0]
    claim: SerialClaim = first.serial_port()
    devices = [(conn, d) for conn in bus for d in conn.serial_port().devices]
    labels = gateway_terminals(first.port, board)
    nodes = [
        draw.BusNode(d.name, (f"Modbus address {d.unit}", f"{_settings(claim)} · {conn.name}"))
        for conn, d in devices
    ]
    names = ", ".join(conn.name for conn in bus)
    title = f"RS-485 bus {first.port} (connector{'s' if len(bus) > 1 else ''} {names})"
    svg = draw.rs485_chain(first.port, _settings(claim), nodes, title, labels)
    section = Section(first.name, title, svg)
    cabinet = [strip.take("X3") for _ in range(4)]
    signals = ("+", "−", "0 V", "shield")
    cores = dict(zip(signals, (BUS_PAIR, BUS_PAIR, BUS_ZERO, BUS_SHIELD), strict=True))
    for signal, term, x in zip(signals[:3], labels[:3], cabinet[:3], strict=True):
        section.wires.append(Wire(signal, f"gateway {first.port} {term}", x, cores[signal]))
    section.wires.append(
        Wire("shield", f"{cabinet[3]} (shield)", "PE bar", PE_WIRE, "this end only")
    )
    previous = dict(zip(signals, cabinet, strict=True))
    for _conn, device in devices:
        target = f"{device.name} (address {device.unit})"
        for signal in signals:
            where = f"{target} {signal}" if signal != "shield" else f"{target} (through)"
            note = "continue the shield, do not earth it here" if signal == "shield" else ""
            section.wires.append(Wire(signal, previous[signal], where, cores[signal], note))
            previous[signal] = f"{device.name} {signal}"
    _bus_ends(section, first.port, devices[-1][1].name, board)
    _bus_tests(section, cabinet, devices[-1][1].name)
    return section


def _bus_ends(section: Section, port: str, last: str, board: BoardProfile) -> None:
    found = hat_port_for(port, board)
    if found is not None:
        hat, hat_port = found
        iso = "isolated" if hat_port.isolated else "NOT isolated: bus 0 V is the Pi's GND"
        terminals = hat_port.terminals
        polarity = "; ".join(f"{t.label} = {MEANS.get(t.signal, t.signal)}" for t in terminals)
        section.settings += [
            ("Adapter", f"{hat.title}, {hat_port.note} ({iso})"),
            ("Terminal polarity", polarity),
            ("Termination at the gateway", hat_port.termination),
            ("Bias", hat_port.bias),
        ]
    else:
        section.settings += [
            ("Adapter", f"{port}: an isolated USB RS-485 adapter (hardware/rs485.md)"),
            ("Terminal polarity", "by measurement: " + POLARITY),
            ("Termination at the gateway", "adapter's 120 Ω switch ON, or 120 Ω across + and −"),
            ("Bias", "adapter's bias switch ON if it has one; otherwise measure first"),
        ]
    section.settings += [
        ("Termination at the far end", f"{last}: its 120 Ω switch ON, or 120 Ω across + and −"),
        ("Termination elsewhere", "OFF on every device in the middle of the chain"),
        ("Bias supply", "only from the transceiver's own side of the isolation (never the "
                        "Pi's 5 V on an isolated port): 560 Ω at 5 V, 390 Ω at 3.3 V, once"),
    ]  # fmt: skip
    section.notes.append(POLARITY)


def _bus_tests(section: Section, cabinet: list[str], last: str) -> None:
    low, high = line_to_zero_ohms(BIAS_5V)
    section.steps += [
        Step(f"Everything off: ohms {cabinet[0]} (+) to {cabinet[1]} (−)",
             f"{line_ohms(2) - 5:g}–{line_ohms(2) + 5:g} Ω (both 120 Ω fitted); "
             "120 Ω = one missing; 40 Ω = one too many"),
        Step(f"Everything off: ohms + and − each to {cabinet[2]} (0 V)",
             f"over 1 kΩ with no bias resistors fitted; {low:.0f}–{high:.0f} Ω with a "
             "560 Ω bias pair fitted; near 0 Ω = a short to 0 V"),
        Step("Shield lifted at the PE bar: ohms shield to PE at the far end", "open"),
        Step(f"Gateway running, bus idle: volts + to − at {last}",
             "+0.2 to +1 V; negative = pair swapped; about 0 V = no bias"),
        Step("gateway check CONFIG --probe", "every device on this bus answers; no console "
                                             "reported on this port"),
    ]  # fmt: skip


def rs232_section(c: Any, board: BoardProfile, strip: Terminals) -> Section:
    """An RS-232 instrument on its own port: a USB adapter's DB9, or a MAX3232 on the header."""
    claim: SerialClaim = c.serial_port()
    via_header = port_key(c.port, board) != c.port
    title = f"RS-232 instrument {c.device_name} on {c.port} (connector {c.name})"
    svg = draw.rs232_link(c.port, _settings(claim), c.device_name, via_header, title)
    section = Section(c.name, title, svg)
    start = "MAX3232 module DB9 " if via_header else f"USB RS-232 adapter {c.port} DB9 "
    section.wires += [
        Wire("TXD", f"{start}pin 3", f"{c.device_name} RXD", RS232, "pin 2 on a DTE instrument"),
        Wire("RXD", f"{start}pin 2", f"{c.device_name} TXD", RS232, "pin 3 on a DTE instrument"),
        Wire("GND", f"{start}pin 5", f"{c.device_name} GND (pin 5)", RS232),
    ]
    if via_header:
        section.wires += [
            Wire("TXD", "header pin 8 (GPIO14)", "MAX3232 module T1IN", PI_SIGNAL),
            Wire("RXD", "header pin 10 (GPIO15)", "MAX3232 module R1OUT", PI_SIGNAL),
            Wire("3.3 V", "header pin 1 (3V3)", "MAX3232 module VCC", PI_3V3, "never 5 V"),
            Wire("GND", "header pin 9 (GND)", "MAX3232 module GND", PI_GND),
        ]
        section.settings.append(
            ("Isolation", "none: the instrument's signal ground meets the Pi's GND; keep the "
                          "instrument in this cabinet, or use an isolated USB RS-232 adapter")
        )  # fmt: skip
    section.steps += [
        Step(f"Instrument on, idle: volts from its TX pin to pin 5 ({c.device_name})",
             "−5 to −12 V; on pin 3 = DTE (null-modem as drawn), on pin 2 = straight cable"),
        Step("gateway check CONFIG --probe (trigger a reading on the instrument)",
             f"a value for every tag of {c.device_name}; garbled = check {_settings(claim)}"),
    ]  # fmt: skip
    return section

"""The wiring sheet: one print-ready A4 HTML page (inline SVG) per gateway config, plus .svg files.

A section per connector: the drawing, then a table with one row per wire, terminal to terminal,
each with a check box the technician ticks at commissioning.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hardware import wiring_svg as draw
from hardware.profiles import BoardProfile, load_board
from hardware.wiring_checks import port_key

if TYPE_CHECKING:
    from gateway_image.firmware.config import GatewayConfig

DEFAULT_BOARD = "rpi4"
CSS = """
@page { size: A4 portrait; margin: 12mm; }
body { font-family: 'DejaVu Sans', Arial, sans-serif; font-size: 10pt; color: #111;
       max-width: 186mm; margin: 0 auto; }
h1 { font-size: 16pt; margin: 0 0 2mm; }
h2 { font-size: 12.5pt; margin: 6mm 0 2mm; border-bottom: 1.5px solid #111; }
table { border-collapse: collapse; width: 100%; margin: 2mm 0; }
th, td { border: 1px solid #999; padding: 1mm 1.5mm; text-align: left; vertical-align: top; }
th { background: #eef2f7; }
td.tick { width: 9mm; text-align: center; }
span.box { display: inline-block; width: 4mm; height: 4mm; border: 1.5px solid #111; }
section { break-inside: avoid; page-break-inside: avoid; }
svg { display: block; margin: 2mm 0; }
p.note { font-size: 9pt; margin: 1mm 0; }
.meta td { border: none; padding: 0.3mm 2mm 0.3mm 0; }
"""


@dataclass(frozen=True)
class Wire:
    """One connection to make and tick: terminal to terminal."""

    signal: str
    start: str
    end: str
    note: str = ""


@dataclass
class Section:
    slug: str
    title: str
    svg: ET.Element
    wires: list[Wire] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def sheet_board(config: GatewayConfig) -> tuple[BoardProfile, str]:
    """The board to draw for, and a note when the config does not name one."""
    if config.gateway.board:
        return load_board(config.gateway.board), ""
    note = f"gateway.board is not set in the config: pins drawn for {DEFAULT_BOARD}"
    return load_board(DEFAULT_BOARD), note


def sections(config: GatewayConfig, board: BoardProfile) -> Iterator[Section]:
    builders = {"serial_line": serial_line_section, "modbus_tcp": tcp_section}
    uart = list(header_uart_uses(config, board))
    buses = rtu_buses(config, board)
    for connector in config.connectors:
        if connector.type == "gpio":
            yield gpio_section(connector, board, uart)
        elif connector.type == "modbus_rtu":
            bus = buses[port_key(connector.port, board)]
            if bus[0] is connector:  # one drawing per physical bus, at its first connector
                yield rtu_section(bus, board)
        else:
            yield builders.get(connector.type, network_section)(connector, board)


def rtu_buses(config: GatewayConfig, board: BoardProfile) -> dict[str, list[Any]]:
    """Modbus RTU connectors naming one port share one bus: draw and terminate it once."""
    buses: dict[str, list[Any]] = {}
    for connector in config.connectors:
        if connector.type == "modbus_rtu":
            buses.setdefault(port_key(connector.port, board), []).append(connector)
    return buses


def header_uart_uses(config: GatewayConfig, board: BoardProfile) -> Iterator[draw.PinUse]:
    """Serial connectors on the header UART, so the GPIO drawing shows who has pins 8/10."""
    for connector in config.connectors:
        port = getattr(connector, "port", None)
        if not isinstance(port, str):
            continue
        for known in board.serial_ports:
            if known.path == port and known.gpios:
                for gpio in known.gpios:
                    yield draw.PinUse(gpio, "uart", f"{connector.name} ({port})")


def _settings(c: Any) -> str:
    stop = int(c.stopbits) if float(c.stopbits).is_integer() else c.stopbits
    return f"{c.baudrate} baud {c.bytesize}{c.parity}{stop}"


def _header_uart(port: str, board: BoardProfile) -> bool:
    return port_key(port, board) != port and port.startswith("/dev/")


def rtu_section(bus: list[Any], board: BoardProfile) -> Section:
    """An RS-485 bus: daisy chain in config order, terminated at the gateway and the last device."""
    c = bus[0]
    settings = _settings(c)
    devices = [d for connector in bus for d in connector.devices]
    nodes = [
        draw.BusNode(d.name, (f"Modbus address {d.unit}", f"{settings} · connector {conn.name}"))
        for conn in bus
        for d in conn.devices
    ]
    names = ", ".join(conn.name for conn in bus)
    title = f"RS-485 bus {c.port} (connector{'s' if len(bus) > 1 else ''} {names})"
    section = Section(c.name, title, draw.rs485_chain(c.port, settings, nodes, title))
    previous = f"gateway {c.port}"
    for d in devices:
        target = f"{d.name} (address {d.unit})"
        for signal, term in (("+", "B (+) / D1"), ("−", "A (−) / D0"), ("0 V", "0V / C")):
            section.wires.append(Wire(signal, f"{previous} {term}", f"{target} {term}"))
        section.wires.append(Wire("shield", previous, target, "continue through; do not ground"))
        previous = d.name
    last = devices[-1].name
    section.wires += [
        Wire("120 Ω", f"gateway {c.port} B (+)", f"gateway {c.port} A (−)", "termination"),
        Wire("120 Ω", f"{last} B (+)", f"{last} A (−)", "termination, end of line"),
        Wire("bias", "560 Ω + to 5 V, 560 Ω − to 0 V", "at the gateway end only",
             "skip if the adapter's bias is switched on; idle + to − must read 0.2–1 V"),
        Wire("shield", f"gateway {c.port} shield", "PE bar of the gateway cabinet",
             "this end only"),
    ]  # fmt: skip
    if _header_uart(c.port, board):
        section.notes.append(
            f"{c.port} is the header UART: the RS-485 HAT uses pins 8 (GPIO14) and 10 (GPIO15)."
        )
    section.notes.append(
        "Power off, measure + to − at the gateway: 55–65 Ω = both terminators "
        "fitted. Measured: ______ Ω. Labels A/B differ between vendors: see hardware/rs485.md."
    )
    return section


def serial_line_section(c: Any, board: BoardProfile) -> Section:
    """An RS-232 instrument on its own port."""
    device = getattr(c, "device_name", c.name)
    via_header = _header_uart(c.port, board)
    title = f"RS-232 instrument {device} on {c.port} (connector {c.name})"
    svg = draw.rs232_link(c.port, _settings(c), device, via_header, title)
    section = Section(c.name, title, svg)
    start = "MAX3232 board DB9 " if via_header else f"gateway {c.port} DB9 "
    section.wires += [
        Wire("TXD", f"{start}pin 3 TXD", f"{device} RXD", "pin 2 on a DTE instrument"),
        Wire("RXD", f"{start}pin 2 RXD", f"{device} TXD", "pin 3 on a DTE instrument"),
        Wire("GND", f"{start}pin 5 GND", f"{device} GND", "pin 5"),
    ]
    if via_header:
        section.wires += [
            Wire("TXD", "header pin 8 (GPIO14)", "MAX3232 T1IN"),
            Wire("RXD", "header pin 10 (GPIO15)", "MAX3232 R1OUT"),
            Wire("3.3 V", "header pin 1 (3V3)", "MAX3232 VCC", "never 5 V: RXD would see 5 V"),
            Wire("GND", "header pin 6 (GND)", "MAX3232 GND"),
        ]
    section.notes.append(
        "Measure the instrument's TX pin to pin 5 at idle: −5 to −12 V. On pin 3 → null-modem "
        "cable (as drawn); on pin 2 → straight cable. See hardware/rs232.md."
    )
    return section


def _gpio_uses(c: Any) -> Iterator[tuple[draw.PinUse, Any]]:
    for key, role in (("inputs", "input"), ("counters", "counter"), ("outputs", "output")):
        for item in getattr(c, key, None) or ():
            yield draw.PinUse(item.pin, role, item.name), item
            readback = getattr(item, "readback_pin", None)
            if readback is not None:
                yield draw.PinUse(readback, "readback", f"{item.name} readback"), item


def gpio_section(c: Any, board: BoardProfile, uart: list[draw.PinUse]) -> Section:
    """Header pins in use, each through its opto module or output driver."""
    uses = list(_gpio_uses(c))
    title = f"GPIO header on {board.title} (connector {c.name})"
    drawn = [u for u, _ in uses] + uart
    section = Section(c.name, title, draw.gpio_header(board, drawn, title))
    grounds = [p.pin for p in board.header if p.kind == "gnd"]
    for k, (use, item) in enumerate(uses):
        pin = f"header pin {board.header_pin(use.gpio)} (GPIO{use.gpio})"
        gnd = f"header pin {grounds[k % len(grounds)]} (GND)"
        if use.role == "output":
            driver = str(getattr(item, "driver", "driver"))
            level = "active high" if getattr(item, "active_high", True) else "active low"
            section.wires.append(Wire("out", pin, f"{driver} input for {use.label}", level))
            section.wires.append(Wire("GND", gnd, f"{driver} GND"))
            section.wires.append(Wire("load", f"{driver} output", use.label, "field side"))
        else:
            section.wires.append(
                Wire("in", f"opto module output for {use.label}", pin, _pull(item))
            )
            section.wires.append(Wire("GND", f"opto module GND ({use.label})", gnd))
            section.wires.append(
                Wire("24 V", f"field signal {use.label}", "opto module input", "4.7 kΩ for 24 V")
            )
    section.notes.append(
        "Nothing from the field lands on a header pin: inputs through opto-couplers, outputs "
        "through the named driver. 3.3 V logic only. See hardware/gpio.md."
    )
    return section


def _pull(item: Any) -> str:
    pull = getattr(item, "pull_up", True)
    if pull is None:
        return "external pull resistor"
    return "internal pull-up" if pull else "internal pull-down"


def tcp_section(c: Any, board: BoardProfile) -> Section:
    endpoint = f"{c.host}:{c.port}"
    units = [f"{d.name}: Modbus unit {d.unit}" for d in c.devices]
    title = f"Modbus TCP {endpoint} (connector {c.name})"
    section = Section(c.name, title, draw.network_link(endpoint, units, title))
    section.wires.append(Wire("Ethernet", "gateway eth0 (OT network)", f"switch port for {c.host}"))
    section.wires.append(Wire("check", f"ping {c.host}", f"nc -vz {c.host} {c.port}", "port open"))
    section.wires += [
        Wire("unit", f"{d.name}: Modbus unit {d.unit}", "gateway check --probe", "values read")
        for d in c.devices
    ]
    return section


def network_section(c: Any, board: BoardProfile) -> Section:
    """Connectors reached over the network (OPC UA, MQTT sensors): only cabling to check."""
    endpoint = str(getattr(c, "endpoint", None) or getattr(c, "host", None) or c.type)
    names = [f"device {d.name}" for d in getattr(c, "devices", None) or ()]
    title = f"{c.type} {endpoint} (connector {c.name})"
    section = Section(c.name, title, draw.network_link(endpoint, names or [c.type], title))
    section.wires.append(Wire("network", "gateway (Ethernet or Wi-Fi)", endpoint))
    return section


def config_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _el(parent: ET.Element, tag: str, content: str | None = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, tag, attrs)
    node.text = content
    return node


def _wire_table(parent: ET.Element, wires: list[Wire]) -> None:
    table = _el(parent, "table")
    head = _el(table, "tr")
    for name in ("#", "Signal", "From", "To", "Note", "Done"):
        _el(head, "th", name)
    for n, wire in enumerate(wires, 1):
        row = _el(table, "tr")
        for value in (str(n), wire.signal, wire.start, wire.end, wire.note):
            _el(row, "td", value)
        _el(_el(row, "td", **{"class": "tick"}), "span", "", **{"class": "box"})


def _meta(body: ET.Element, config: GatewayConfig, board: BoardProfile, source: str) -> None:
    table = _el(body, "table", **{"class": "meta"})
    taken = ", ".join(f"GPIO{g}" for g in sorted(board.taken_gpios()))
    rows = [
        ("Gateway", config.gateway.id),
        ("Site", config.gateway.site or "—"),
        ("Board", f"{board.title} ({board.name}), {board.logic_voltage:g} V logic"),
        ("Pins not available", taken),
        ("Config", source),
        ("Wired by / date", "______________________  ____________"),
    ]
    for key, value in rows:
        row = _el(table, "tr")
        _el(row, "td", key, style="font-weight:bold")
        _el(row, "td", value)


def build_document(
    config: GatewayConfig, board: BoardProfile, source: str, notes: list[str]
) -> tuple[ET.Element, list[Section]]:
    html = ET.Element("html", lang="en")
    head = _el(html, "head")
    _el(head, "meta", "", charset="utf-8")
    _el(head, "title", f"Wiring sheet {config.gateway.id}")
    _el(head, "style", CSS)
    body = _el(html, "body")
    _el(body, "h1", f"Wiring sheet — gateway {config.gateway.id}")
    _meta(body, config, board, source)
    for note in notes:
        _el(body, "p", note, **{"class": "note"})
    parts = list(sections(config, board))
    if not parts:
        _el(body, "p", "This config has no connectors: nothing to wire.")
    for part in parts:
        block = _el(body, "section", id=part.slug)
        _el(block, "h2", part.title)
        block.append(part.svg)
        _wire_table(block, part.wires)
        for note in part.notes:
            _el(block, "p", note, **{"class": "note"})
    return html, parts


def render_sheet(config: GatewayConfig, source: str) -> tuple[str, dict[str, str]]:
    """(HTML page, {slug: standalone SVG}) for a validated config read from `source`."""
    board, note = sheet_board(config)
    html, parts = build_document(config, board, source, [note] if note else [])
    page = "<!DOCTYPE html>\n" + ET.tostring(html, encoding="unicode", short_empty_elements=False)
    svgs = {
        part.slug: '<?xml version="1.0" encoding="UTF-8"?>\n'
        + ET.tostring(part.svg, encoding="unicode")
        for part in parts
    }
    return page, svgs


def write_sheet(config: GatewayConfig, config_path: Path, out_dir: Path) -> list[Path]:
    """Write <gateway-id>.html and <gateway-id>-<connector>.svg files; return their paths."""
    text = config_path.read_text(encoding="utf-8")
    source = f"{config_path.name} (sha256 {config_digest(text)})"
    page, svgs = render_sheet(config, source)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / f"{config.gateway.id}.html"]
    written[0].write_text(page, encoding="utf-8")
    for slug, svg in svgs.items():
        path = out_dir / f"{config.gateway.id}-{slug}.svg"
        path.write_text(svg, encoding="utf-8")
        written.append(path)
    return written

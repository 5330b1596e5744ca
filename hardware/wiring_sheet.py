"""The wiring sheet: one print-ready A4 HTML document (inline SVG) per gateway, plus .svg files.

Power and protection first, then a section per circuit: drawing, switch settings, one row per
wire (terminal to terminal, cable and core colour, a box to tick), the tests with expected
readings, and the sign-off boxes at the end. Every printed page carries the gateway id and
"page x of y" (CSS page margin boxes), and table headers repeat on each page.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from factory_common.config import ConfigError
from hardware import wiring_svg as draw
from hardware.profiles import BoardProfile
from hardware.serial_checks import port_key
from hardware.sheet_gpio import gpio_section
from hardware.sheet_parts import ETHERNET, LEGEND, Section, Step, Terminals, Wire
from hardware.sheet_power import power_section
from hardware.sheet_serial import rs232_section, rs485_section
from hardware.wiring_checks import resolve_board


class Identity(Protocol):
    """The `gateway:` block of a config as the sheet reads it."""

    @property
    def id(self) -> str: ...
    @property
    def site(self) -> str: ...
    @property
    def board(self) -> str | None: ...
    @property
    def hats(self) -> tuple[str, ...]: ...


class GatewayConfig(Protocol):
    """A validated gateway config; a Protocol so hardware/ imports nothing from the firmware."""

    @property
    def gateway(self) -> Identity: ...
    @property
    def connectors(self) -> Sequence[Any]: ...


CSS_TEMPLATE = """
@page { size: A4 portrait; margin: 17mm 12mm 15mm 12mm;
  @top-left { content: "Wiring sheet · gateway GATEWAY"; font: bold 9pt sans-serif; }
  @top-right { content: "BOARD"; font: 9pt sans-serif; }
  @bottom-left { content: "SOURCE"; font: 8pt sans-serif; }
  @bottom-right { content: "Page " counter(page) " of " counter(pages); font: 9pt sans-serif; }
}
body { font-family: 'DejaVu Sans', Arial, sans-serif; font-size: 9pt; color: #111;
       max-width: 186mm; margin: 0 auto; }
h1 { font-size: 15pt; margin: 0 0 2mm; }
h2 { font-size: 12pt; margin: 5mm 0 2mm; border-bottom: 1.5px solid #111;
     break-after: avoid; page-break-after: avoid; }
h3 { font-size: 10pt; margin: 3mm 0 1mm; break-after: avoid; page-break-after: avoid; }
table { border-collapse: collapse; width: 100%; margin: 1mm 0 2mm; }
thead { display: table-header-group; }
tr { break-inside: avoid; page-break-inside: avoid; }
th, td { border: 1px solid #999; padding: 0.8mm 1.2mm; text-align: left; vertical-align: top; }
th { background: #eef2f7; }
td.tick { width: 8mm; text-align: center; }
td.write { width: 28mm; }
span.box { display: inline-block; width: 4mm; height: 4mm; border: 1.5px solid #111; }
svg { display: block; margin: 2mm 0; break-inside: avoid; page-break-inside: avoid; }
p.note { margin: 1mm 0; }
.meta td { border: none; padding: 0.3mm 2mm 0.3mm 0; }
.sign td { height: 12mm; }
section.signoff, div.head { break-inside: avoid; page-break-inside: avoid; }
code { font-size: 9pt; }
"""


def sheet_board(config: GatewayConfig) -> BoardProfile:
    """The board the sheet is drawn for: a sheet to wire from must name the real board."""
    if config.gateway.board is None:
        raise ConfigError(
            "wiring sheet",
            ["gateway.board: required for a wiring sheet (pins, ports and terminals differ "
             "per board): set it to the board mounted in the cabinet, e.g. rpi4"],
        )  # fmt: skip
    board, problems = resolve_board(config.gateway.board, config.gateway.hats)
    if problems:
        raise ConfigError("wiring sheet", [str(p) for p in problems])
    return board


def rtu_buses(config: GatewayConfig, board: BoardProfile) -> dict[str, list[Any]]:
    """Modbus RTU connectors naming one port share one bus: draw and terminate it once."""
    buses: dict[str, list[Any]] = {}
    for connector in config.connectors:
        if connector.type == "modbus_rtu":
            buses.setdefault(port_key(connector.port, board), []).append(connector)
    return buses


def header_uart_uses(config: GatewayConfig, board: BoardProfile) -> Iterator[draw.PinUse]:
    """Serial connectors on a header UART, so the GPIO drawing shows who has pins 8/10."""
    for connector in config.connectors:
        claim = connector.serial_port()
        known = board.serial_port(claim.port) if claim is not None else None
        if claim is not None and known is not None:
            for gpio in known.gpios:
                yield draw.PinUse(gpio, "uart", connector.name)


def sections(config: GatewayConfig, board: BoardProfile) -> Iterator[Section]:
    strip = Terminals()
    buses = rtu_buses(config, board)
    yield power_section(board, strip, leaves_cabinet=bool(buses))
    uart = list(header_uart_uses(config, board))
    for connector in config.connectors:
        if connector.type == "gpio":
            yield gpio_section(connector, board, strip, uart)
        elif connector.type == "modbus_rtu":
            bus = buses[port_key(connector.port, board)]
            if bus[0] is connector:  # one drawing per physical bus, at its first connector
                yield rs485_section(bus, board, strip)
        elif connector.type == "serial_line":
            yield rs232_section(connector, board, strip)
        else:
            yield network_section(connector)


def network_target(c: Any) -> tuple[str, str, list[str]]:
    """(host, endpoint, lines to print) of a connector reached over the network, by type."""
    if c.type == "modbus_tcp":
        units = [f"{d.name}: Modbus unit {d.unit}" for d in c.devices]
        return c.host, f"{c.host}:{c.port}", units
    if c.type == "opcua":
        host = urlsplit(c.endpoint).hostname or c.endpoint
        return host, c.endpoint, [f"device {d.name}" for d in c.devices]
    if c.type == "mqtt_in":
        topics = [f"topic {s.topic}" for s in c.subscriptions]
        return c.host, f"{c.host}:{c.port}", topics
    return c.type, c.type, [c.type]


def network_section(c: Any) -> Section:
    """Connectors reached over Ethernet (Modbus TCP PLC, OPC UA server, MQTT sensors)."""
    host, endpoint, units = network_target(c)
    title = f"{c.type} {endpoint} (connector {c.name})"
    section = Section(c.name, title, draw.network_link(endpoint, units or [c.type], title))
    section.wires.append(Wire("Ethernet", "gateway eth0 (OT network)", f"switch port for {host}",
                              ETHERNET, "label the switch port with the gateway id"))  # fmt: skip
    section.steps += [
        Step(f"ping {host} from the gateway", "replies, no loss"),
        Step("gateway check CONFIG --probe", f"every tag of connector {c.name} has a value"),
    ]
    return section


def config_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _el(parent: ET.Element, tag: str, content: str | None = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, tag, attrs)
    node.text = content
    return node


def _table(parent: ET.Element, head: Sequence[str], rows: Sequence[Sequence[str]],
           tick: bool = True, write: bool = False) -> None:  # fmt: skip
    table = _el(parent, "table")
    header = _el(_el(table, "thead"), "tr")
    for name in (*head, *(["Measured"] if write else []), *(["✓"] if tick else [])):
        _el(header, "th", name)
    body = _el(table, "tbody")
    for values in rows:
        row = _el(body, "tr")
        for value in values:
            _el(row, "td", value)
        if write:
            _el(row, "td", "", **{"class": "write"})
        if tick:
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
    ]
    for key, value in rows:
        row = _el(table, "tr")
        _el(row, "td", key, style="font-weight:bold")
        _el(row, "td", value)


def _boot_settings(body: ET.Element, board: BoardProfile) -> None:
    _el(body, "h2", "Boot settings to check on the SD card or eMMC")
    rows = [("config.txt", f"contains the line {line}") for line in board.config_txt()]
    rows += [("cmdline.txt", f"does NOT contain {item}") for item in board.cmdline_remove]
    _table(body, ("File (boot partition)", "Check"), rows)


def _section(body: ET.Element, part: Section) -> None:
    block = _el(body, "section", id=part.slug)
    head = _el(block, "div", **{"class": "head"})  # a title never ends a page alone
    _el(head, "h2", part.title)
    if part.svg is not None:
        head.append(part.svg)
    if part.settings:
        _el(block, "h3", "Switches and settings")
        _table(block, ("Item", "Setting"), part.settings)
    _el(block, "h3", "Wires")
    wires = enumerate(part.wires, 1)
    rows = [(str(n), w.signal, w.start, w.end, w.cable, w.note) for n, w in wires]
    _table(block, ("#", "Signal", "From", "To", "Cable / colour", "Note"), rows)
    for note in part.notes:
        _el(block, "p", note, **{"class": "note"})
    if part.steps:
        _el(block, "h3", "Tests")
        steps = [(str(n), s.action, s.expected) for n, s in enumerate(part.steps, 1)]
        _table(block, ("#", "Test", "Expected"), steps, write=True)


SIGN_OFF = (
    "Wired by (technician)",
    "Checked by (second person)",
    "Electrical sign-off: mains, PE, breaker, fuses (qualified electrician)",
)


def _sign_off(body: ET.Element) -> None:
    block = _el(body, "section", **{"class": "signoff"})
    _el(block, "h2", "Sign-off")
    table = _el(block, "table", **{"class": "sign"})
    header = _el(_el(table, "thead"), "tr")
    for name in ("Role", "Name", "Date", "Signature"):
        _el(header, "th", name)
    tbody = _el(table, "tbody")
    for role in SIGN_OFF:
        row = _el(tbody, "tr")
        _el(row, "td", role)
        for _ in range(3):
            _el(row, "td", "")


def build_document(
    config: GatewayConfig, board: BoardProfile, source: str
) -> tuple[ET.Element, list[Section]]:
    css = CSS_TEMPLATE.replace("GATEWAY", config.gateway.id).replace("BOARD", board.name)
    html = ET.Element("html", lang="en")
    head = _el(html, "head")
    _el(head, "meta", "", charset="utf-8")
    _el(head, "title", f"Wiring sheet {config.gateway.id}")
    _el(head, "style", css.replace("SOURCE", source.replace('"', "'")))
    body = _el(html, "body")
    _el(body, "h1", f"Wiring sheet — gateway {config.gateway.id}")
    _meta(body, config, board, source)
    _el(body, "h2", "Cables and core colours")
    _table(body, ("Code", "Circuit", "Cable and core colours"), LEGEND, tick=False)
    _boot_settings(body, board)
    parts = list(sections(config, board))
    for part in parts:
        _section(body, part)
    _sign_off(body)
    return html, parts


def render_sheet(config: GatewayConfig, source: str) -> tuple[str, dict[str, str]]:
    """(HTML document, {slug: standalone SVG}) for a validated config read from `source`."""
    board = sheet_board(config)
    html, parts = build_document(config, board, source)
    page = "<!DOCTYPE html>\n" + ET.tostring(html, encoding="unicode", short_empty_elements=False)
    svgs = {
        part.slug: '<?xml version="1.0" encoding="UTF-8"?>\n'
        + ET.tostring(part.svg, encoding="unicode")
        for part in parts
        if part.svg is not None
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

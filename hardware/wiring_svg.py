"""SVG drawings for the wiring sheet: an RS-485 daisy chain, an RS-232 link, the GPIO header.

Drawings are built as ElementTree elements so every name from the config is escaped and the
result is always well-formed XML (inline in the HTML sheet and as standalone .svg files).
Every drawing is WIDTH units wide and prints 186 mm wide on A4, so 12 units of font size
print at 8.3 pt: MIN_FONT is the smallest size any text may use.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from hardware.profiles import BoardProfile

SVG_NS = "http://www.w3.org/2000/svg"
WIDTH = 760
MIN_FONT = 12
INK = "#111"
PLUS, MINUS, COMMON, SHIELD = "#c0392b", "#1f4e9c", "#333", "#777"
ROLE_FILL = {"input": "#d8f0d8", "counter": "#d6e6fa", "output": "#fde3c8", "readback": "#efe0fa"}


@dataclass(frozen=True)
class BusNode:
    """One device on an RS-485 chain as drawn: its name and the lines printed under it."""

    name: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class PinUse:
    """A header pin in use on the GPIO drawing."""

    gpio: int
    role: str  # input | counter | output | readback | rs485-de
    label: str


def svg_root(height: int, title: str) -> ET.Element:
    root = ET.Element(
        "svg",
        {
            "xmlns": SVG_NS,
            "viewBox": f"0 0 {WIDTH} {height}",
            "width": "100%",
            "font-family": "DejaVu Sans, Arial, sans-serif",
            "font-size": "12",
            "role": "img",
        },
    )
    ET.SubElement(root, "title").text = title
    return root


def text(parent: ET.Element, x: float, y: float, content: str, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, "text", {"x": f"{x:g}", "y": f"{y:g}", **attrs})
    node.text = content
    return node


def line(parent: ET.Element, x1: float, y1: float, x2: float, y2: float, **attrs: str) -> None:
    coords = {"x1": f"{x1:g}", "y1": f"{y1:g}", "x2": f"{x2:g}", "y2": f"{y2:g}"}
    ET.SubElement(parent, "line", {**coords, "stroke": INK, "stroke-width": "2", **attrs})


def rect(parent: ET.Element, x: float, y: float, w: float, h: float, **attrs: str) -> None:
    box = {"x": f"{x:g}", "y": f"{y:g}", "width": f"{w:g}", "height": f"{h:g}"}
    ET.SubElement(parent, "rect", {**box, "fill": "#fff", "stroke": INK, **attrs})


def checkbox(parent: ET.Element, x: float, y: float) -> None:
    """A 12 px square to tick with a pen at commissioning."""
    rect(parent, x, y, 12, 12, **{"stroke-width": "1.5", "class": "tick"})


def resistor(parent: ET.Element, x1: float, x2: float, y: float, label: str, lx: float) -> None:
    """A horizontal resistor between two bus lines (termination), labelled at x=lx."""
    mid = (x1 + x2) / 2
    line(parent, x1, y, mid - 9, y, **{"stroke-width": "1.5"})
    line(parent, mid + 9, y, x2, y, **{"stroke-width": "1.5"})
    rect(parent, mid - 9, y - 4, 18, 8, **{"stroke-width": "1.5"})
    text(parent, lx, y + 4, label, **{"font-weight": "bold", "font-size": "12"})


# Bus line x positions and names: +, -, 0 V, shield (shield dashed).
_BUS_X = (60, 90, 120, 150)
_BUS_COLOURS = (PLUS, MINUS, COMMON, SHIELD)
_BUS_NAMES = ("+", "−", "0V", "SH")
_BOX_X = 232


def rs485_chain(
    port: str,
    settings: str,
    nodes: Sequence[BusNode],
    title: str,
    gateway_labels: Sequence[str] = _BUS_NAMES,
) -> ET.Element:
    """The gateway at the top, devices daisy-chained below, 120 Ω at both physical ends.

    `gateway_labels` are the gateway port's terminals as its maker prints them, in the order
    +, −, 0 V, shield (e.g. A, B, GND, PE on a HAT whose A is the + line).
    """
    row, top = 86, 100
    height = top + row * len(nodes) + 4
    svg = svg_root(height, title)
    rect(svg, 20, 10, 720, 52, **{"fill": "#eef2f7"})
    text(svg, 32, 30, f"Gateway RS-485 port {port}", **{"font-weight": "bold"})
    text(svg, 32, 50, f"{settings} · shield to PE at this end only")
    labels = " / ".join(f"{lab}={sig}" for lab, sig in zip(gateway_labels, _BUS_NAMES, strict=True))
    text(svg, 400, 30, f"terminals: {labels}", **{"font-size": "12"})
    bottom = top + row * (len(nodes) - 1) + 74
    for x, colour, name in zip(_BUS_X, _BUS_COLOURS, _BUS_NAMES, strict=True):
        dash = {"stroke-dasharray": "6 4"} if name == "SH" else {}
        line(svg, x, 62, x, bottom, stroke=colour, **dash)
        attrs = {"font-size": "12", "fill": colour, "text-anchor": "end"}
        text(svg, x - 2, 76, name, **attrs)
    resistor(svg, _BUS_X[0], _BUS_X[1], 86, "120 Ω termination at the gateway", _BUS_X[3] + 12)
    for i, node in enumerate(nodes):
        _bus_device(svg, top + row * i, node, last=i == len(nodes) - 1)
    return svg


def _bus_device(svg: ET.Element, y: float, node: BusNode, last: bool) -> None:
    rect(svg, _BOX_X, y, 508, 66, rx="4")
    for k, (x, colour, name) in enumerate(zip(_BUS_X, _BUS_COLOURS, _BUS_NAMES, strict=True)):
        ty = y + 12 + 14 * k
        ET.SubElement(svg, "circle", {"cx": f"{x}", "cy": f"{ty}", "r": "3.5", "fill": colour})
        line(svg, x, ty, _BOX_X, ty, stroke=colour, **{"stroke-width": "1"})
        text(svg, _BOX_X + 4, ty + 4, name, **{"font-size": "12", "fill": colour})
    text(svg, _BOX_X + 34, y + 18, node.name, **{"font-weight": "bold", "font-size": "14"})
    for k, extra in enumerate(node.lines):
        text(svg, _BOX_X + 34, y + 36 + 15 * k, extra)
    if last:
        text(svg, 560, y + 18, "END OF LINE", **{"font-weight": "bold", "font-size": "12"})
        resistor(svg, _BUS_X[0], _BUS_X[1], y + 74, "120 Ω termination here", _BUS_X[3] + 12)


def rs232_link(port: str, settings: str, device: str, via_header: bool, title: str) -> ET.Element:
    """Gateway DB9 (DTE) to an instrument, drawn as a null-modem (TX and RX crossed)."""
    svg = svg_root(190, title)
    rect(svg, 20, 20, 230, 130, **{"fill": "#eef2f7"})
    text(svg, 32, 42, "Gateway (DTE)", **{"font-weight": "bold"})
    text(svg, 32, 60, port, **{"font-size": "12"})
    if via_header:
        text(svg, 32, 76, "header pins 8 TXD / 10 RXD / 6 GND", **{"font-size": "12"})
        text(svg, 32, 90, "through a MAX3232 level shifter", **{"font-size": "12"})
    rect(svg, 510, 20, 230, 130)
    text(svg, 522, 42, device, **{"font-weight": "bold"})
    text(svg, 522, 60, settings, **{"font-size": "12"})
    rows = [("3 TXD", "2 RXD", 104), ("2 RXD", "3 TXD", 122), ("5 GND", "5 GND", 140)]
    for left, right, y in rows:
        text(svg, 190, y + 4, left, **{"font-size": "12"})
        text(svg, 522, y + 4, right, **{"font-size": "12"})
    line(svg, 250, 104, 510, 122)
    line(svg, 250, 122, 510, 104)
    line(svg, 250, 140, 510, 140, stroke=COMMON)
    text(svg, 300, 176, "null-modem: TX ↔ RX crossed; straight cable if the instrument is a DCE")
    return svg


def gpio_header(board: BoardProfile, uses: Sequence[PinUse], title: str) -> ET.Element:
    """The 40-pin header with used pins coloured and labelled, reserved pins greyed out."""
    rows = (len(board.header) + 1) // 2
    svg = svg_root(40 + rows * 24, title)
    by_gpio = {u.gpio: u for u in uses}
    taken = board.taken_gpios()
    for pin in board.header:
        row, right = (pin.pin - 1) // 2, pin.pin % 2 == 0
        cx, cy = (395 if right else 365), 30 + row * 24
        use = by_gpio.get(pin.gpio) if pin.gpio is not None else None
        fill = _pin_fill(pin.kind, pin.gpio, use, taken)
        ET.SubElement(
            svg, "circle", {"cx": f"{cx}", "cy": f"{cy}", "r": "11", "fill": fill, "stroke": INK}
        )
        text(svg, cx, cy + 4, str(pin.pin), **{"font-size": "12", "text-anchor": "middle"})
        name = f"GPIO{pin.gpio}" if pin.gpio is not None else pin.kind.upper()
        label = _fit(f"{name} · {use.role}: {use.label}") if use else name
        if pin.gpio in taken and not use:
            label = f"{name} (reserved)"
        anchor, x = ("start", 412) if right else ("end", 348)
        weight = "bold" if use else "normal"
        attrs = {"text-anchor": anchor, "font-weight": weight, "font-size": "12"}
        text(svg, x, cy + 4, label, **attrs)
    return svg


def _fit(label: str, room: int = 46) -> str:
    """About 46 characters of 12-unit text fit beside the header: longer names are cut."""
    return label if len(label) <= room else label[: room - 1] + "…"


def _pin_fill(kind: str, gpio: int | None, use: PinUse | None, taken: dict[int, str]) -> str:
    if use is not None:
        return ROLE_FILL.get(use.role, "#fff3a0")
    if kind == "gnd":
        return "#555"
    if kind in ("3v3", "5v"):
        return "#f4b6b6"
    return "#ccc" if gpio in taken else "#fff"


def network_link(endpoint: str, units: Sequence[str], title: str) -> ET.Element:
    """Gateway Ethernet to a network device (PLC, OPC UA server, broker)."""
    height = 90 + 16 * max(len(units) - 2, 0)
    svg = svg_root(height, title)
    rect(svg, 20, 20, 240, 50, **{"fill": "#eef2f7"})
    text(svg, 32, 42, "Gateway eth0 (OT side)", **{"font-weight": "bold"})
    text(svg, 32, 60, "static address, no default route", **{"font-size": "12"})
    line(svg, 260, 45, 480, 45)
    text(svg, 300, 38, "Ethernet (Cat6 S/FTP)", **{"font-size": "12"})
    rect(svg, 480, 20, 260, height - 30)
    text(svg, 492, 42, endpoint, **{"font-weight": "bold"})
    for k, unit in enumerate(units):
        text(svg, 492, 60 + 16 * k, unit, **{"font-size": "12"})
    return svg

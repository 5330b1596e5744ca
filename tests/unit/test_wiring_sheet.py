"""Wiring sheet: well-formed HTML and SVG naming every device, pin and address, kept current."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway_image.firmware.cli import app
from gateway_image.firmware.config import GatewayConfig, load_gateway_config
from hardware.wiring_sheet import render_sheet

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "anodizing-gateway.yaml"
EXAMPLE_SHEET = ROOT / "examples" / "wiring"
CABINET = ROOT / "tests" / "cases" / "wiring_sheet" / "cabinet.yaml"


def load(path: Path) -> GatewayConfig:
    return load_gateway_config(path)


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def svg_text(svg: ET.Element) -> str:
    return " ".join(" ".join(node.itertext()) for node in svg.iter() if local(node.tag) == "text")


def expected_labels(config: GatewayConfig) -> list[str]:
    """Names, addresses and pins a technician must find in the drawings."""
    labels: list[str] = []
    for c in config.connectors:
        for device in getattr(c, "devices", None) or ():
            labels.append(device.name)
            if c.type == "modbus_rtu":
                labels.append(f"Modbus address {device.unit}")
        if c.type == "serial_line":
            labels += [c.device_name, c.port, str(c.baudrate)]
        for key in ("inputs", "counters", "outputs"):
            for item in getattr(c, key, None) or ():
                labels += [item.name, f"GPIO{item.pin}"]
    return labels


@pytest.mark.parametrize("path", [EXAMPLE, CABINET], ids=["example", "cabinet"])
def test_sheet_parses_and_names_every_device_and_pin(path: Path) -> None:
    config = load(path)
    page, svgs = render_sheet(config, path.name)
    html = ET.fromstring(page.removeprefix("<!DOCTYPE html>\n"))
    inline = [node for node in html.iter() if local(node.tag) == "svg"]
    # One drawing per connector, except Modbus RTU: one per bus (connectors may share a port).
    rtu = [c for c in config.connectors if c.type == "modbus_rtu"]
    drawings = len(config.connectors) - len(rtu) + len({c.port for c in rtu})
    assert len(inline) == drawings == len(svgs)
    standalone = [ET.fromstring(text.encode()) for text in svgs.values()]
    for drawings in (inline, standalone):
        text = " ".join(svg_text(svg) for svg in drawings)
        for label in expected_labels(config):
            assert label in text, f"{label!r} missing from the drawings of {path.name}"


def test_gpio_pins_are_drawn_on_their_header_pins() -> None:
    config = load(CABINET)
    _, svgs = render_sheet(config, CABINET.name)
    svg = ET.fromstring(svgs["cabinet-io"].encode())
    labels = [svg_text(node) for node in svg.iter() if local(node.tag) == "text"]
    # GPIO22 is header pin 15, drawn as the circle label "15" next to its name.
    assert "GPIO22 · output: defect_lamp" in labels
    assert "GPIO24 · readback: label_trigger readback" in labels
    assert "GPIO14 · uart: colourimeter (/dev/serial0)" in labels
    assert [str(n) for n in range(1, 41)] == [t for t in labels if t.isdigit()]


def rows(page: str) -> list[Any]:
    html = ET.fromstring(page.removeprefix("<!DOCTYPE html>\n"))
    tables = [t for t in html.iter("table") if t.get("class") != "meta"]
    return [r for t in tables for r in t.iter("tr") if r.find("td") is not None]


def test_every_connection_has_a_tick_box() -> None:
    config = load(CABINET)
    page, _ = render_sheet(config, CABINET.name)
    wires = rows(page)
    assert len(wires) > 20
    for row in wires:
        boxes = [s for s in row.iter("span") if s.get("class") == "box"]
        assert len(boxes) == 1, ET.tostring(row, encoding="unicode")
    text = " ".join(" ".join(r.itertext()) for r in wires)
    assert "header pin 15 (GPIO22)" in text and "relay input for defect_lamp" in text
    assert "header pin 8 (GPIO14)" in text  # colourimeter through the MAX3232
    assert "19200 baud 7E1" in page


def test_committed_example_sheet_is_current(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["wiring", str(EXAMPLE), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    fresh = sorted(p.name for p in tmp_path.iterdir())
    assert fresh == sorted(p.name for p in EXAMPLE_SHEET.iterdir())
    for name in fresh:
        assert (tmp_path / name).read_text() == (EXAMPLE_SHEET / name).read_text(), (
            f"examples/wiring/{name} is stale: run "
            "`gateway wiring examples/anodizing-gateway.yaml --out examples/wiring`"
        )


def test_cli_refuses_a_config_with_wiring_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("gateway: {id: gw1, board: rpi3}\n")
    result = CliRunner().invoke(app, ["wiring", str(bad), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "unknown board 'rpi3'" in result.output
    assert not (tmp_path / "out").exists()


def test_connectors_sharing_a_port_are_one_bus_terminated_once() -> None:
    config = load(CABINET)
    page, svgs = render_sheet(config, CABINET.name)
    assert "bath-rs485-slow" not in svgs  # drawn with bath-rs485, not as a second bus
    svg = ET.fromstring(svgs["bath-rs485"].encode())
    labels = [svg_text(node) for node in svg.iter() if local(node.tag) == "text"]
    devices = ["rectifier1", "ph_meter", "conductivity", "dosing_pump"]
    assert [label for label in labels if label in devices] == devices  # daisy-chain order
    assert labels.count("END OF LINE") == 1
    assert labels.count("120 Ω termination here") == 1  # at dosing_pump, the last device
    text = " ".join(" ".join(r.itertext()) for r in rows(page))
    assert "dosing_pump B (+) dosing_pump A (−) termination, end of line" in text
    assert "conductivity B (+) / D1 dosing_pump (address 7) B (+) / D1" in text

"""Wiring sheet: well-formed HTML and SVG, every module's every terminal, kept current."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factory_common.config import ConfigError
from gateway_image.firmware.cli import app
from gateway_image.firmware.config import GatewayConfig, load_gateway_config, parse_gateway_config
from hardware.wiring_sheet import render_sheet
from hardware.wiring_svg import MIN_FONT

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "cabinet-gateway.yaml"
EXAMPLE_SHEET = ROOT / "examples" / "wiring"
CABINET = ROOT / "tests" / "cases" / "wiring_sheet" / "cabinet.yaml"


def load(path: Path) -> GatewayConfig:
    return load_gateway_config(path)


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def svg_text(svg: ET.Element) -> str:
    return " ".join(" ".join(node.itertext()) for node in svg.iter() if local(node.tag) == "text")


def parse(page: str) -> ET.Element:
    return ET.fromstring(page.removeprefix("<!DOCTYPE html>\n"))


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
        labels += [f"GPIO{k.gpio}" for k in c.pin_claims()]
        labels += [k.name for k in c.pin_claims() if k.role != "readback"]
    return labels


@pytest.mark.parametrize("path", [EXAMPLE, CABINET], ids=["example", "cabinet"])
def test_sheet_parses_and_names_every_device_and_pin(path: Path) -> None:
    config = load(path)
    page, svgs = render_sheet(config, path.name)
    inline = [node for node in parse(page).iter() if local(node.tag) == "svg"]
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
    assert "GPIO22 · output: defect_lamp" in labels
    assert "GPIO24 · readback: label_trigger_readback" in labels
    assert "GPIO14 · uart: colourimeter" in labels
    assert [str(n) for n in range(1, 41)] == [t for t in labels if t.isdigit()]


def wire_rows(page: str) -> list[list[str]]:
    """Rows of every table with a tick column, as cell texts."""
    rows = []
    for table in parse(page).iter("table"):
        head = [" ".join(th.itertext()) for th in table.iter("th")]
        if "✓" not in head:
            continue
        for row in table.iter("tr"):
            cells = [" ".join(td.itertext()) for td in row.findall("td")]
            if cells:
                rows.append(cells)
                boxes = [s for s in row.iter("span") if s.get("class") == "box"]
                assert len(boxes) == 1, ET.tostring(row, encoding="unicode")
    return rows


def joined(page: str) -> str:
    return "\n".join(" | ".join(row) for row in wire_rows(page))


def test_every_module_shows_every_terminal_it_needs() -> None:
    """Relay modules: logic in, coil supply, contact and load; opto modules: both supplies."""
    page, _ = render_sheet(load(EXAMPLE), EXAMPLE.name)
    text = joined(page)
    for needed in (
        "header pin 11 (GPIO17) | K1 relay module IN+ (Pi side)",
        "K1 relay module IN− (Pi side)",
        "X1:1 (+24 V) | K1 relay module A1 / + supply (field side)",
        "K1 relay module A2 / − supply (field side) | X1:2 (0 V)",
        "X1:1 (+24 V) | K1 relay module contact COM (11)",
        "defect_lamp load − | X1:2 (0 V)",
        "header pin 1 (3V3) | OM1 VCC (Pi side)",
        "OM1 GND (Pi side)",
        "OM1 IN1− (field side) | X1:2 (0 V)",
        "header pin 1 (3V3) | MAX3232 module VCC",
        "MAX3232 module GND",
    ):
        assert needed in text, needed
    # Isolation: no row joins field 0 V (X1:2) and a Pi GND pin.
    for row in wire_rows(page):
        ends = " ".join(row[2:4])
        assert not ("X1:2" in ends and "(GND)" in ends), row


def test_power_section_has_breaker_pe_fuses_and_who() -> None:
    page, _ = render_sheet(load(EXAMPLE), EXAMPLE.name)
    text = joined(page)
    assert "qualified electrician only" in text and "PE bar" in text
    assert "F1 T2A" in text and "F3 T3.15A" in text  # the Pi 4's 3 A rating
    assert "surge protective device" in text  # an RS-485 bus leaves the cabinet
    assert "Electrical sign-off" in page and "Wired by" in page and "Checked by" in page
    rpi5 = EXAMPLE.read_text().replace("board: rpi4", "board: rpi5")
    rpi5 = rpi5.replace("port: /dev/ttyAMA0", "port: /dev/ttyUSB0")
    rpi5 = rpi5.replace("driver: relay}", "driver: relay, external_pull: down}")
    rpi5 = rpi5.replace("readback_pin: 26}", "readback_pin: 26, external_pull: down}")
    page5, _ = render_sheet(parse_gateway_config(rpi5, "rpi5.yaml"), "rpi5.yaml")
    assert "F3 T5A" in joined(page5)  # a Pi 5 needs 5 A


def test_hat_terminals_switches_and_boot_lines_from_the_profiles() -> None:
    page, _ = render_sheet(load(EXAMPLE), EXAMPLE.name)
    text = joined(page)
    # The Waveshare HAT prints A for the + line: the sheet says so, per its profile.
    assert "gateway /dev/ttySC0 A | X3:1" in text and "gateway /dev/ttySC0 B | X3:2" in text
    assert "Waveshare 2-CH RS485 HAT, channel 1" in text
    assert "A = + (Modbus D1, TIA-485 B: higher at idle); B = − (Modbus D0, TIA-485 A)" in text
    assert "Termination at the gateway" in text and "Termination at the far end" in text
    assert "dtoverlay=sc16is752-spi1,int_pin=24" in text
    assert "does NOT contain console=serial0,115200" in text
    assert "294–620 Ω with a 560 Ω bias pair fitted" in text


def test_every_circuit_has_tests_with_expected_readings() -> None:
    page, _ = render_sheet(load(EXAMPLE), EXAMPLE.name)
    sections = [s for s in parse(page).iter("section") if s.get("id")]
    assert len(sections) >= 5
    for section in sections:
        heads = [" ".join(h.itertext()) for h in section.iter("h3")]
        assert "Tests" in heads, section.get("id")
    assert "gateway check CONFIG --probe" in joined(page)


def test_print_sizes_repeat_headers_and_page_boxes() -> None:
    """Every font at least 8 pt on A4; table headers in <thead>; id and page x of y per page."""
    page, svgs = render_sheet(load(EXAMPLE), EXAMPLE.name)
    assert 'counter(page) " of " counter(pages)' in page and "gateway line2-gw1" in page
    for svg in svgs.values():
        sizes = [float(n.get("font-size", MIN_FONT)) for n in ET.fromstring(svg).iter()]
        assert min(sizes) >= MIN_FONT
    for table in parse(page).iter("table"):
        if table.get("class") != "meta":
            assert table.find("thead") is not None


def test_committed_example_sheet_is_current(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["wiring", str(EXAMPLE), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    fresh = sorted(p.name for p in tmp_path.iterdir())
    assert fresh == sorted(p.name for p in EXAMPLE_SHEET.iterdir())
    for name in fresh:
        assert (tmp_path / name).read_text() == (EXAMPLE_SHEET / name).read_text(), (
            f"examples/wiring/{name} is stale: run "
            "`gateway wiring examples/cabinet-gateway.yaml --out examples/wiring`"
        )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gateway: {id: gw1, board: rpi3}\n", "unknown board 'rpi3'"),
        ("gateway: {id: gw1}\n", "gateway.board: required for a wiring sheet"),
    ],
    ids=["unknown-board", "no-board"],
)
def test_cli_refuses_a_config_it_cannot_draw(tmp_path: Path, text: str, message: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = CliRunner().invoke(app, ["wiring", str(bad), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "out").exists()


def test_no_board_is_an_error_for_the_sheet_only() -> None:
    config = parse_gateway_config("gateway: {id: gw1}\n")
    with pytest.raises(ConfigError, match="required for a wiring sheet"):
        render_sheet(config, "x.yaml")


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
    text = joined(page)
    assert "dosing_pump: its 120 Ω switch ON" in text
    assert "conductivity + | dosing_pump (address 7) +" in text


SAMPLES = sorted((ROOT / "gateway_image" / "firmware" / "connectors").glob("*/sample*.yaml"))
SAMPLES += sorted((ROOT / "examples").glob("*-gateway.yaml"))


@pytest.mark.parametrize("path", SAMPLES, ids=[f"{p.parent.name}/{p.name}" for p in SAMPLES])
def test_every_shipped_config_draws_a_sheet(path: Path) -> None:
    """Each names its board, and every connector type (OPC UA, MQTT in too) has a section."""
    config = load(path)
    page, _ = render_sheet(config, path.name)
    sections = {s.get("id") for s in parse(page).iter("section")}
    drawn_alone = {c.name for c in config.connectors if c.type != "modbus_rtu"}
    assert drawn_alone <= sections
    assert "Power and protection" in page

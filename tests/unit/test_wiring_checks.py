"""Wiring checks: each case folder is a config with one wiring mistake and the exact errors.

tests/cases/wiring/<name>/config.yaml is loaded through the real loader (the checks run in
GatewayConfig validation); expected.txt lists every problem as 'config.yaml:line: path: message'.
An empty expected.txt means the config must load cleanly.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from factory_common.config import ConfigError, parse_yaml_model
from gateway_image.firmware.cli import app
from gateway_image.firmware.config import GatewayConfig, load_gateway_config, parse_gateway_config
from hardware.profiles import BoardProfile, load_board
from hardware.serial_checks import port_key
from hardware.wiring_checks import Placed, board_pins, wiring_problems

CASES = Path(__file__).parents[1] / "cases" / "wiring"
CASE_DIRS = sorted(p for p in CASES.iterdir() if (p / "config.yaml").is_file())


def case_problems(case: Path) -> list[str]:
    try:
        load_gateway_config(case / "config.yaml")
    except ConfigError as exc:
        return [p.replace(f"{case}/", "") for p in exc.problems]
    return []


@pytest.mark.parametrize("case", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_wiring_case(case: Path) -> None:
    expected = (case / "expected.txt").read_text(encoding="utf-8").splitlines()
    assert case_problems(case) == [line for line in expected if line.strip()]


def test_every_check_has_a_case() -> None:
    names = {p.name for p in CASE_DIRS}
    for needed in (
        "gpio-pin-used-twice",
        "gpio-reserved-i2c",
        "output-direct",
        "serial-port-twice",
        "instrument-on-rtu-bus",
        "rtu-port-alias",
        "rtu-duplicate-address",
        "rtu-mixed-baud",
        "rtu-mixed-parity",
        "unknown-board",
        "unknown-hat",
        "rpi4-ttyama3-not-enabled",
        "rpi5-serial0-is-debug-connector",
        "rpi5-ttys0-no-mini-uart",
        "no-board-strictest-serial0",
        "no-board-output-boot-unknown",
        "output-gpio4-on-at-boot",
        "output-active-low-pulled-down",
        "output-rpi5-boot-unknown",
        "output-uln2803-bridges-isolation",
        "rs485-can-hat-gpio25",
        "waveshare-2ch-hat-pins",
        "counter-faster-than-debounce",
        "gpio-pin-twice-one-connector",
    ):
        assert needed in names


SMALL_CARRIER = """\
name: tiny
title: Tiny carrier
soc: BCM2711
logic_voltage: 3.3
gpio_max_ma: 16
header:
  - {pin: 1, kind: 3v3}
  - {pin: 2, kind: gpio, gpio: 5}
  - {pin: 3, kind: gpio, gpio: 6}
  - {pin: 4, kind: gnd}
"""


def gpio_config(pin: int) -> GatewayConfig:
    inputs = f"[{{name: door, pin: {pin}}}]"
    text = f"gateway: {{id: gw1}}\nconnectors:\n  - {{type: gpio, name: io, inputs: {inputs}}}\n"
    return parse_gateway_config(text)


def test_pin_the_board_does_not_have() -> None:
    """Carriers that bring out only a few GPIOs: a config pin outside them is named."""
    board = parse_yaml_model(SMALL_CARRIER, BoardProfile, "tiny.yaml")
    [connector] = gpio_config(17).connectors
    problems = board_pins([Placed(0, c) for c in connector.pin_claims()], board)
    assert [str(p) for p in problems] == [
        "connectors[0].inputs[0].pin: input 'door' of device 'io': Tiny carrier (tiny) has "
        "no GPIO17 on its header; free GPIOs are 5, 6"
    ]
    assert wiring_problems(None, (), gpio_config(5).connectors, board) == []


def test_port_aliases_follow_the_board() -> None:
    """/dev/serial0 and /dev/ttyAMA0 are one UART on a Pi 4; USB names stay as written."""
    rpi4 = load_board("rpi4")
    assert port_key("/dev/serial0", rpi4) == port_key("/dev/ttyAMA0", rpi4)
    assert port_key("/dev/ttyUSB0", rpi4) == "/dev/ttyUSB0"
    assert port_key("/dev/./ttyUSB0", rpi4) == "/dev/ttyUSB0"
    rpi5 = load_board("rpi5")  # on a Pi 5 serial0 is the debug connector, not pins 8/10
    assert port_key("/dev/serial0", rpi5) != port_key("/dev/ttyAMA0", rpi5)


def inputs_config(groups: list[list[int]], board: str = "rpi4") -> str:
    """One gpio connector per group of pins, one input per pin."""
    lines = [f"gateway: {{id: gw1, board: {board}}}", "connectors:"]
    for n, pins in enumerate(groups):
        inputs = ", ".join(f"{{name: in{n}_{pin}, pin: {pin}}}" for pin in pins)
        lines.append(f"  - {{type: gpio, name: io{n}, inputs: [{inputs}]}}")
    return "\n".join(lines) + "\n"


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_free_pins_pass_and_each_misuse_is_one_named_problem(data: st.DataObject) -> None:
    board = load_board(data.draw(st.sampled_from(["rpi4", "rpi5", "cm4"])))
    free = st.lists(st.sampled_from(board.free_gpios()), min_size=2, max_size=10, unique=True)
    pins = data.draw(free)
    split = data.draw(st.integers(1, len(pins) - 1))
    groups = [pins[:split], pins[split:]]
    parse_gateway_config(inputs_config(groups, board.name))  # no problem raised

    reserved = data.draw(st.sampled_from(sorted(board.taken_gpios())))
    with pytest.raises(ConfigError) as err:
        parse_gateway_config(inputs_config([*groups, [reserved]], board.name))
    assert len(err.value.problems) == 1
    assert f"GPIO{reserved} (header pin {board.header_pin(reserved)}) is reserved" in str(err.value)

    again = data.draw(st.sampled_from(pins))
    with pytest.raises(ConfigError) as err:
        parse_gateway_config(inputs_config([*groups, [again]], board.name))
    assert len(err.value.problems) == 1
    assert f"GPIO{again} (header pin {board.header_pin(again)}) is wired to two things" in str(
        err.value
    )


def test_probe_reports_a_console_on_a_bus_port(tmp_path: Path) -> None:
    """`gateway check --probe` reads the kernel command line and fails on a console there."""
    config = tmp_path / "gw.yaml"
    config.write_text(
        "gateway: {id: gw1, board: rpi4}\nconnectors:\n"
        "  - type: serial_line\n    name: scale\n    port: /dev/ttyAMA0\n"
        "    pattern: '(?P<w>[0-9.]+)'\n    tags: [{name: w}]\n"
    )
    cmdline = tmp_path / "cmdline.txt"
    cmdline.write_text("console=serial0,115200 console=tty1 root=PARTUUID=1 rootwait\n")
    args = ["check", str(config), "--probe", "--probe-timeout", "2", "--cmdline", str(cmdline)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    assert result.exit_code == 1
    assert "serial console on /dev/ttyAMA0" in result.output
    assert "remove 'console=serial0,115200'" in result.output
    cmdline.write_text("console=tty1 root=PARTUUID=1 rootwait\n")
    result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    assert "serial console" not in result.output


def test_hardware_imports_nothing_from_the_firmware() -> None:
    """The checks and the sheet read connector claims, so no import circle can come back."""
    import ast

    root = Path(__file__).parents[2] / "hardware"
    for module in root.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.startswith("gateway_image") for n in names), module.name

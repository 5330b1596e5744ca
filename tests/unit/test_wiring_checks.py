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

from factory_common.config import ConfigError, parse_yaml_model
from gateway_image.firmware.config import GatewayConfig, load_gateway_config, parse_gateway_config
from hardware.profiles import BoardProfile, load_board
from hardware.wiring_checks import board_pins, gpio_claims, port_key, wiring_problems

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
    problems = board_pins(gpio_claims(gpio_config(17)), board)
    assert [str(p) for p in problems] == [
        "connectors[0].inputs[0].pin: input 'door' of connector 'io': Tiny carrier (tiny) has "
        "no GPIO17 on its header; free GPIOs are 5, 6"
    ]
    assert wiring_problems(gpio_config(5), board) == []


def test_port_aliases_follow_the_board() -> None:
    """/dev/serial0 and /dev/ttyAMA0 are one UART on a Pi 4; USB names stay as written."""
    rpi4 = load_board("rpi4")
    assert port_key("/dev/serial0", rpi4) == port_key("/dev/ttyAMA0", rpi4)
    assert port_key("/dev/ttyUSB0", rpi4) == "/dev/ttyUSB0"
    assert port_key("/dev/./ttyUSB0", None) == "/dev/ttyUSB0"


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

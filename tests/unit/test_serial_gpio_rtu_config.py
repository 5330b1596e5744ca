"""Config of the serial line, GPIO and Modbus RTU connectors: README snippets and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory_common.config import ConfigError
from gateway_image.firmware.config import parse_gateway_config

README = (Path(__file__).parents[2] / "gateway_image/firmware/README.md").read_text()


@pytest.mark.parametrize(
    ("heading", "name"),
    [
        ("## Modbus RTU (RS-485)", "press-rs485"),
        ("## Serial line instruments", "scale-1"),
        ("## GPIO (the Pi's own pins)", "cell-io"),
    ],
)
def test_readme_snippets_are_valid_configs(heading: str, name: str) -> None:
    snippet = README.split(heading, 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    config = parse_gateway_config("gateway: {id: readme, board: rpi4}\n" + snippet, "README.md")
    assert config.connectors[0].name == name


def problems(yaml: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_gateway_config("gateway: {id: gw}\nconnectors:\n" + yaml, "gw.yaml")
    return "\n".join(info.value.problems)


def test_serial_line_tag_without_its_group_names_the_line() -> None:
    text = problems(
        "  - type: serial_line\n"
        "    name: scale\n"
        "    port: /dev/ttyUSB0\n"
        "    pattern: '(?P<weight>[0-9.]+) kg'\n"
        "    tags:\n"
        "      - name: weight\n"
        "      - name: tare\n"
    )
    assert "gw.yaml:9: connectors[0].tags[1].name: no group named 'tare'" in text


def test_serial_line_pattern_needs_named_groups_and_valid_syntax() -> None:
    base = "  - type: serial_line\n    name: s\n    port: /dev/x\n    tags: [{name: a}]\n"
    assert "needs named groups" in problems(base + "    pattern: '[0-9]+'\n")
    assert "not a valid regular expression" in problems(base + "    pattern: '(?P<a>[0-9'\n")


def test_serial_line_framing_is_terminator_or_length() -> None:
    text = problems(
        "  - type: serial_line\n    name: s\n    port: /dev/x\n    pattern: '(?P<a>.)'\n"
        "    tags: [{name: a, type: str}]\n    framing: {length: 8}\n"
    )
    assert "exactly one of `terminator`" in text


def test_rtu_unit_zero_is_refused() -> None:
    text = problems(
        "  - type: modbus_rtu\n    name: bus\n    port: /dev/ttyUSB0\n    devices:\n"
        "      - {name: a, unit: 0, tags: [{name: t, table: coil, address: 0}]}\n"
        "      - {name: b, unit: 3, tags: [{name: t, table: coil, address: 0}]}\n"
        "      - {name: c, unit: 3, tags: [{name: t, table: coil, address: 0}]}\n"
    )
    assert "connectors[0].devices[0].unit: Value error, unit 0 is broadcast" in text


def test_rtu_duplicate_unit_ids() -> None:
    text = problems(
        "  - type: modbus_rtu\n    name: bus\n    port: /dev/ttyUSB0\n    devices:\n"
        "      - {name: b, unit: 3, tags: [{name: t, table: coil, address: 0}]}\n"
        "      - {name: c, unit: 3, tags: [{name: t, table: coil, address: 0}]}\n"
    )
    assert "gw.yaml:8: connectors[0].devices[1].unit: duplicate unit id 3" in text


def test_gpio_external_resistor_needs_active_level() -> None:
    text = problems(
        "  - type: gpio\n    name: io\n    inputs:\n      - {name: door, pin: 17, pull_up: null}\n"
    )
    assert "connectors[0].inputs[0].active_high: pull_up: null" in text


def test_gpio_pin_out_of_range() -> None:
    text = problems(
        "  - type: gpio\n    name: io\n    outputs:\n      - {name: lamp, pin: 40, driver: relay}\n"
    )
    assert "connectors[0].outputs[0].pin" in text and "27" in text

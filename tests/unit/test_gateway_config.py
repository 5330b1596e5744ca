"""Gateway config validation: samples pass, each bad config names its line, key path and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory_common.config import ConfigError
from gateway_image.firmware.config import load_gateway_config, parse_gateway_config, parse_size
from gateway_image.firmware.connectors.modbus.config import (
    ByteOrder,
    DataType,
    ModbusTcpConfig,
    Table,
    normalise_byte_order,
)

# Each connector family keeps its sample config in its own folder.
CONNECTORS = Path(__file__).parents[2] / "gateway_image/firmware/connectors"
SAMPLES = sorted(CONNECTORS.glob("*/sample*.yaml"))

HEAD = """\
gateway:
  id: gw1
connectors:
  - type: modbus_tcp
    name: plc
    host: 127.0.0.1
    devices:
      - name: d1
        tags:
"""
# Line 10 is the first tag's first line.


def tag_config(*tags: str) -> str:
    return HEAD + "".join(tags)


def test_samples_exist() -> None:
    families = {p.parent.name for p in SAMPLES}
    assert families == {"modbus", "opcua", "mqtt_in", "serial_line", "gpio"}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_sample_validates(path: Path) -> None:
    config = load_gateway_config(path)
    assert config.gateway.id


def test_modbus_sample_values() -> None:
    config = load_gateway_config(CONNECTORS / "modbus/sample_tcp.yaml")
    plc = config.connectors[0]
    assert isinstance(plc, ModbusTcpConfig)
    tags = {t.name: t for t in plc.devices[0].tags}
    assert tags["setpoint"].byte_order is ByteOrder.CDAB
    assert tags["heater_on"].bit == 3
    assert tags["product_id"].count == 8
    assert tags["energy"].count == 4
    assert config.buffer.max_bytes == 256 * 1024 * 1024


def test_minimal_config_gets_defaults() -> None:
    config = parse_gateway_config(tag_config("          - {name: t, table: coil, address: 3}\n"))
    tag = config.connectors[0].devices[0].tags[0]
    assert (tag.table, tag.type, tag.byte_order) == (Table.COIL, DataType.BOOL, ByteOrder.ABCD)
    assert config.mqtt.port == 1883 and config.buffer.policy == "drop_oldest"


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("big", "ABCD"),
        ("MSW-BE", "ABCD"),
        ("abcd", "ABCD"),
        ("little", "DCBA"),
        ("LSW_LE", "DCBA"),
        ("word-swap", "CDAB"),
        ("Word Swap", "CDAB"),
        ("cdab", "CDAB"),
        ("byte-swap", "BADC"),
        ("BaDc", "BADC"),
    ],
)
def test_byte_order_aliases(alias: str, expected: str) -> None:
    assert normalise_byte_order(alias) is ByteOrder(expected)


@pytest.mark.parametrize(
    ("text", "size"),
    [(4096, 4096), ("256MiB", 256 * 2**20), ("1GB", 10**9), ("2 KiB", 2048), ("10kB", 10_000)],
)
def test_parse_size(text: object, size: int) -> None:
    assert parse_size(text) == size


T = "          - "
BAD = [
    # (id, yaml, line, substring)
    ("top-key", "gateway:\n  id: gw1\nmqttt: {}\n", 3, "mqttt: unknown key"),
    ("gateway-id", "gateway:\n  id: 'bad id'\n", 2, "gateway.id: Value error, invalid gateway id"),
    ("size", "gateway: {id: g}\nbuffer:\n  max_bytes: lots\n", 3, "cannot read size 'lots'"),
    ("policy", "gateway: {id: g}\nbuffer:\n  policy: keep\n", 3, "buffer.policy"),
    (
        "conn-type",
        "gateway: {id: g}\nconnectors:\n  - type: modbus_tpc\n    name: x\n",
        3,
        "does not match any of the expected tags: 'modbus_tcp'",
    ),
    (
        "coil-int",
        tag_config(T + "{name: t, table: coil, address: 0, type: int16}\n"),
        10,
        "connectors[0].devices[0].tags[0].type: a coil holds single bits: use type bool",
    ),
    (
        "bit-on-int",
        tag_config(T + "{name: t, table: holding, address: 0, type: int16, bit: 2}\n"),
        10,
        "tags[0].bit: bit is only for type bool",
    ),
    (
        "bit-on-coil",
        tag_config(T + "{name: t, table: coil, address: 0, bit: 2}\n"),
        10,
        "bit is only for type bool on a holding or input register",
    ),
    (
        "bit-range",
        tag_config(T + "{name: t, table: holding, address: 0, type: bool, bit: 16}\n"),
        10,
        "tags[0].bit: Input should be less than or equal to 15",
    ),
    (
        "string-length",
        tag_config(T + "{name: t, table: holding, address: 0, type: string}\n"),
        10,
        "type string needs `length`",
    ),
    (
        "min-max",
        tag_config(
            T + "name: t\n            table: holding\n            address: 0\n"
            "            type: int16\n            min: 5\n            max: 1\n"
        ),
        14,
        "tags[0].min: min (5.0) is greater than max (1.0)",
    ),
    (
        "byte-order",
        tag_config(T + "{name: t, table: holding, address: 0, type: int32, byte_order: middle}\n"),
        10,
        "unknown byte order 'middle'",
    ),
    (
        "writable-input",
        tag_config(T + "{name: t, table: input, address: 0, type: int16, writable: true}\n"),
        10,
        "input is read-only",
    ),
    (
        "dup-tag",
        tag_config(
            T + "{name: t, table: holding, address: 0, type: int16}\n",
            T + "{name: t, table: holding, address: 1, type: int16}\n",
        ),
        11,
        "tags[1].name: duplicate tag name in device 'd1': 't'",
    ),
    (
        "past-end",
        tag_config(T + "{name: t, table: holding, address: 65535, type: int32}\n"),
        10,
        "runs past register 65535",
    ),
    (
        "unit-range",
        HEAD.replace("- name: d1", "- name: d1\n        unit: 300")
        + T
        + "{name: t, table: coil, address: 0}\n",
        9,
        "devices[0].unit",
    ),
    (
        "unknown-tag-key",
        tag_config(T + "{name: t, table: coil, address: 0, scal: 2}\n"),
        10,
        "tags[0].scal: unknown key",
    ),
    (
        "scale-bool",
        tag_config(T + "{name: t, table: coil, address: 0, scale: 2}\n"),
        10,
        "scale applies only to numeric types",
    ),
    (
        "deadband",
        tag_config(
            T + "{name: t, table: holding, address: 0, type: int16, "
            "deadband: {absolute: 1, percent: 2}}\n"
        ),
        10,
        "exactly one of",
    ),
]


def _dup_connector() -> str:
    conn = tag_config(T + "{name: t, table: coil, address: 0}\n")
    second = conn.split("connectors:\n", 1)[1]
    return conn + second.replace("name: plc", "name: plc2")


BAD += [
    (
        "dup-connector",
        _dup_connector().replace("plc2", "plc"),
        12,
        "connectors[1].name: duplicate connector name 'plc'",
    ),
    (
        "dup-device-tag",
        _dup_connector(),
        17,
        "connectors[1].devices[0].tags[0].name: duplicate (device, tag) ('d1', 't')",
    ),
]


@pytest.mark.parametrize(
    ("yaml_text", "line", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_config_names_line_and_problem(
    tmp_path: Path, yaml_text: str, line: int, expected: str
) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_gateway_config(path)
    problems = info.value.problems
    hits = [p for p in problems if expected in p]
    assert hits, f"{expected!r} not in {problems}"
    assert hits[0].startswith(f"{path}:{line}: "), hits[0]


def test_readme_modbus_snippet_validates() -> None:
    readme = (Path(__file__).parents[2] / "gateway_image/firmware/README.md").read_text()
    section = readme.split("## Modbus TCP", 1)[1]
    snippet = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = parse_gateway_config("gateway: {id: readme}\n" + snippet, "README.md")
    assert config.connectors[0].name == "bath-plc"


def test_overlapping_registers_are_an_error_naming_both_tags(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(
        "gateway: {id: gw1, board: rpi4}\n"
        "connectors:\n"
        "  - type: modbus_tcp\n"
        "    name: plc\n"
        "    host: 127.0.0.1\n"
        "    devices:\n"
        "      - name: bath\n"
        "        tags:\n"
        "          - {name: temperature, table: holding, address: 100, type: float32}\n"
        "          - {name: status, table: holding, address: 101, type: uint16}\n"
        "          - {name: word, table: holding, address: 200, type: uint16}\n"
        "          - {name: word_scaled, table: holding, address: 200, type: uint16, scale: 0.1}\n"
        "          - {name: ready, table: holding, address: 200, type: bool, bit: 0}\n"
        "          - {name: fault, table: holding, address: 200, type: bool, bit: 1}\n"
        "          - {name: fault_again, table: holding, address: 200, type: bool, bit: 1}\n"
    )
    with pytest.raises(ConfigError) as refused:
        load_gateway_config(path)
    problems = refused.value.problems
    assert len(problems) == 2, problems
    assert problems[0].startswith(f"{path}:10: connectors[0].devices[0].tags[1].address:")
    assert (
        "'status' reads registers that tag 'temperature' (tags[0], holding 100-101)" in problems[0]
    )
    assert "'fault_again'" in problems[1] and "'fault' (tags[5]" in problems[1]

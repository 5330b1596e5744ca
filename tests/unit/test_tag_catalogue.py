"""The gateway's tag catalogue from its config: types after scaling, names, limits, intervals."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory_common.config import ConfigError
from factory_common.wire import TagType
from gateway_image.firmware.catalogue import catalogue
from gateway_image.firmware.config import load_gateway_config, parse_gateway_config

ROOT = Path(__file__).resolve().parents[2]


def test_catalogue_of_the_shipped_line() -> None:
    config = load_gateway_config(ROOT / "examples" / "anodizing-gateway.yaml")
    tags = {(t.device, t.tag): t for t in catalogue(config.gateway.id, config.connectors).tags}
    state = tags[("bath1", "state")]
    assert state.type is TagType.INT and state.enum["2"] == "processing"
    assert state.label == "Bath state" and state.connector == "anodizing-plc"
    assert state.interval == 1.0
    assert tags[("bath1", "pressure")].type is TagType.FLOAT  # uint16 scaled by 0.01
    assert tags[("bath1", "pressure")].unit == "kPa"
    setpoint = tags[("bath1", "temperature_setpoint")]
    assert (setpoint.writable, setpoint.min, setpoint.max, setpoint.precision) == (True, 10, 30, 1)
    assert tags[("bath1", "product_id")].type is TagType.STR
    assert tags[("bath1", "running")].type is TagType.BOOL
    assert len(tags) == sum(len(d.tags) for d in config.connectors[0].devices)  # type: ignore[union-attr]


YAML = """
gateway: {{id: gw1}}
mqtt: {{host: 127.0.0.1}}
connectors:
  - type: modbus_tcp
    name: plc
    host: 127.0.0.1
    poll_interval: 2
    devices:
      - name: d
        unit: 1
        tags:
          - {{name: slow, table: input, address: 0, type: float32, deadband: {{absolute: 1}}}}
          - {{name: alive, table: input, address: 2, type: float32, deadband: {{absolute: 1}},
             max_interval: 30}}
          - {{name: x, table: input, address: 4, type: uint16{extra}}}
"""


def test_report_by_exception_tags_promise_only_their_max_interval() -> None:
    config = parse_gateway_config(YAML.format(extra=""), "gw.yaml")
    tags = {t.tag: t for t in catalogue("gw1", config.connectors).tags}
    assert tags["slow"].interval is None  # may rightly stay silent: never stale by age
    assert tags["alive"].interval == 30.0
    assert tags["x"].interval == 2.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (", precision: -1", "precision"),
        (", enum: {zero: off}", "enum"),
    ],
)
def test_display_keys_are_validated_with_their_path(extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_gateway_config(YAML.format(extra=extra), "gw.yaml")
    assert f"connectors[0].devices[0].tags[2].{message}" in str(info.value)

"""OPC UA config checks and the pure DataValue <-> Reading conversions, without a server."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from asyncua import ua
from hypothesis import given
from hypothesis import strategies as st

from factory_common.config import ConfigError, parse_yaml_model
from factory_common.wire import Quality, TimeSource
from gateway_image.firmware.connectors.opcua.config import OpcUaConfig, OpcUaTag
from gateway_image.firmware.connectors.opcua.values import (
    datetime_ns,
    deadband_filter,
    status_quality,
    to_raw,
    to_reading,
)

BASE = """
type: opcua
name: bath-opcua
endpoint: opc.tcp://10.0.0.5:4840
devices:
  - name: bath1
    tags:
      - {name: t, node_id: "ns=2;s=Bath.Temperature"}
"""


def load(text: str) -> OpcUaConfig:
    return parse_yaml_model(text, OpcUaConfig, "gw.yaml")


@pytest.mark.parametrize(
    "node_id",
    [
        "ns=2;s=Bath.T",
        "i=2258",
        "ns=3;i=1002",
        "ns=1;s=a;b=c",
        "ns=2;b=AAEC",
        "ns=0;g=09087e75-8e5e-499b-954f-f2a9603db28a",
    ],
)
def test_node_ids_accepted(node_id: str) -> None:
    assert OpcUaTag(name="t", node_id=node_id).node_id == node_id


@pytest.mark.parametrize(
    "node_id", ["Bath.T", "ns=2;x=1", "ns=two;s=a", "ns=2;i=abc", "ns=99999;i=1", ""]
)
def test_bad_node_ids_say_how_to_write_one(node_id: str) -> None:
    text = BASE.replace('"ns=2;s=Bath.Temperature"', repr(node_id))
    with pytest.raises(ConfigError, match=r"gw.yaml:8: devices\[0\].tags\[0\].node_id") as error:
        load(text)
    assert "ns=<index>;s=<name>" in str(error.value) or "0..65535" in str(error.value)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ("endpoint: http://x", "opc.tcp://<host>:<port>"),
        ("security: {policy: Basic256Sha256}", "needs the gateway's certificate file"),
        ("security: {certificate: a.der}", "only used with policy Basic256Sha256"),
        ("username: op", "give both username and password"),
        ("security: {policy: Basic128Rsa15}", "'None' or 'Basic256Sha256'"),
    ],
)
def test_config_errors(patch: str, message: str) -> None:
    key = patch.split(":")[0]
    text = "\n".join(line for line in BASE.splitlines() if not line.startswith(f"{key}:"))
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(text + "\n" + patch + "\n")


def test_duplicate_tags_are_refused() -> None:
    text = BASE + '      - {name: t, node_id: "ns=2;i=5", mode: poll}\n'
    with pytest.raises(ConfigError, match=r"gw.yaml:9: devices\[0\].tags\[1\].name: duplicate"):
        load(text)


def test_a_polled_tag_cannot_have_a_server_deadband() -> None:
    text = BASE + '      - {name: p, node_id: "ns=2;i=5", mode: poll, deadband: {absolute: 1}}\n'
    with pytest.raises(ConfigError, match="to subscribed tags only: use mode: subscribe"):
        load(text)


def test_absolute_deadband_is_sent_in_raw_units() -> None:
    tag = OpcUaTag(name="t", node_id="i=1", scale=0.1, deadband={"absolute": 0.5})
    flt = deadband_filter(tag)
    assert flt is not None
    assert (flt.DeadbandType, flt.DeadbandValue) == (ua.DeadbandType.Absolute, 5.0)
    percent = deadband_filter(OpcUaTag(name="t", node_id="i=1", deadband={"percent": 2}))
    assert percent is not None and percent.DeadbandType == ua.DeadbandType.Percent


@pytest.mark.parametrize(
    ("code", "quality", "reason"),
    [
        (ua.StatusCodes.Good, Quality.GOOD, ""),
        (ua.StatusCodes.GoodClamped, Quality.GOOD, ""),
        (
            ua.StatusCodes.UncertainSensorNotAccurate,
            Quality.UNCERTAIN,
            "UncertainSensorNotAccurate",
        ),
        (ua.StatusCodes.BadCommunicationError, Quality.BAD, "BadCommunicationError"),
    ],
)
def test_status_codes_map_to_quality(code: int, quality: Quality, reason: str) -> None:
    assert status_quality(ua.StatusCode(code)) == (quality, reason)


def test_timestamps_prefer_the_configured_clock_then_fall_back() -> None:
    source = dt.datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=dt.UTC)
    server = source + dt.timedelta(milliseconds=40)
    value = ua.DataValue(ua.Variant(1.0), SourceTimestamp=source, ServerTimestamp=server)
    by_source = to_reading("d", OpcUaTag(name="t", node_id="i=1"), value, 7)
    by_server = to_reading("d", OpcUaTag(name="t", node_id="i=1", timestamp="server"), value, 7)
    bare = to_reading("d", OpcUaTag(name="t", node_id="i=1"), ua.DataValue(ua.Variant(1.0)), 7)
    assert (by_source.ts, by_source.src) == (datetime_ns(source), TimeSource.DEVICE)
    assert by_server.ts - by_source.ts == 40_000_000
    assert (bare.ts, bare.src) == (7, TimeSource.GATEWAY)
    # 1601-01-01 is OPC UA's "no timestamp".
    assert datetime_ns(dt.datetime(1601, 1, 1, tzinfo=dt.UTC)) is None


def test_values_are_scaled_and_unsupported_types_are_bad() -> None:
    tag = OpcUaTag(name="t", node_id="i=1", scale=0.5, offset=1)
    assert to_reading("d", tag, ua.DataValue(ua.Variant(10)), 0).value == 6.0
    text = ua.LocalizedText("Running", "en")
    assert to_reading("d", tag, ua.DataValue(ua.Variant(text)), 0).value == "Running"
    array = to_reading("d", tag, ua.DataValue(ua.Variant([1, 2])), 0)
    assert (array.quality, array.value) == (Quality.BAD, None)
    assert "unsupported value type list" in array.reason


int_types = st.sampled_from(
    [ua.VariantType.Int16, ua.VariantType.UInt16, ua.VariantType.Int32, ua.VariantType.Byte]
)


@given(int_types, st.integers(-(2**31), 2**32), st.sampled_from([1.0, 0.1, 0.01, 2.0]))
def test_integer_writes_invert_the_scale_or_refuse(
    vtype: ua.VariantType, raw: int, scale: float
) -> None:
    tag = OpcUaTag(name="t", node_id="i=1", scale=scale, writable=True)
    engineering = raw * scale
    low, high = {
        ua.VariantType.Int16: (-(2**15), 2**15 - 1),
        ua.VariantType.UInt16: (0, 2**16 - 1),
        ua.VariantType.Int32: (-(2**31), 2**31 - 1),
        ua.VariantType.Byte: (0, 255),
    }[vtype]
    if low <= raw <= high:
        assert to_raw(engineering, tag, vtype) == raw
    else:
        with pytest.raises(ValueError, match=f"outside {vtype.name}"):
            to_raw(engineering, tag, vtype)


def test_writes_check_type_and_range() -> None:
    tag = OpcUaTag(name="t", node_id="i=1", writable=True, min=0, max=10)
    assert to_raw(2.5, tag, ua.VariantType.Double) == 2.5
    assert to_raw(True, tag, ua.VariantType.Boolean) is True
    assert to_raw("R-7", tag, ua.VariantType.String) == "R-7"
    for value, vtype in [
        (11, ua.VariantType.Double),
        ("x", ua.VariantType.Double),
        (2, ua.VariantType.Boolean),
        (True, ua.VariantType.Int16),
    ]:
        with pytest.raises(ValueError):
            to_raw(value, tag, vtype)

"""MQTT-in mapping without a broker: payload timestamps, topic-level devices, counted errors."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from factory_common.config import ConfigError, parse_yaml_model
from factory_common.wire import TimeSource
from gateway_image.firmware.connectors.mqtt_in.config import MqttInConfig, MqttInSubscription
from gateway_image.firmware.connectors.mqtt_in.mapping import (
    BadTimestamp,
    CompiledSubscription,
    map_message,
    timestamp_ns,
)

# Epochs between 1973 and 2100: the range `auto` must get right in every unit.
epochs_us = st.integers(min_value=10**8 * 10**6, max_value=4_102_444_800 * 10**6)


@given(epochs_us)
def test_auto_unit_reads_every_epoch_unit(us: int) -> None:
    ns = us * 1000
    assert timestamp_ns(us // 10**6) == (us // 10**6) * 10**9
    assert timestamp_ns(us // 1000) == (us // 1000) * 10**6
    assert timestamp_ns(us) == ns
    assert timestamp_ns(ns) == ns


@given(
    st.datetimes(
        min_value=dt.datetime(1971, 1, 1),
        max_value=dt.datetime(2200, 1, 1),
        timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-5, minutes=-30))]),
    )
)
def test_iso_8601_round_trips(when: dt.datetime) -> None:
    expected = (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    assert timestamp_ns(when.isoformat()) == expected * 1000


def test_naive_iso_is_utc_and_explicit_units_win() -> None:
    assert timestamp_ns("1970-01-01T00:00:01") == 10**9
    assert timestamp_ns("1970-01-01T00:00:01Z") == 10**9
    assert timestamp_ns(5, "ms") == 5 * 10**6
    assert timestamp_ns(1.5, "s") == 1_500_000_000


@pytest.mark.parametrize("bad", ["yesterday", True, None, [1], float("nan"), {"s": 1}])
def test_bad_timestamps(bad: object) -> None:
    with pytest.raises(BadTimestamp):
        timestamp_ns(bad)


def subscription(**mapping: object) -> CompiledSubscription:
    raw = {
        "topic": "site/+/+/data",
        "mappings": [{"device": "{2}", "tag": "t", "path": "v", **mapping}],
    }
    return CompiledSubscription.of(MqttInSubscription.model_validate(raw))


def test_device_from_topic_level_scaled_value_and_device_time() -> None:
    sub = subscription(scale=0.1, offset=-40, timestamp="at")
    errors: Counter[str] = Counter()
    [reading] = map_message(
        sub, "site/hall/press7/data", {"v": 500, "at": 1_700_000_000}, 42, errors
    )
    assert (reading.device, reading.tag, reading.value) == ("press7", "t", 10.0)
    assert (reading.ts, reading.src) == (1_700_000_000 * 10**9, TimeSource.DEVICE)
    assert not errors


def test_each_problem_is_counted_by_kind() -> None:
    sub = subscription()
    errors: Counter[str] = Counter()
    assert map_message(sub, "site/hall/bad id/data", {"v": 1}, 1, errors) == []
    assert map_message(sub, "site/hall/p/data", {"w": 1}, 1, errors) == []
    assert map_message(sub, "site/hall/p/data", {"v": {"x": 1}}, 1, errors) == []
    assert errors == Counter(bad_device=1, missing_path=1, not_scalar=1)


@pytest.mark.parametrize(
    ("topic", "device", "message"),
    [
        ("a/#/b", "x", "'#' must be the whole last level"),
        ("a/b+/c", "x", "'+' must fill a whole level"),
        ("a/+/c", "{3}", "has levels 0..2 only"),
        ("a/+", "bad name", "invalid device name"),
    ],
)
def test_config_errors_name_the_key(topic: str, device: str, message: str) -> None:
    text = f"""
type: mqtt_in
name: sensors
subscriptions:
  - topic: "{topic}"
    mappings:
      - {{device: "{device}", tag: t, path: "a.b"}}
"""
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        parse_yaml_model(text, MqttInConfig, "gw.yaml")
    assert "subscriptions[0]" in str(error.value)


def test_config_rejects_a_broken_json_path_at_load() -> None:
    text = (
        "type: mqtt_in\nname: s\nsubscriptions:\n  - topic: a\n    mappings:\n"
        "      - {device: d, tag: t, path: 'x[y]'}\n"
    )
    with pytest.raises(ConfigError, match=r"gw.yaml:6: subscriptions\[0\].mappings\[0\].path"):
        parse_yaml_model(text, MqttInConfig, "gw.yaml")

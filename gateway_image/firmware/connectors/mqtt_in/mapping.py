"""Pure mapping of one MQTT message (topic, JSON payload) to Readings, and payload timestamps."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

from factory_common.errors import GatewayError
from factory_common.wire import Reading, TimeSource, WireError, check_id
from gateway_image.firmware.connectors.mqtt_in.config import (
    MqttInMapping,
    MqttInSubscription,
    topic_level,
)
from gateway_image.firmware.connectors.mqtt_in.jsonpath import JsonPath, PathMissing

# A sensor payload is a few hundred bytes; anything this large is a misrouted topic.
MAX_PAYLOAD: Final = 256 * 1024
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_UNIT_NS: Final = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


class BadTimestamp(GatewayError, ValueError):
    """A payload timestamp that is neither an epoch number nor ISO 8601."""


def _auto_unit(number: float) -> str:
    """Guess the unit of an epoch number from its size (valid for dates 1973..5138)."""
    magnitude = abs(number)
    if magnitude < 1e11:
        return "s"
    if magnitude < 1e14:
        return "ms"
    if magnitude < 1e17:
        return "us"
    return "ns"


def timestamp_ns(value: Any, unit: str = "auto") -> int:
    """Epoch s/ms/us/ns (int or float) or an ISO 8601 string -> UTC nanoseconds.

    An ISO time without an offset is taken as UTC: sensors rarely know the plant's zone.
    """
    if isinstance(value, bool):
        raise BadTimestamp(f"timestamp {value!r} is a boolean")
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise BadTimestamp(f"timestamp {value!r} is not a number")
        scale = _UNIT_NS[_auto_unit(value) if unit == "auto" else unit]
        return int(value) * scale if isinstance(value, int) else round(value * scale)
    if isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            raise BadTimestamp(f"timestamp {value!r} is not ISO 8601") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return (when - _EPOCH) // dt.timedelta(microseconds=1) * 1000
    raise BadTimestamp(f"timestamp {value!r} is neither an epoch number nor ISO 8601")


@dataclass(frozen=True)
class CompiledMapping:
    config: MqttInMapping
    path: JsonPath
    timestamp: JsonPath | None
    level: int | None  # topic level holding the device name, or None for a literal name

    @classmethod
    def of(cls, mapping: MqttInMapping) -> CompiledMapping:
        stamp = JsonPath(mapping.timestamp) if mapping.timestamp is not None else None
        return cls(mapping, JsonPath(mapping.path), stamp, topic_level(mapping.device))


@dataclass(frozen=True)
class CompiledSubscription:
    topic: str
    qos: int
    mappings: tuple[CompiledMapping, ...]

    @classmethod
    def of(cls, subscription: MqttInSubscription) -> CompiledSubscription:
        mappings = tuple(CompiledMapping.of(m) for m in subscription.mappings)
        return cls(subscription.topic, subscription.qos, mappings)


def decode_payload(payload: bytes) -> Any:
    """Parse JSON; ValueError (counted by the caller) for anything else."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return json.loads(payload)  # raises JSONDecodeError / UnicodeDecodeError: both ValueError


def _device(mapping: CompiledMapping, levels: list[str]) -> str:
    if mapping.level is None:
        return mapping.config.device
    if mapping.level >= len(levels):
        raise WireError(f"topic has no level {mapping.level}")
    return check_id(levels[mapping.level], "device name from topic")


def _value(raw: Any, mapping: MqttInMapping) -> Any:
    if raw is None or isinstance(raw, bool | str):
        return raw
    if isinstance(raw, int | float):
        if mapping.scale == 1.0 and mapping.offset == 0.0:
            return raw
        return raw * mapping.scale + mapping.offset
    raise TypeError(f"value is a JSON {type(raw).__name__}, not a number, string or bool")


def map_message(
    subscription: CompiledSubscription,
    topic: str,
    document: Any,
    received_ns: int,
    errors: Counter[str],
) -> list[Reading]:
    """Readings for every mapping of one subscription; each problem is counted by kind."""
    levels = topic.split("/")
    readings = []
    for mapping in subscription.mappings:
        try:
            device = _device(mapping, levels)
            value = _value(mapping.path.get(document), mapping.config)
        except WireError:
            errors["bad_device"] += 1
            continue
        except PathMissing:
            errors["missing_path"] += 1
            continue
        except TypeError:
            errors["not_scalar"] += 1
            continue
        ts, src = received_ns, TimeSource.GATEWAY
        if mapping.timestamp is not None:
            try:
                stamp = mapping.timestamp.get(document)
                ts, src = timestamp_ns(stamp, mapping.config.timestamp_unit), TimeSource.DEVICE
            except (PathMissing, BadTimestamp):
                # Keep the value with the gateway's receive time, and say so by the count.
                errors["bad_timestamp"] += 1
        readings.append(Reading(device=device, tag=mapping.config.tag, ts=ts, value=value, src=src))
    return readings

"""Config model of the MQTT-in connector: a broker, topic patterns, JSON paths mapped to tags."""

from __future__ import annotations

import re
from typing import Final, Literal

from pydantic import Field, field_validator, model_validator

from factory_common.config import StrictModel
from factory_common.mqtt_settings import BrokerConfig
from gateway_image.firmware.connectors.mqtt_in.jsonpath import PathSyntaxError, parse
from gateway_image.firmware.connectors.tags import Loc, check_name, duplicates, raise_at
from gateway_image.firmware.tag_index import TagInfo
from hardware.claims import OverNetwork

# "{2}": the device name is taken from topic level 2 (0-based) of each message.
_LEVEL_REF: Final = re.compile(r"^\{(\d{1,3})\}$")


def topic_level(device: str) -> int | None:
    """The topic level a device template refers to, or None for a literal device name."""
    match = _LEVEL_REF.match(device)
    return int(match.group(1)) if match else None


def check_topic_filter(value: str) -> str:
    """MQTT 3.1.1 §4.7.1: '+' fills a whole level, '#' only as the whole last level."""
    if not value or "\x00" in value:
        raise ValueError("topic must be a non-empty MQTT topic filter such as 'sensors/+/env'")
    levels = value.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ValueError(f"topic {value!r}: '#' must be the whole last level (e.g. 'a/b/#')")
        if "+" in level and level != "+":
            raise ValueError(f"topic {value!r}: '+' must fill a whole level (e.g. 'a/+/c')")
    return value


def _check_path(value: str, what: str) -> str:
    try:
        parse(value)
    except PathSyntaxError as exc:
        raise ValueError(f"{what}: {exc}") from None
    return value


class MqttInMapping(StrictModel):
    """One value picked out of each matching message's JSON payload."""

    device: str  # a literal name, or "{n}" for topic level n (0-based)
    tag: str
    path: str  # e.g. "sensors[0].temp"; "$" is the whole payload
    timestamp: str | None = None  # JSON path of the device's time; else gateway time
    # How to read a numeric timestamp; `auto` guesses s/ms/us/ns from the magnitude.
    timestamp_unit: Literal["auto", "s", "ms", "us", "ns"] = "auto"
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        return value if topic_level(value) is not None else check_name(value, "device name")

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        return check_name(value, "tag name")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return _check_path(value, "path")

    @field_validator("timestamp")
    @classmethod
    def _timestamp(cls, value: str | None) -> str | None:
        return None if value is None else _check_path(value, "timestamp")


class MqttInSubscription(StrictModel):
    topic: str
    qos: Literal[0, 1, 2] = 1
    mappings: list[MqttInMapping] = Field(min_length=1)

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        return check_topic_filter(value)

    @model_validator(mode="after")
    def _levels_exist(self) -> MqttInSubscription:
        levels = self.topic.split("/")
        open_ended = levels[-1] == "#"
        problems: list[tuple[Loc, str, object]] = []
        for i, mapping in enumerate(self.mappings):
            level = topic_level(mapping.device)
            # Behind a trailing '#' any deeper level may exist; otherwise it must be in range.
            if level is not None and not open_ended and level >= len(levels):
                message = f"topic {self.topic!r} has levels 0..{len(levels) - 1} only"
                problems.append((("mappings", i, "device"), message, mapping.device))
        problems += duplicates(
            (((m.device, m.tag), ("mappings", i, "tag")) for i, m in enumerate(self.mappings)),
            "(device, tag)",
        )
        raise_at("MqttInSubscription", problems)
        return self


class MqttInConfig(OverNetwork, BrokerConfig):
    """Sensors that publish JSON to a broker (often Wi-Fi devices on a plant's own Mosquitto)."""

    type: Literal["mqtt_in"]
    name: str
    client_id: str | None = None  # default: random, so two gateways never kick each other off
    timeout: float = Field(default=5.0, gt=0)  # seconds to connect and subscribe
    subscriptions: list[MqttInSubscription] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "connector name")

    @model_validator(mode="after")
    def _checks(self) -> MqttInConfig:
        problems: list[tuple[Loc, str, object]] = duplicates(
            ((s.topic, ("subscriptions", i, "topic")) for i, s in enumerate(self.subscriptions)),
            "topic",
        )
        if self.password is not None and self.username is None:
            problems.append((("password",), "a password needs a username", None))
        raise_at("MqttInConfig", problems)
        return self

    def reading_keys(self) -> list[tuple[tuple[str, str], Loc]]:
        """(device, tag) pairs known at load time: mappings with a literal device name."""
        return [
            ((m.device, m.tag), ("subscriptions", i, "mappings", j, "tag"))
            for i, s in enumerate(self.subscriptions)
            for j, m in enumerate(s.mappings)
            if topic_level(m.device) is None
        ]

    def tag_infos(self) -> list[TagInfo]:
        return []  # devices and tags come from topics at run time

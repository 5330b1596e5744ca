"""Every (device, tag) a connector config defines, with what a command or a filter needs to know."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["bool", "number", "str", "any"]


@dataclass(frozen=True)
class TagInfo:
    connector: str
    device: str
    tag: str
    spec: Any  # the tag's own config model (ModbusTag, OpcUaTag, GpioOutput, ...)
    writable: bool
    kind: Kind  # what a written value must be; "any": the connector decides at write time
    min: float | None = None
    max: float | None = None


def _kind(spec: Any) -> Kind:
    data_type = str(getattr(spec, "type", "") or "")
    if not data_type:
        return "any"  # e.g. OPC UA: the node's data type is only known at write time
    if data_type == "bool":
        return "bool"
    return "str" if data_type in ("string", "str") else "number"


def _device_tags(config: Any) -> Iterator[TagInfo]:
    """Connectors shaped `devices: [{name, tags: [...]}]` (Modbus TCP/RTU, OPC UA)."""
    for device in getattr(config, "devices", None) or []:
        for spec in getattr(device, "tags", None) or []:
            yield TagInfo(
                config.name,
                device.name,
                spec.name,
                spec,
                bool(getattr(spec, "writable", False)),
                _kind(spec),
                getattr(spec, "min", None),
                getattr(spec, "max", None),
            )


def _flat_tags(config: Any) -> Iterator[TagInfo]:
    """Connectors with one device and `tags: [...]` (serial line instruments)."""
    device = getattr(config, "device", None) or config.name
    for spec in config.tags:
        yield TagInfo(
            config.name,
            device,
            spec.name,
            spec,
            bool(getattr(spec, "writable", False)),
            _kind(spec),
            getattr(spec, "min", None),
            getattr(spec, "max", None),
        )


def _gpio_tags(config: Any) -> Iterator[TagInfo]:
    device = getattr(config, "device", None) or config.name
    for spec in list(config.inputs) + list(config.counters):
        yield TagInfo(config.name, device, spec.name, spec, False, "any")
    for spec in config.outputs:
        yield TagInfo(config.name, device, spec.name, spec, True, "bool")


def tags_of(config: Any) -> list[TagInfo]:
    """The tags of one `connectors:` entry (none for connectors whose tags are dynamic)."""
    if getattr(config, "type", None) == "gpio":
        return list(_gpio_tags(config))
    if getattr(config, "tags", None) is not None:
        return list(_flat_tags(config))
    return list(_device_tags(config))


def index(configs: Iterable[Any]) -> dict[tuple[str, str], TagInfo]:
    """(device, tag) -> TagInfo over several connectors (the config guarantees uniqueness)."""
    return {(t.device, t.tag): t for config in configs for t in tags_of(config)}

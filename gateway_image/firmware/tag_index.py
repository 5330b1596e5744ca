"""Every (device, tag) a connector config defines, with what a command or a filter needs to know.

Each connector config model lists its own tags (`tag_infos()`), so a connector with other
field names is never silently skipped by command checks or filtering.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

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


class HasTags(Protocol):
    def tag_infos(self) -> list[TagInfo]: ...


def kind_of(spec: Any) -> Kind:
    """From a tag model's `type` (TagBase subclasses): bool, string or a number; OPC UA: any."""
    data_type = str(getattr(spec, "type", "") or "")
    if not data_type:
        return "any"  # e.g. OPC UA: the node's data type is only known at write time
    if data_type == "bool":
        return "bool"
    return "str" if data_type in ("string", "str") else "number"


def tag_info(connector: str, device: str, spec: Any) -> TagInfo:
    """A TagBase-derived tag (name, writable, min, max, type) as a TagInfo."""
    return TagInfo(
        connector, device, spec.name, spec, spec.writable, kind_of(spec), spec.min, spec.max
    )


def device_tag_infos(connector: str, devices: Sequence[Any]) -> list[TagInfo]:
    """Connectors shaped `devices: [{name, tags: [...]}]` (Modbus TCP/RTU, OPC UA)."""
    return [tag_info(connector, d.name, spec) for d in devices for spec in d.tags]


def tags_of(config: HasTags) -> list[TagInfo]:
    """The tags of one `connectors:` entry (none for connectors whose tags are dynamic)."""
    return config.tag_infos()


def index(configs: Iterable[HasTags]) -> dict[tuple[str, str], TagInfo]:
    """(device, tag) -> TagInfo over several connectors (the config guarantees uniqueness)."""
    return {(t.device, t.tag): t for config in configs for t in tags_of(config)}

"""The gateway's tag catalogue (wire.TagCatalogue) from its config: what each tag is, so the
edge and the UI know units, types, names and write limits before the first reading.

Pure: config in, message out. Published retained on every connect (uplink/uplink.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from factory_common.wire import WIRE_VERSION, TagCatalogue, TagInfo, TagType, now_ns
from gateway_image.firmware.tag_index import TagInfo as ConfigTag
from gateway_image.firmware.tag_index import tags_of

_FLOATS = {"float32", "float64", "float"}
_TEXT = {"string", "str"}


def tag_type(spec: Any, kind: str) -> TagType:
    """What a tag's values are after scaling: an integer register stays an integer only
    when it is not scaled (a scale of 0.1 makes 215 read 21.5)."""
    data_type = str(getattr(spec, "type", "") or "")
    if kind == "bool" or data_type == "bool":
        return TagType.BOOL
    if data_type in _TEXT:
        return TagType.STR
    if data_type in _FLOATS:
        return TagType.FLOAT
    if "int" in data_type:
        scaled = getattr(spec, "scale", 1.0) != 1.0 or getattr(spec, "offset", 0.0) != 0.0
        return TagType.FLOAT if scaled else TagType.INT
    if spec.__class__.__name__ == "GpioCounter":
        return TagType.INT
    return TagType.ANY


def _interval(connector: Any, spec: Any) -> float | None:
    """Seconds between readings the gateway promises for this tag, None when none."""
    max_interval = getattr(spec, "max_interval", None)
    if max_interval is not None:
        return float(max_interval)
    by_exception = getattr(spec, "deadband", None) is not None or getattr(
        spec, "min_interval", None
    )
    poll = getattr(connector, "poll_interval", None)
    if by_exception or getattr(spec, "mode", "poll") != "poll":
        return None  # reported on change only: silence is no sign of trouble
    report = getattr(spec, "report_interval", None)  # GPIO counters
    every = report if report is not None else poll
    return float(every) if every else None


def tag_info(connector: Any, tag: ConfigTag) -> TagInfo:
    spec = tag.spec
    return TagInfo(
        device=tag.device,
        tag=tag.tag,
        type=tag_type(spec, tag.kind),
        unit=str(getattr(spec, "unit", "") or ""),
        label=str(getattr(spec, "label", "") or ""),
        description=str(getattr(spec, "description", "") or ""),
        writable=tag.writable,
        min=tag.min,
        max=tag.max,
        enum={str(k): v for k, v in (getattr(spec, "enum", None) or {}).items()},
        precision=getattr(spec, "precision", None),
        connector=tag.connector,
        interval=_interval(connector, spec),
    )


def catalogue(gateway: str, connectors: Iterable[Any], ts: int | None = None) -> TagCatalogue:
    """Every tag of every connector of one gateway, in config order."""
    tags = [tag_info(c, t) for c in connectors for t in tags_of(c)]
    return TagCatalogue(v=WIRE_VERSION, gateway=gateway, ts=ts or now_ns(), tags=tags)

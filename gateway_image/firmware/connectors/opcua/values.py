"""Pure OPC UA pieces: DataValue to Reading (quality, time), writes to raw, item requests."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Final

from asyncua import ua

from factory_common.wire import Quality, Reading, TimeSource, Value
from gateway_image.firmware.connectors.opcua.config import OpcUaTag

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# OPC UA Part 6 §5.2.2.5: a DateTime of 0 (1601-01-01) means "no timestamp".
_NO_TIME_BEFORE: Final = dt.datetime(1601, 1, 2, tzinfo=dt.UTC)

_INT_RANGES: Final = {
    ua.VariantType.SByte: (-(2**7), 2**7 - 1),
    ua.VariantType.Byte: (0, 2**8 - 1),
    ua.VariantType.Int16: (-(2**15), 2**15 - 1),
    ua.VariantType.UInt16: (0, 2**16 - 1),
    ua.VariantType.Int32: (-(2**31), 2**31 - 1),
    ua.VariantType.UInt32: (0, 2**32 - 1),
    ua.VariantType.Int64: (-(2**63), 2**63 - 1),
    ua.VariantType.UInt64: (0, 2**64 - 1),
}
_FLOATS: Final = frozenset({ua.VariantType.Float, ua.VariantType.Double})


def datetime_ns(when: dt.datetime | None) -> int | None:
    """UTC nanoseconds of an OPC UA DateTime, None when the server sent 'no timestamp'."""
    if when is None:
        return None
    if when.tzinfo is None:  # asyncua decodes UTC; be explicit for naive values
        when = when.replace(tzinfo=dt.UTC)
    if when < _NO_TIME_BEFORE:
        return None
    return (when - _EPOCH) // dt.timedelta(microseconds=1) * 1000


def status_quality(status: ua.StatusCode | None) -> tuple[Quality, str]:
    """Part 4 §7.39 severity bits: Good -> good; Uncertain* -> uncertain; Bad* -> bad."""
    if status is None or status.is_good():
        return Quality.GOOD, ""
    quality = Quality.UNCERTAIN if status.is_uncertain() else Quality.BAD
    return quality, status.name or f"0x{status.value:08X}"


def scale_value(raw: object, tag: OpcUaTag) -> tuple[Value, str]:
    """A variant's Python value as a wire Value; the string is a problem (empty when fine)."""
    if raw is None or isinstance(raw, str):
        return raw, ""
    if isinstance(raw, bool):
        return raw, ""
    if isinstance(raw, Enum):
        raw = raw.value
    if isinstance(raw, int | float):
        if tag.scale == 1.0 and tag.offset == 0.0:
            return raw, ""
        return raw * tag.scale + tag.offset, ""
    if isinstance(raw, ua.LocalizedText):
        return raw.Text, ""
    if isinstance(raw, dt.datetime):
        return raw.isoformat(), ""
    if isinstance(raw, bytes):
        return raw.hex(), ""
    return None, f"unsupported value type {type(raw).__name__}: map a scalar node instead"


def to_reading(device: str, tag: OpcUaTag, value: ua.DataValue, gateway_ns: int) -> Reading:
    """One DataValue (from a notification or a read) as one Reading."""
    quality, reason = status_quality(value.StatusCode)
    source = datetime_ns(value.SourceTimestamp)
    server = datetime_ns(value.ServerTimestamp)
    ts = (source or server) if tag.timestamp == "source" else (server or source)
    src = TimeSource.DEVICE
    if ts is None:  # the server gave neither: fall back to the gateway's clock, and say so
        ts, src = gateway_ns, TimeSource.GATEWAY
    raw = value.Value.Value if value.Value is not None else None
    converted, problem = scale_value(raw, tag) if quality is not Quality.BAD else (None, "")
    if problem:
        quality, reason, converted = Quality.BAD, problem, None
    return Reading(device, tag.name, ts, converted, quality, reason, src)


def to_raw(value: Value, tag: OpcUaTag, vtype: ua.VariantType) -> object:
    """An engineering value to the node's own type; ValueError says why it does not fit."""
    if vtype is ua.VariantType.Boolean:
        if isinstance(value, bool) or value in (0, 1):
            return bool(value)
        raise ValueError(f"node is Boolean; got {value!r}")
    if vtype is ua.VariantType.String:
        if isinstance(value, str):
            return value
        raise ValueError(f"node is String; got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"node is {vtype.name}; got {value!r}")
    if (tag.min is not None and value < tag.min) or (tag.max is not None and value > tag.max):
        raise ValueError(f"{value!r} is outside the tag's range {tag.min}..{tag.max}")
    raw = (value - tag.offset) / tag.scale
    if vtype in _FLOATS:
        return float(raw)
    limits = _INT_RANGES.get(vtype)
    if limits is None:
        raise ValueError(f"writing nodes of type {vtype.name} is not supported")
    whole = round(raw)
    if not limits[0] <= whole <= limits[1]:
        raise ValueError(f"{value!r} is {whole} raw, outside {vtype.name} {limits[0]}..{limits[1]}")
    return whole


def deadband_filter(tag: OpcUaTag) -> ua.DataChangeFilter | None:
    """Part 4 §7.22.2 DataChangeFilter; an absolute deadband is converted to raw units."""
    if tag.deadband is None:
        return None
    if tag.deadband.absolute is not None:
        kind, amount = ua.DeadbandType.Absolute, tag.deadband.absolute / abs(tag.scale)
    else:
        kind, amount = ua.DeadbandType.Percent, float(tag.deadband.percent or 0.0)
    return ua.DataChangeFilter(
        Trigger=ua.DataChangeTrigger.StatusValue, DeadbandType=kind, DeadbandValue=amount
    )


def item_request(
    handle: int, node_id: ua.NodeId, tag: OpcUaTag, with_filter: bool
) -> ua.MonitoredItemCreateRequest:
    """One monitored item of the Value attribute, as the tag's config asks for it."""
    interval = tag.sampling_interval
    params = ua.MonitoringParameters(
        ClientHandle=handle,
        # -1: sample at the subscription's publishing interval (Part 4 §5.12.1.2).
        SamplingInterval=-1.0 if interval is None else interval * 1000.0,
        QueueSize=tag.queue_size,
        DiscardOldest=True,
        Filter=deadband_filter(tag) if with_filter else None,
    )
    return ua.MonitoredItemCreateRequest(
        ItemToMonitor=ua.ReadValueId(NodeId=node_id, AttributeId=ua.AttributeIds.Value),
        MonitoringMode=ua.MonitoringMode.Reporting,
        RequestedParameters=params,
    )

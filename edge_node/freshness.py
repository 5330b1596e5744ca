"""Whether a tag's newest value is still current: pure rules over its metadata and its gateway's
last status, so no screen shows a frozen value as good.

A value is stale when its gateway's last word is the last will (offline), when the connector
(or the device inside it) that reads it reports `down`, or when it is older than its gateway
promised (3 intervals plus a 5 s allowance for batching and the edge's commit). A stale value
that arrived good is served as `uncertain`, the OPC UA "last usable value" idea: the number is
what the device said last, not what it is now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge_node.tagmeta import TagMeta
from factory_common.wire import ConnectorHealth, GatewayStatus

LATE_FACTOR = 3
LATE_ALLOWANCE_NS = 5_000_000_000


@dataclass(frozen=True, slots=True)
class Freshness:
    stale: bool
    why: str = ""


FRESH = Freshness(False)


def _connector_of(meta: TagMeta, connectors: Sequence[ConnectorHealth]) -> ConnectorHealth | None:
    for c in connectors:
        if c.name == meta.connector or (not meta.connector and meta.device in c.devices):
            return c
    return None


def _connector_down(meta: TagMeta, status: GatewayStatus) -> str:
    connector = _connector_of(meta, status.connectors)
    if connector is None:
        return ""
    device = connector.devices.get(meta.device)
    if connector.state == "down":
        error = connector.last_error or (device.last_error if device else "")
        return f"connector {connector.name} down" + (f": {error}" if error else "")
    if device is not None and device.state == "down":
        return f"device {meta.device} down" + (
            f": {device.last_error}" if device.last_error else ""
        )
    return ""


def judge(meta: TagMeta | None, ts_ns: int, status: GatewayStatus | None, now_ns: int) -> Freshness:
    """Is the value of `meta` taken at `ts_ns` still current at `now_ns`?"""
    if status is not None and not status.online:
        return Freshness(True, "gateway offline")
    if meta is None:
        return FRESH
    if status is not None:
        down = _connector_down(meta, status)
        if down:
            return Freshness(True, down)
    if meta.interval is not None:
        allowed = int(meta.interval * 1e9) * LATE_FACTOR + LATE_ALLOWANCE_NS
        if now_ns - ts_ns > allowed:
            return Freshness(True, f"no reading for {(now_ns - ts_ns) / 1e9:.0f} s")
    return FRESH

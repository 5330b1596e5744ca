"""Response shapes of the HTTP API, for the OpenAPI description (responses are built directly)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

Value = bool | int | float | str | None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    edge: str
    mqtt_connected: bool
    uptime_s: float


class Stats(BaseModel):
    ingest: dict[str, Any]
    store: dict[str, int]


class Gateway(BaseModel):
    gateway: str
    online: bool
    ts: int
    received_at: int
    status: dict[str, Any]  # the wire GatewayStatus as sent


class Tag(BaseModel):
    name: str
    gateway: str
    device: str
    tag: str
    kind: Literal["num", "bool", "str"]
    unit: str | None = None


class Latest(BaseModel):
    name: str
    t: int
    ts_ns: int
    value: Value
    quality: Literal["good", "uncertain", "bad"]
    reason: str = ""


class SeriesHistory(BaseModel):
    """mode raw: t, v, q (quality codes 0 good 1 uncertain 2 bad; null when all good).
    mode minmax: t (bucket start), min, max, mean, count. mode last: t, v (strings)."""

    name: str
    kind: str
    unit: str | None = None
    mode: Literal["raw", "minmax", "last"]
    t: list[int]
    v: list[Value] | None = None
    q: list[int] | None = None
    min: list[float | None] | None = None
    max: list[float | None] | None = None
    mean: list[float | None] | None = None
    count: list[int] | None = None


class History(BaseModel):
    start: int
    end: int
    points: int | None
    series: list[SeriesHistory]

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
    timezone: str = "UTC"  # the plant's IANA time zone


class Stats(BaseModel):
    ingest: dict[str, Any]
    store: dict[str, int]


class Gateway(BaseModel):
    gateway: str
    online: bool
    ts: int
    received_at: int
    last_heard: int | None = None  # ms: last batch or online status from the gateway itself
    status: dict[str, Any]  # the wire GatewayStatus as sent
    rejected: dict[str, int] = {}  # this edge's refusals of the gateway's messages, by reason


class Tag(BaseModel):
    """A tag: its gateway's catalogue merged with master data (master data wins)."""

    name: str
    gateway: str
    device: str
    tag: str
    kind: Literal["num", "bool", "str"]
    type: Literal["float", "int", "bool", "str", "any"]
    label: str
    unit: str | None = None
    description: str | None = None
    writable: bool = False
    min: float | None = None
    max: float | None = None
    enum: dict[str, str] = {}  # value -> name
    precision: int | None = None
    connector: str = ""
    interval: float | None = None  # s between readings the gateway promises
    equipment_id: str | None = None
    has_data: bool = False  # False: declared, no reading yet


class Latest(BaseModel):
    name: str
    t: int
    ts_ns: int
    value: Value
    text: str | None = None  # the enumeration's name for value
    quality: Literal["good", "uncertain", "bad"]  # uncertain when stale
    reason: str = ""
    stale: bool = False
    stale_reason: str = ""
    age_s: float
    unit: str | None = None
    label: str


class SeriesHistory(BaseModel):
    """mode raw: t, v, q (quality codes 0 good 1 uncertain 2 bad; null when all good).
    mode minmax: t (bucket start), min, max, mean, count. mode last: t, v (strings).
    The tag's write limits are in /api/tags, not here."""

    name: str
    kind: str
    unit: str | None = None
    label: str | None = None
    type: str | None = None
    enum: dict[str, str] | None = None
    precision: int | None = None
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

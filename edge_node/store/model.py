"""Plain result types of the store's queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from factory_common.wire import Quality

HOUR_NS = 3_600_000_000_000
QUALITY_CODE = {Quality.GOOD: 0, Quality.UNCERTAIN: 1, Quality.BAD: 2}
QUALITY_NAME = {code: quality.value for quality, code in QUALITY_CODE.items()}

Values = np.ndarray | list[Any]


def series_name(gateway: str, device: str, tag: str) -> str:
    """The one name a series has in the API and UI: gateway/device/tag."""
    return f"{gateway}/{device}/{tag}"


def value_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "str"
    return "num"


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    id: int
    gateway: str
    device: str
    tag: str
    kind: str
    unit: str | None = None

    @property
    def name(self) -> str:
        return series_name(self.gateway, self.device, self.tag)


@dataclass(frozen=True, slots=True)
class LatestValue:
    series: SeriesInfo
    ts: int
    value: Any
    quality: str
    reason: str = ""


@dataclass(slots=True)
class SeriesData:
    """Raw history of one series: ts int64 ns (sorted), values, quality codes (uint8).

    values is a float64 array for numbers (NaN where a reading had no value), a bool array
    for booleans, and a list for strings or series whose values changed type.
    """

    series: SeriesInfo
    ts: np.ndarray
    values: Values
    quality: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))

    def __len__(self) -> int:
        return len(self.ts)


@dataclass(frozen=True, slots=True)
class WriteResult:
    stored: int
    duplicates: int
    statuses: int = 0


@dataclass(frozen=True, slots=True)
class GatewayRecord:
    gateway: str
    online: bool
    ts: int
    received_at: int
    payload: bytes

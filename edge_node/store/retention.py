"""How long each tier of the store keeps data: raw readings, minute rollups, hour rollups.

Durations in the edge config are a number of seconds or a number with a unit (`90m`, `36h`,
`30d`, `8w`, `5y`; a year is 365 days); `null` keeps a tier forever. Compaction (every
`store.compact_interval`) enforces them, so the periodic task that packs data also ages it.
"""

from __future__ import annotations

import re

from pydantic import field_validator, model_validator

from factory_common.config import StrictModel

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdwy]?)\s*$")


def parse_duration(value: object) -> float | None:
    """Seconds from 3600, '3600', '60m', '30d', ...; None stays None (forever)."""
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        seconds = None if value is None else float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ValueError(
                f"{value!r} is not a duration: write seconds or a number with s, m, h, d, w or y"
                " (e.g. 30d), or null for forever"
            )
        seconds = float(match[1]) * _UNITS[match[2] or "s"]
    if seconds is not None and seconds <= 0:
        raise ValueError(f"a retention must be positive (got {value!r}); null keeps forever")
    return seconds


class RetentionConfig(StrictModel):
    """The `store.retention` section. Coarser tiers must keep at least as long as finer ones:
    a chart of old data falls back from raw to minutes to hours."""

    raw: float | None = 30 * 86400
    minute: float | None = 400 * 86400
    hour: float | None = None

    @field_validator("raw", "minute", "hour", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float | None:
        return parse_duration(value)

    @model_validator(mode="after")
    def _ordered(self) -> RetentionConfig:
        forever = float("inf")
        tiers = (self.raw, self.minute, self.hour)
        raw, minute, hour = (forever if v is None else v for v in tiers)
        if not raw <= minute <= hour:
            raise ValueError("retention must not shrink from raw to minute to hour")
        return self

    def cutoffs(self, now_ns: int) -> dict[str, int]:
        """tier -> ns before which its data goes (tiers kept forever are absent)."""
        kept = {"raw": self.raw, "minute": self.minute, "hour": self.hour}
        return {tier: now_ns - int(s * 1e9) for tier, s in kept.items() if s is not None}

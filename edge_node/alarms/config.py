"""The edge config's `monitoring:` section: where alarms live and fallback control limits."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from factory_common.config import StrictModel


class LimitsEntry(StrictModel):
    """Control and spec limits of one series, for a node without master data (or tests)."""

    mean: float | None = None
    sigma: float | None = Field(default=None, gt=0)
    lcl: float | None = None
    ucl: float | None = None
    lsl: float | None = None
    usl: float | None = None

    @model_validator(mode="after")
    def _order(self) -> LimitsEntry:
        for low, high in (("lcl", "ucl"), ("lsl", "usl")):
            a, b = getattr(self, low), getattr(self, high)
            if a is not None and b is not None and a >= b:
                raise ValueError(f"{low} ({a}) must be below {high} ({b})")
        return self


class MonitoringConfig(StrictModel):
    enabled: bool = True
    # Alarms, rule firings and command outcomes (relative to --data-dir).
    db: Path = Path("alarms.sqlite")
    queue_depth: int = Field(default=1000, ge=1)  # flushes waiting for monitoring and rules
    # Used for series master data has no limits for: series name (gateway/device/tag) -> limits.
    limits: dict[str, LimitsEntry] = {}

    def resolve_db(self, data_dir: Path) -> Path:
        return self.db if self.db.is_absolute() else data_dir / self.db

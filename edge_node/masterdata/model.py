"""Plain types of the edge's master data: what rules, SPC, the API and the UI read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Equipment:
    id: str
    name: str
    line: str = ""
    kind: str = ""
    description: str | None = None


@dataclass(frozen=True, slots=True)
class TagInfo:
    gateway: str
    device: str
    tag: str
    equipment_id: str | None = None
    unit: str | None = None
    description: str | None = None

    @property
    def name(self) -> str:
        """gateway/device/tag: the series name used by the store, the API and the UI."""
        return f"{self.gateway}/{self.device}/{self.tag}"


@dataclass(frozen=True, slots=True)
class ControlLimits:
    """Limits the cloud computed for one series; `version` counts revisions of these limits."""

    series: str
    lsl: float | None = None
    usl: float | None = None
    lcl: float | None = None
    ucl: float | None = None
    mean: float | None = None
    sigma: float | None = None
    version: int = 1
    computed_at: str | None = None


@dataclass(frozen=True, slots=True)
class RecipeParameter:
    name: str
    value: float | None = None
    text_value: str | None = None
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Recipe:
    id: str
    name: str
    description: str | None = None
    parameters: dict[str, RecipeParameter] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: for the cloud outbox (defect records) and commands to gateways."""
        return {
            "id": self.id,
            "name": self.name,
            "parameters": {
                p.name: {"value": p.value if p.text_value is None else p.text_value, "unit": p.unit}
                for p in self.parameters.values()
            },
        }


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    name: str = ""
    recipe_id: str | None = None


@dataclass(frozen=True, slots=True)
class Pull:
    """What one sync down fetched: rows changed after the edge's version, up to `version`.

    rows: per table, tuples in TableSpec.all_columns order. deletions: (table, key values).
    full: the edge's copy is replaced (first sync, or the cloud's counter went backwards)."""

    version: int
    rows: dict[str, list[tuple[Any, ...]]]
    deletions: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    full: bool = False


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """What one applied pull changed, for listeners (SPC reloads limits of these series)."""

    version: int
    rows: dict[str, int]
    deleted: int
    limits_changed: frozenset[str]
    full: bool = False

    @property
    def empty(self) -> bool:
        return not any(self.rows.values()) and not self.deleted and not self.full


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """For the UI and /api/sync: times are epoch ms (UTC), None when it never happened."""

    version: int = 0
    last_attempt: int | None = None
    last_success: int | None = None
    last_error: str | None = None
    last_error_at: int | None = None
    consecutive_failures: int = 0
    last_changes: int = 0

    @property
    def ok(self) -> bool:
        return self.last_error is None

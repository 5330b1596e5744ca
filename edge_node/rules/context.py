"""What rule expressions can look up: latest values, control limits, recipes, and helpers.

Series names in `latest('...')` resolve against the triggering series: `'tag'` is a tag of
the same device, `'device/tag'` of the same gateway, `'gateway/device/tag'` is absolute.
Every lookup a firing made is recorded in its stored inputs.
"""

from __future__ import annotations

from typing import Any

from edge_node.alarms.monitor import LimitsSource
from factory_common.wire import now_ns


def coalesce(*values: Any) -> Any:
    """The first argument that is not None (and not an empty string)."""
    return next((v for v in values if v is not None and v != ""), None)


_BUILTINS = {
    "coalesce": coalesce, "now": now_ns, "abs": abs, "min": min, "max": max, "round": round,
    "int": int, "float": float, "str": str, "len": len, "bool": bool,
}  # fmt: skip


def resolve(name: str, series: str) -> str:
    gateway, _, rest = series.partition("/")
    device = rest.partition("/")[0]
    depth = name.count("/")
    if depth == 0:
        return f"{gateway}/{device}/{name}"
    if depth == 1:
        return f"{gateway}/{name}"
    return name


class Lookups:
    def __init__(self, limits: LimitsSource | None, masterdata: Any) -> None:
        self.limits = limits
        self.masterdata = masterdata
        self.latest: dict[str, tuple[int, Any]] = {}  # series name -> (ts, value)

    def functions(
        self, series: str, seen: dict[str, Any], snapshot: dict[str, tuple[int, Any]] | None = None
    ) -> dict[str, Any]:
        """The lookup functions for one evaluation; `seen` collects what they returned.
        Actions run later than their trigger: they get a `snapshot` of the latest values, so
        they see the values the conditions saw, not ones that arrived since."""
        values = self.latest if snapshot is None else snapshot

        def latest(name: str) -> Any:
            full = resolve(name, series)
            value = values.get(full, (None, None))[1]
            seen[f"latest({full})"] = value
            return value

        def latest_ts(name: str) -> int | None:
            full = resolve(name, series)
            return values.get(full, (None, None))[0]

        def limits(name: str | None = None) -> Any:
            full = resolve(name, series) if name else series
            found = self.limits.limits(full) if self.limits is not None else None
            seen[f"limits({full})"] = found
            return found

        def recipe(product_id: Any) -> Any:
            lookup = getattr(self.masterdata, "recipe_for_product", None)
            found = lookup(str(product_id)) if lookup is not None and product_id else None
            seen[f"recipe({product_id})"] = found
            return found

        def recipe_by_id(recipe_id: Any) -> Any:
            lookup = getattr(self.masterdata, "recipe", None)
            found = lookup(str(recipe_id)) if lookup is not None and recipe_id is not None else None
            seen[f"recipe_by_id({recipe_id})"] = found
            return found

        return _BUILTINS | {
            "latest": latest, "latest_ts": latest_ts, "limits": limits, "recipe": recipe,
            "recipe_by_id": recipe_by_id,
        }  # fmt: skip

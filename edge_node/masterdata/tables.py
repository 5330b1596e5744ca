"""The master-data tables synced down: columns and keys, the same on the cloud and the edge."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableSpec:
    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...]  # key columns first; `retired` and `version` last
    sqlite_types: dict[str, str]

    @property
    def all_columns(self) -> tuple[str, ...]:
        return (*self.columns, "retired", "version")

    def sqlite_ddl(self) -> str:
        cols = ", ".join(f"{c} {self.sqlite_types.get(c, 'TEXT')}" for c in self.columns)
        return (
            f"CREATE TABLE IF NOT EXISTS {self.name} ({cols}, retired INTEGER NOT NULL DEFAULT 0,"
            f" version INTEGER NOT NULL, PRIMARY KEY ({', '.join(self.key)}))"
        )


_REAL = "REAL"
TABLES: tuple[TableSpec, ...] = (
    TableSpec("equipment", ("id",), ("id", "name", "line", "kind", "description"), {}),
    TableSpec(
        "tags",
        ("gateway", "device", "tag"),
        ("gateway", "device", "tag", "equipment_id", "unit", "description"),
        {},
    ),
    TableSpec("recipes", ("id",), ("id", "name", "description"), {}),
    TableSpec(
        "recipe_parameters",
        ("recipe_id", "name"),
        ("recipe_id", "name", "value", "text_value", "unit"),
        {"value": _REAL},
    ),
    TableSpec(
        "control_limits",
        ("gateway", "device", "tag"),
        (
            "gateway",
            "device",
            "tag",
            "lsl",
            "usl",
            "lcl",
            "ucl",
            "mean",
            "sigma",
            "limits_version",
            "computed_at",
        ),
        {c: _REAL for c in ("lsl", "usl", "lcl", "ucl", "mean", "sigma")}
        | {"limits_version": "INTEGER", "computed_at": "TEXT"},
    ),
    TableSpec("products", ("id",), ("id", "name", "recipe_id"), {}),
)
BY_NAME = {spec.name: spec for spec in TABLES}

"""How edge records become rows of the cloud's push tables, and the idempotent upserts.

Outbox payloads (dicts; the whole payload is also stored as JSON) may carry:
- alarm: series, rule, severity, state, message, raised_at, acknowledged_at, acknowledged_by,
  cleared_at
- defect: ts, product_id, recipe_id (or recipe: {id: ...}), series, value, rule
- event: kind (the event's name), series, ts, value
Times: epoch ms (or s / ns, told apart by size) or ISO 8601 text; naive text means UTC.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from edge_node.cloud.collect import ChangeRow, MinuteRow
from edge_node.cloud.outbox import OutboxRecord

_EPOCH = dt.datetime(1970, 1, 1)

COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # table: (key columns, other columns)
    "minute_summaries": (
        ("edge_id", "series", "minute"),
        ("n", "min_value", "max_value", "sum_value", "mean_value"),
    ),
    "events": (("edge_id", "event_key"), ("kind", "series", "ts", "value", "payload")),
    "alarms": (
        ("edge_id", "alarm_key"),
        (
            "series",
            "rule",
            "severity",
            "state",
            "message",
            "raised_at",
            "acknowledged_at",
            "acknowledged_by",
            "cleared_at",
            "payload",
        ),
    ),
    "defects": (
        ("edge_id", "defect_key"),
        ("ts", "product_id", "recipe_id", "series", "value", "rule", "payload"),
    ),
}
OUTBOX_TABLES = {"alarm": "alarms", "defect": "defects", "event": "events"}


def upsert_sql(table: str) -> str:
    """INSERT ... ON DUPLICATE KEY UPDATE every non-key column: a re-push leaves one row.
    VALUES(col) rather than an alias: MariaDB has no row alias, MySQL 8 still accepts it."""
    key, rest = COLUMNS[table]
    columns = (*key, *rest)
    updates = ", ".join(f"{c} = VALUES({c})" for c in rest)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
        f" ON DUPLICATE KEY UPDATE {updates}"
    )


def from_ns(ns: int) -> dt.datetime:
    """UTC naive datetime for DATETIME columns (edge sessions run in UTC)."""
    return _EPOCH + dt.timedelta(microseconds=ns // 1000)


def parse_time(value: Any) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        magnitude = abs(value)
        scale = 1 if magnitude > 1e16 else 1_000_000 if magnitude > 1e11 else 1_000_000_000
        return from_ns(int(value * scale))
    if isinstance(value, str):
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
        return moment
    raise ValueError(f"not a time: {value!r} (give epoch ms or ISO 8601)")


def minute_row(edge_id: str, r: MinuteRow) -> tuple[Any, ...]:
    return (edge_id, r.series, from_ns(r.minute), r.n, r.min, r.max, r.sum, r.sum / r.n)


def change_row(edge_id: str, r: ChangeRow) -> tuple[Any, ...]:
    key = f"{r.series}@{r.ts}"
    return (edge_id, key, "change", r.series, from_ns(r.ts), r.value, None)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def outbox_row(edge_id: str, record: OutboxRecord) -> tuple[Any, ...]:
    p = record.payload
    payload = json.dumps(p, default=str)
    added = from_ns(record.added_at * 1_000_000)
    if record.kind == "alarm":
        times = [parse_time(p.get(k)) for k in ("raised_at", "acknowledged_at")]
        return (
            edge_id, record.key, p.get("series"), p.get("rule"), p.get("severity"),
            p.get("state"), p.get("message"), times[0] or added, times[1],
            p.get("acknowledged_by"), parse_time(p.get("cleared_at")), payload,
        )  # fmt: skip
    if record.kind == "defect":
        recipe = p.get("recipe_id")
        if recipe is None and isinstance(p.get("recipe"), dict):
            recipe = p["recipe"].get("id")
        return (
            edge_id, record.key, parse_time(p.get("ts")) or added, p.get("product_id"),
            recipe, p.get("series"), _number(p.get("value")), p.get("rule"), payload,
        )  # fmt: skip
    value = p.get("value")
    return (
        edge_id, record.key, str(p.get("kind") or "event"), p.get("series"),
        parse_time(p.get("ts")) or added, None if value is None else str(value), payload,
    )  # fmt: skip

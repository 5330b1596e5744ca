"""A batch of gateways from a CSV, and which steps each still needs (pure: no I/O here).

The CSV is what a line's commissioning plan already holds: one row per gateway with its id,
the serial number on its case, site and line. A re-run plans only what is missing or stale:
a step is done when its output exists and was made from the same inputs (a digest stored
beside it), so editing one gateway's config rebuilds that card alone.
"""

from __future__ import annotations

import csv
import enum
import io
from dataclasses import dataclass

from factory_common.errors import FleetError
from factory_common.wire import WireError, check_id

REQUIRED_COLUMNS = ("gateway_id",)
KNOWN_COLUMNS = ("gateway_id", "serial", "site", "line", "board", "labels")


class BatchError(FleetError, ValueError):
    """The CSV cannot be used; every problem names its line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{source}:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class Row:
    line: int
    gateway_id: str
    serial: str = ""
    site: str = ""
    production_line: str = ""
    board: str = ""
    labels: tuple[tuple[str, str], ...] = ()


class Step(enum.Enum):
    INVENTORY = "inventory entry"
    IDENTITY = "certificate"
    CARD = "card"
    SHEET = "wiring sheet"


def parse_csv(text: str, source: str = "gateways.csv") -> list[Row]:
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in reader.fieldnames or []]
    problems = [f"{source}:1: missing column {c!r}" for c in REQUIRED_COLUMNS if c not in columns]
    problems += [
        f"{source}:1: unknown column {c!r} (known: {', '.join(KNOWN_COLUMNS)})"
        for c in columns
        if c not in KNOWN_COLUMNS
    ]
    if problems:
        raise BatchError(source, problems)
    rows: list[Row] = []
    first_line: dict[str, int] = {}
    for record in reader:
        number = reader.line_num  # DictReader skips blank lines: count the file's own
        values = {k.strip(): (v or "").strip() for k, v in record.items() if k}
        if not any(values.values()):
            continue
        gateway = values["gateway_id"]
        try:
            check_id(gateway)
        except WireError as exc:
            problems.append(f"{source}:{number}: {exc}")
            continue
        if gateway in first_line:
            problems.append(f"{source}:{number}: {gateway} already on line {first_line[gateway]}")
            continue
        first_line[gateway] = number
        try:
            labels = _labels(values.get("labels", ""))
        except ValueError as exc:
            problems.append(f"{source}:{number}: labels: {exc}")
            continue
        rows.append(
            Row(
                number,
                gateway,
                values.get("serial", ""),
                values.get("site", ""),
                values.get("line", ""),
                values.get("board", ""),
                labels,
            )
        )
    if problems:
        raise BatchError(source, problems)
    if not rows:
        raise BatchError(source, [f"{source}: no gateways listed"])
    return rows


def _labels(text: str) -> tuple[tuple[str, str], ...]:
    """`zone=A;cabinet=3` -> (("cabinet", "3"), ("zone", "A"))."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected key=value pairs separated by ';', got {item!r}")
        pairs.append((key.strip(), value.strip()))
    return tuple(sorted(pairs))


@dataclass(frozen=True)
class Existing:
    """What is already on disk for one gateway (gathered by the shell)."""

    in_inventory: bool
    has_identity: bool
    card_digest: str | None  # digest the card (image or flash set) was made from, if any
    sheet_digest: str | None


def plan(row: Row, existing: Existing, card_inputs: str, sheet_inputs: str) -> list[Step]:
    """The steps `row` still needs, in order."""
    steps = []
    if not existing.in_inventory:
        steps.append(Step.INVENTORY)
    if not existing.has_identity:
        steps.append(Step.IDENTITY)
    if existing.card_digest != card_inputs or not existing.has_identity:
        steps.append(Step.CARD)
    if existing.sheet_digest != sheet_inputs:
        steps.append(Step.SHEET)
    return steps

"""Cron-lite for schedule triggers: five fields (minute hour day month weekday), UTC.

Each field is `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a comma list of
those. Weekday 0 is Sunday (7 is Sunday too). Day and weekday combine with AND (simpler than
classic cron's OR, and what a shop-floor schedule usually means).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))
MAX_SEARCH_MINUTES = 366 * 24 * 60 * 5  # "Feb 30" never matches: give up after 5 years


@dataclass(frozen=True)
class Cron:
    minute: frozenset[int]
    hour: frozenset[int]
    day: frozenset[int]
    month: frozenset[int]
    weekday: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> Cron:
        parts = text.split()
        if len(parts) != 5:
            raise ValueError(f"cron {text!r}: give 5 fields: minute hour day month weekday")
        sets = [_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
        weekday = frozenset(d % 7 for d in sets[4])  # 7 and 0 are both Sunday
        return cls(sets[0], sets[1], sets[2], sets[3], weekday)

    def matches(self, moment: datetime) -> bool:
        return (
            moment.minute in self.minute
            and moment.hour in self.hour
            and moment.day in self.day
            and moment.month in self.month
            and moment.isoweekday() % 7 in self.weekday
        )

    def next_after(self, moment: datetime) -> datetime:
        """The first whole minute strictly after `moment` that matches (UTC)."""
        candidate = moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        for _ in range(MAX_SEARCH_MINUTES):
            if self.matches(candidate):
                return candidate
            candidate += timedelta(minutes=1)
        raise ValueError("this cron line never matches")


def _field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        body, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if body == "*":
                start, end = low, high
            elif "-" in body:
                a, b = body.split("-", 1)
                start, end = int(a), int(b)
            else:
                start = end = int(body)
        except ValueError:
            raise ValueError(f"cron {name} field {text!r}: not a number, range or step") from None
        if step < 1 or not low <= start <= end <= high:
            raise ValueError(f"cron {name} field {text!r}: values must be within {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)

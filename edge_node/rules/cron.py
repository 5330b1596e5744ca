"""Cron schedules for rule triggers: five fields (minute hour day month weekday), UTC, by croniter.

Day and weekday combine with AND (croniter's `day_or=False`; classic cron's OR is rarely what a
shop-floor schedule means). A line that can never fire ("0 0 30 2 *") is refused when the rules
load, not discovered by a scheduler searching years ahead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

# Feb 29 of a year divisible by 100 but not 400 (2100) is 8 years after the previous one.
MAX_YEARS_BETWEEN: Final = 8
_REFERENCE: Final = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Cron:
    text: str

    @classmethod
    def parse(cls, text: str) -> Cron:
        """Raises ValueError (naming the line) for a malformed or never-matching schedule."""
        if len(text.split()) != 5:
            raise ValueError(f"cron {text!r}: give 5 fields: minute hour day month weekday")
        cron = cls(" ".join(text.split()))
        try:
            cron.next_after(_REFERENCE)
        except CroniterBadDateError:  # a ValueError too: catch it first
            raise ValueError(f"cron {text!r} never matches a real date") from None
        except (CroniterBadCronError, ValueError) as exc:
            raise ValueError(f"cron {text!r}: {exc}") from None
        return cron

    def next_after(self, moment: datetime) -> datetime:
        """The first whole minute strictly after `moment` that matches (UTC)."""
        found = croniter(
            self.text,
            moment.astimezone(UTC),
            day_or=False,
            max_years_between_matches=MAX_YEARS_BETWEEN,
        ).get_next(datetime)
        return found.astimezone(UTC)

"""Pure rollout policy: wave sizes, error thresholds and maintenance windows, from plain data."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Amount:
    """A count ("3") or a percent ("10%") of some total."""

    value: float
    percent: bool

    @classmethod
    def parse(cls, text: str | int, what: str) -> Amount:
        raw = str(text).strip()
        try:
            if raw.endswith("%"):
                value = float(raw[:-1])
                if not 0 <= value <= 100:
                    raise ValueError
                return cls(value, True)
            count = int(raw)
            if count < 0:
                raise ValueError
            return cls(count, False)
        except ValueError:
            raise ValueError(
                f"{what}: {raw!r} is neither a count (3) nor a percent (10%)"
            ) from None

    def of(self, total: int, at_least_one: bool = False) -> int:
        n = math.floor(self.value * total / 100) if self.percent else int(self.value)
        n = min(n, total)
        return max(n, 1) if at_least_one and total else n

    def __str__(self) -> str:
        return f"{self.value:g}%" if self.percent else str(int(self.value))


@dataclass(frozen=True)
class WindowSpec:
    """Updates may start on `days` between start and end minutes (UTC); end < start wraps."""

    days: tuple[str, ...]
    start_min: int
    end_min: int

    @classmethod
    def parse(cls, days: list[str], start: str, end: str) -> WindowSpec:
        def minutes(hhmm: str) -> int:
            h, m = hhmm.split(":")
            return int(h) * 60 + int(m)

        return cls(tuple(days), minutes(start), minutes(end))

    def contains(self, when: dt.datetime) -> bool:
        minute = when.hour * 60 + when.minute
        day = DAYS[when.weekday()]
        if self.start_min <= self.end_min:
            return day in self.days and self.start_min <= minute < self.end_min
        # Past midnight: the part after midnight belongs to the window that opened the day before.
        yesterday = DAYS[(when.weekday() - 1) % 7]
        return (day in self.days and minute >= self.start_min) or (
            yesterday in self.days and minute < self.end_min
        )


def in_window(windows: tuple[WindowSpec, ...], now: float) -> bool:
    """True when no windows are set, or `now` (epoch seconds) lies inside one."""
    if not windows:
        return True
    when = dt.datetime.fromtimestamp(now, dt.UTC)
    return any(w.contains(when) for w in windows)


def next_window_open(windows: tuple[WindowSpec, ...], now: float) -> float:
    """The first minute boundary at or after `now` inside a window (within a week)."""
    start = math.floor(now / 60) * 60
    for minute in range(0, 8 * 24 * 60):
        t = start + minute * 60
        if t >= now and in_window(windows, t):
            return float(t)
    raise ValueError("the maintenance windows never open: give at least one day")


def plan_waves(gateways: list[str], canary: Amount, wave_size: Amount) -> list[list[str]]:
    """Canary first, then waves of `wave_size` (of the whole selection) until all are planned."""
    total = len(gateways)
    if not total:
        return []
    first = canary.of(total, at_least_one=True)
    size = wave_size.of(total, at_least_one=True)
    waves = [gateways[:first]]
    rest = gateways[first:]
    waves += [rest[i : i + size] for i in range(0, len(rest), size)]
    return waves

"""Statistical process control over a stream of values: spec limits and four Western Electric rules.

Pure and incremental: one `SeriesSpc` per series keeps O(1) state and `update(value)` says
which rules are violated *at that point*. A rule is reported at the point that completes its
pattern and at every later point while the pattern still holds (a run of 10 on one side
violates rule 3 at points 8, 9 and 10); callers raise an alarm when a rule becomes violated
and clear it when it no longer is.

Rules (sigma zones around the centre line `mean`):
- `spec`:  the value is above `usl` or below `lsl` (the product is out of specification);
- `rule1`: one point beyond 3 sigma (or beyond `ucl` / `lcl` when given);
- `rule2`: two of three consecutive points beyond 2 sigma on the same side, the current one
  among them (a point that merely follows two such points does not re-trigger the rule);
- `rule3`: eight points in a row on one side of the mean (a point on the mean breaks the run);
- `rule4`: six points in a row steadily rising or falling (five strict steps; a tie breaks it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

RULES = ("spec", "rule1", "rule2", "rule3", "rule4")
RUN_LENGTH = 8  # rule 3
TREND_LENGTH = 6  # rule 4: points, i.e. TREND_LENGTH - 1 strict steps


class LimitsLike(Protocol):
    """Master data's ControlLimits, or anything with these attributes (None when unknown).

    Read-only properties, so frozen dataclasses such as Limits satisfy it too."""

    @property
    def mean(self) -> float | None: ...
    @property
    def sigma(self) -> float | None: ...
    @property
    def lcl(self) -> float | None: ...
    @property
    def ucl(self) -> float | None: ...
    @property
    def lsl(self) -> float | None: ...
    @property
    def usl(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Limits:
    """Control limits (mean, sigma, lcl, ucl) and specification limits (lsl, usl) of a series."""

    mean: float | None = None
    sigma: float | None = None
    lcl: float | None = None
    ucl: float | None = None
    lsl: float | None = None
    usl: float | None = None
    version: Any = None

    @classmethod
    def of(cls, other: LimitsLike) -> Limits:
        if isinstance(other, Limits):
            return other
        get = lambda name: _num(getattr(other, name, None))  # noqa: E731
        return cls(
            get("mean"),
            get("sigma"),
            get("lcl"),
            get("ucl"),
            get("lsl"),
            get("usl"),
            getattr(other, "version", None),
        )

    def centre(self) -> tuple[float, float] | None:
        """(mean, sigma) for the zone rules; derived from lcl/ucl (= mean -/+ 3 sigma) if needed."""
        mean, sigma = self.mean, self.sigma
        if mean is None and self.lcl is not None and self.ucl is not None:
            mean = (self.lcl + self.ucl) / 2
        if sigma is None and self.lcl is not None and self.ucl is not None:
            sigma = (self.ucl - self.lcl) / 6
        if mean is None or sigma is None or sigma <= 0:
            return None
        return mean, sigma


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    side: str  # "high" or "low" (rule 4: "rising" or "falling")
    message: str


def numeric(value: Any) -> float | None:
    """The float a reading's value stands for, or None (strings, booleans, NaN are not charted)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class SeriesSpc:
    """The SPC state of one series under one set of limits; replace it when the limits change."""

    __slots__ = ("_beyond2", "_last", "_run", "_run_side", "_steps", "_trend", "_zones", "limits")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._zones = limits.centre()
        self._beyond2: tuple[int, int] = (0, 0)  # sides (+1/-1/0) of the previous two points
        self._run_side = 0
        self._run = 0
        self._last: float | None = None
        self._trend = 0  # +1 rising, -1 falling, 0 none
        self._steps = 0

    def update(self, x: float) -> list[Violation]:
        """Feed the next value; returns the rules violated at this point (empty when none)."""
        out: list[Violation] = []
        self._spec(x, out)
        if self._zones is not None:
            mean, sigma = self._zones
            self._rule1(x, mean, sigma, out)
            self._rule2(x, mean, sigma, out)
            self._rule3(x, mean, out)
        self._rule4(x, out)
        return out

    def _spec(self, x: float, out: list[Violation]) -> None:
        lim = self.limits
        if lim.usl is not None and x > lim.usl:
            out.append(Violation("spec", "high", f"{x:g} above the upper spec limit {lim.usl:g}"))
        elif lim.lsl is not None and x < lim.lsl:
            out.append(Violation("spec", "low", f"{x:g} below the lower spec limit {lim.lsl:g}"))

    def _rule1(self, x: float, mean: float, sigma: float, out: list[Violation]) -> None:
        ucl = self.limits.ucl if self.limits.ucl is not None else mean + 3 * sigma
        lcl = self.limits.lcl if self.limits.lcl is not None else mean - 3 * sigma
        if x > ucl:
            out.append(Violation("rule1", "high", f"{x:g} above the upper control limit {ucl:g}"))
        elif x < lcl:
            out.append(Violation("rule1", "low", f"{x:g} below the lower control limit {lcl:g}"))

    def _rule2(self, x: float, mean: float, sigma: float, out: list[Violation]) -> None:
        side = 1 if x > mean + 2 * sigma else -1 if x < mean - 2 * sigma else 0
        first, second = self._beyond2
        if side and (first == side or second == side):
            name = "high" if side > 0 else "low"
            out.append(Violation("rule2", name, f"2 of 3 points beyond 2 sigma ({name})"))
        self._beyond2 = (second, side)

    def _rule3(self, x: float, mean: float, out: list[Violation]) -> None:
        side = 1 if x > mean else -1 if x < mean else 0
        self._run = self._run + 1 if side and side == self._run_side else (1 if side else 0)
        self._run_side = side
        if self._run >= RUN_LENGTH:
            name = "high" if side > 0 else "low"
            out.append(Violation("rule3", name, f"{self._run} points in a row {name} of the mean"))

    def _rule4(self, x: float, out: list[Violation]) -> None:
        last, self._last = self._last, x
        if last is None:
            return
        step = 1 if x > last else -1 if x < last else 0
        self._steps = self._steps + 1 if step and step == self._trend else (1 if step else 0)
        self._trend = step
        if self._steps >= TREND_LENGTH - 1:
            name = "rising" if step > 0 else "falling"
            out.append(Violation("rule4", name, f"{self._steps + 1} points in a row {name}"))


class SpcMonitor:
    """SPC state per series; a series' state restarts when its limits change."""

    def __init__(self) -> None:
        self._states: dict[str, SeriesSpc] = {}

    def update(self, series: str, value: Any, limits: Limits | None) -> list[Violation] | None:
        """Violations at this point, or None when the value is not checked (no limits, not a
        number): callers keep the alarm state of a series unchanged on None."""
        x = numeric(value)
        if limits is None:
            self._states.pop(series, None)
            return None
        if x is None:
            return None
        state = self._states.get(series)
        if state is None or state.limits != limits:
            state = self._states[series] = SeriesSpc(limits)
        return state.update(x)

    def forget(self, series: str) -> None:
        self._states.pop(series, None)

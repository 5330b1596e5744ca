"""Monitoring: every stored reading of a series with limits goes through SPC; alarms follow.

An alarm (source = series name, rule = `spc.<rule>`) is raised when a rule becomes violated
and cleared at the first later point that no longer violates it, so a single outlier makes
an alarm that is raised and cleared, and stays in the list until someone acknowledges it.

Limits come from master data (`limits(series_name)`, cached until its `version()` changes),
else from the config's `monitoring.limits`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from edge_node.alarms.feed import Feed
from edge_node.alarms.service import AlarmService
from edge_node.spc import Limits, LimitsLike, SpcMonitor, Violation
from edge_node.store.model import series_name
from factory_common.logs import get_logger
from factory_common.wire import Batch, Quality

SEVERITY = {"spec": "critical", "rule1": "high"}  # the pattern rules are warnings
RULE_PREFIX = "spc."


class LimitsSource(Protocol):
    """The synced master data (edge_node/masterdata), or StaticLimits: `version()` may be
    absent (never changes)."""

    def limits(self, series_name: str) -> LimitsLike | None: ...


class StaticLimits:
    """Limits from the edge config (`monitoring.limits`)."""

    def __init__(self, entries: Mapping[str, Any]) -> None:
        self._limits = {name: Limits.of(entry) for name, entry in entries.items()}

    def limits(self, series_name: str) -> Limits | None:
        return self._limits.get(series_name)


class ChainedLimits:
    """The first source that knows a series wins (master data first, then the config)."""

    def __init__(self, *sources: LimitsSource) -> None:
        self.sources = sources

    def limits(self, series_name: str) -> LimitsLike | None:
        for source in self.sources:
            found = source.limits(series_name)
            if found is not None:
                return found
        return None

    def version(self) -> tuple[Any, ...]:
        return tuple(getattr(s, "version", lambda: None)() for s in self.sources)


class Monitor:
    def __init__(self, alarms: AlarmService, limits: LimitsSource, feed: Feed) -> None:
        self.alarms = alarms
        self.source = limits
        self.feed = feed
        self.spc = SpcMonitor()
        self.checked = 0
        self._cache: dict[str, Limits | None] = {}
        self._version: Any = None
        self._last_ts: dict[str, int] = {}
        # (series, rule) pairs with an active alarm: survives restarts through the alarm table.
        self._active = {
            (a.source, a.rule) for a in alarms.active() if a.rule.startswith(RULE_PREFIX)
        }
        self._log = get_logger(component="monitor")

    async def run(self) -> None:
        while True:
            self.process(await self.feed.get())

    def process(self, batches: Sequence[Batch]) -> None:
        self._refresh()
        for batch in batches:
            for reading in batch.readings:
                if reading.quality is Quality.BAD:
                    continue
                name = series_name(batch.gateway, reading.device, reading.tag)
                # Redelivered or replayed readings are not checked twice or out of order.
                if reading.ts <= self._last_ts.get(name, -1):
                    continue
                limits = self._limits(name)
                if limits is None:
                    continue
                self._last_ts[name] = reading.ts
                found = self.spc.update(name, reading.value, limits)
                if found is not None:
                    self.checked += 1
                    self._apply(name, found, reading.value, reading.ts)

    def _refresh(self) -> None:
        version_of = getattr(self.source, "version", None)
        version = version_of() if version_of is not None else None
        if version != self._version:
            self._version = version
            self._cache.clear()

    def _limits(self, name: str) -> Limits | None:
        if name not in self._cache:
            found = self.source.limits(name)
            self._cache[name] = Limits.of(found) if found is not None else None
        return self._cache[name]

    def _apply(self, name: str, violations: list[Violation], value: Any, ts: int) -> None:
        now = {RULE_PREFIX + v.rule: v for v in violations}
        for rule, violation in now.items():
            if (name, rule) not in self._active:
                self._active.add((name, rule))
                self.alarms.raise_(
                    name, rule, violation.message,
                    severity=SEVERITY.get(violation.rule, "warning"), value=value, ts=ts,
                    details={"side": violation.side},
                )  # fmt: skip
        for key in [k for k in self._active if k[0] == name and k[1] not in now]:
            self._active.discard(key)
            self.alarms.clear_active(*key)

    def stats(self) -> dict[str, Any]:
        return {"checked": self.checked, "active": len(self._active), "feed": self.feed.stats()}

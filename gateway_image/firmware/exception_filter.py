"""Report by exception: per-tag deadband, minimum and maximum reporting interval (pure logic).

Rules for one tag, in order (times are monotonic seconds, never the wall clock, so a clock
jump cannot stall or flood reporting):
1. its first reading, and any change of quality (or of the reason of a bad reading), is
   always reported;
2. within `min_interval` of the last report nothing else is (the newest value is kept and
   reported once the interval is over, see `due`);
3. a value that moved past the deadband from the last *reported* value is reported;
   `absolute`: |new - old| > absolute; `percent`: |new - old| > |old| * percent / 100;
   non-numeric values (bool, text) are reported when they differ;
4. after `max_interval` without a report, the value is reported anyway, as alive.
A tag without a deadband reports every reading (subject to `min_interval`), as before this
filter existed; `deadband: {absolute: 0}` means "report every change".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from factory_common.wire import Quality, Reading, TimeSource, Value
from gateway_image.firmware.tag_index import tags_of

Key = tuple[str, str]
# Connectors whose servers apply the tag's deadband themselves (OPC UA monitored items, where
# a percent deadband is of the EU range): the gateway applies only the intervals there.
SERVER_DEADBAND = frozenset({"opcua"})


@dataclass(frozen=True)
class Policy:
    absolute: float | None = None
    percent: float | None = None
    min_interval: float | None = None
    max_interval: float | None = None

    @property
    def has_deadband(self) -> bool:
        return self.absolute is not None or self.percent is not None

    @property
    def filters(self) -> bool:
        return self.has_deadband or self.min_interval is not None or self.max_interval is not None

    @classmethod
    def of(cls, spec: Any, server_deadband: bool = False) -> Policy:
        deadband = None if server_deadband else getattr(spec, "deadband", None)
        return cls(
            absolute=getattr(deadband, "absolute", None),
            percent=getattr(deadband, "percent", None),
            min_interval=getattr(spec, "min_interval", None),
            max_interval=getattr(spec, "max_interval", None),
        )

    def moved(self, old: Value, new: Value) -> bool:
        """Whether `new` differs enough from the last reported `old` to be reported."""
        if not self.has_deadband:
            return True
        if _number(old) and _number(new):
            delta = abs(float(new) - float(old))  # type: ignore[arg-type]
            if self.absolute is not None:
                return delta > self.absolute
            return delta > abs(float(old)) * (self.percent or 0.0) / 100.0  # type: ignore[arg-type]
        return new != old


def _number(value: Value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class _State:
    reported: Reading
    reported_at: float
    latest: Reading
    pending: bool = False  # latest moved past the deadband but min_interval held it back


def _same_quality(a: Reading, b: Reading) -> bool:
    if a.quality is not b.quality:
        return False
    return a.quality is Quality.GOOD or a.reason == b.reason


class ExceptionFilter:
    """Filters one connector's readings; tags without a policy pass untouched."""

    def __init__(self, policies: dict[Key, Policy]) -> None:
        self.policies = {k: p for k, p in policies.items() if p.filters}
        self.suppressed = 0
        self._states: dict[Key, _State] = {}

    @classmethod
    def from_config(cls, config: Any) -> ExceptionFilter:
        server = getattr(config, "type", None) in SERVER_DEADBAND
        return cls({(t.device, t.tag): Policy.of(t.spec, server) for t in tags_of(config)})

    @property
    def active(self) -> bool:
        return bool(self.policies)

    @property
    def tick(self) -> float | None:
        """How often `due` should run for a streaming connector (None: never needed)."""
        intervals = [
            i for p in self.policies.values() for i in (p.min_interval, p.max_interval) if i
        ]
        return min(1.0, max(0.05, min(intervals) / 2)) if intervals else None

    def apply(self, readings: Iterable[Reading], now: float) -> list[Reading]:
        """The readings to report out of one poll (or one streamed group), at monotonic `now`."""
        if not self.policies:
            return list(readings)
        out = []
        for reading in readings:
            if self._admit(reading, now):
                out.append(reading)
            else:
                self.suppressed += 1
        return out

    def _admit(self, reading: Reading, now: float) -> bool:
        key = (reading.device, reading.tag)
        policy = self.policies.get(key)
        if policy is None:
            return True
        state = self._states.get(key)
        if state is None or not _same_quality(state.reported, reading):
            return self._report(key, reading, now)
        state.latest = reading
        since = now - state.reported_at
        moved = policy.moved(state.reported.value, reading.value)
        if policy.min_interval is not None and since < policy.min_interval:
            state.pending = moved
            return False
        if moved or (policy.max_interval is not None and since >= policy.max_interval):
            return self._report(key, reading, now)
        state.pending = False
        return False

    def forget(self) -> None:
        """After an outage: the first reading of each tag is reported again, whatever its
        value, so a tag the edge was told is bad does not stay bad until it moves."""
        self._states.clear()

    def _report(self, key: Key, reading: Reading, now: float) -> bool:
        self._states[key] = _State(reading, now, reading)
        return True

    def due(self, now: float, wall_ns: int) -> list[Reading]:
        """For streams that may fall silent: held-back changes and alive reports now due.

        A held-back change keeps its own timestamp; an alive report repeats the newest value
        stamped with gateway time `wall_ns` (it says "still this value now").
        """
        out = []
        for key, state in self._states.items():
            policy = self.policies[key]
            since = now - state.reported_at
            if state.pending and since >= (policy.min_interval or 0.0):
                out.append(state.latest)
            elif policy.max_interval is not None and since >= policy.max_interval:
                alive = msgspec.structs.replace(state.latest, ts=wall_ns, src=TimeSource.GATEWAY)
                out.append(alive)
            else:
                continue
            self._states[key] = _State(out[-1], now, out[-1])
        return out

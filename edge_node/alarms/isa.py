"""Alarm management the ANSI/ISA-18.2 way, as pure functions: priorities, the operator's names
for alarm states, the alarm-rate (flood) summary and the journal of who did what.

Rate figures (alarms annunciated to one operator):
- ANSI/ISA-18.2-2016, clause 16 (monitoring), alarm performance metrics from at least 30 days
  of data: ~1 alarm per 10 minutes is "very likely to be acceptable", ~2 per 10 minutes the
  "maximum manageable"; an alarm flood starts at more than 10 alarms in 10 minutes and ends
  below 5 per 10 minutes; under ~1 % of 10-minute periods should hold more than 10 alarms.
- EEMUA 191 (3rd edition, 2013) gives the same steady-state benchmark (a long-term average
  below 1 per 10 minutes) and under 10 alarms in the 10 minutes after a major plant upset.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

WINDOW_NS = 600 * 10**9  # ten minutes
ACCEPTABLE_PER_10_MIN = 1  # ISA-18.2 / EEMUA 191: very likely acceptable
MANAGEABLE_PER_10_MIN = 2  # ISA-18.2: maximum manageable
FLOOD_START = 10  # more than this many alarms in 10 minutes: a flood (ISA-18.2)
FLOOD_END = 5  # a flood ends when a 10-minute period has fewer than this

# Severity words used by monitoring and rules -> ISA-18.2 priority (1 is most urgent). The
# standard asks for few priorities with a clear operator response time each; four is common.
PRIORITY = {"critical": 1, "high": 2, "warning": 3, "low": 4}
PRIORITY_NAME = {1: "Critical", 2: "High", 3: "Medium", 4: "Low"}

# The alarm state model of ISA-18.2 (figure "alarm states"), in words an operator reads.
STATE_LABEL = {
    "raised": "Active, unacknowledged",
    "acknowledged": "Active, acknowledged",
    "cleared_unacked": "Returned to normal, unacknowledged",
    "cleared": "Normal",
    "shelved": "Shelved",
}


def priority(severity: str) -> int:
    return PRIORITY.get(severity, 3)


def describe(alarm: dict[str, Any], shelf: dict[str, Any] | None) -> dict[str, Any]:
    """An alarm as the API serves it: its priority and state in words, and its shelf if any."""
    level = priority(str(alarm.get("severity", "")))
    state = "shelved" if shelf is not None and alarm.get("active") else alarm["state"]
    return alarm | {
        "priority": level,
        "priority_name": PRIORITY_NAME[level],
        "state_label": STATE_LABEL.get(state, state),
        "shelved": shelf is not None,
        "shelf": shelf,
    }


@dataclass(frozen=True, slots=True)
class FloodSummary:
    start: int  # ns, first window's start
    window_s: int
    counts: list[int]  # alarms raised per 10-minute window, oldest first
    average: float
    peak: int
    over_manageable: int  # windows with more than MANAGEABLE_PER_10_MIN
    flood_windows: int  # windows with more than FLOOD_START
    in_flood_pct: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "window_s": self.window_s,
            "counts": self.counts,
            "average": self.average,
            "peak": self.peak,
            "over_manageable": self.over_manageable,
            "flood_windows": self.flood_windows,
            "in_flood_pct": self.in_flood_pct,
            "acceptable": ACCEPTABLE_PER_10_MIN,
            "manageable": MANAGEABLE_PER_10_MIN,
            "flood": FLOOD_START,
        }


def flood_summary(raised_at: Iterable[int], start: int, end: int) -> FloodSummary:
    """Alarms per 10 minutes over [start, end) (ns), against the standard's rates."""
    windows = max(1, -(-(end - start) // WINDOW_NS))
    counts = [0] * windows
    for ts in raised_at:
        if start <= ts < end:
            counts[(ts - start) // WINDOW_NS] += 1
    flooding = _flood_flags(counts)
    return FloodSummary(
        start=start,
        window_s=WINDOW_NS // 10**9,
        counts=counts,
        average=round(sum(counts) / windows, 2),
        peak=max(counts),
        over_manageable=sum(c > MANAGEABLE_PER_10_MIN for c in counts),
        flood_windows=sum(c > FLOOD_START for c in counts),
        in_flood_pct=round(100 * sum(flooding) / windows, 1),
    )


def _flood_flags(counts: Sequence[int]) -> list[bool]:
    """A flood begins in a window over FLOOD_START and lasts until one under FLOOD_END."""
    flags, flooding = [], False
    for count in counts:
        if count > FLOOD_START:
            flooding = True
        elif count < FLOOD_END:
            flooding = False
        flags.append(flooding)
    return flags


def _entry(of: dict[str, Any], ts: int, action: str, by: str, detail: str = "") -> dict:
    return {"alarm_id": of["alarm_id"] if "alarm_id" in of else of["id"], "source": of["source"],
            "rule": of["rule"], "ts": ts, "action": action, "by": by, "detail": detail}  # fmt: skip


def journal(alarms: Iterable[dict[str, Any]], shelves: Iterable[dict[str, Any]]) -> list[dict]:
    """Who did what, newest first: raised, acknowledged, cleared, shelved, unshelved."""
    entries: list[dict[str, Any]] = []
    for a in alarms:
        entries.append(_entry(a, a["raised_at"], "raised", "system", a["message"]))
        if a.get("acked_at"):
            entries.append(_entry(a, a["acked_at"], "acknowledged", a["acked_by"]))
        if a.get("cleared_at"):
            entries.append(_entry(a, a["cleared_at"], "cleared", a.get("cleared_by") or "system"))
    for s in shelves:
        shelved = _entry(s, s["shelved_at"], "shelved", s["shelved_by"], s["reason"])
        entries.append(shelved | {"until": s["expires_at"]})
        if s.get("ended_at"):
            expired = s.get("ended_by") == "expiry"
            detail = "shelf expired" if expired else "unshelved early"
            entries.append(_entry(s, s["ended_at"], "unshelved", s["ended_by"], detail))
    entries.sort(key=lambda e: e["ts"], reverse=True)
    return entries

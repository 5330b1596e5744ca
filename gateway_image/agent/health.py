"""Is the release on trial healthy? Judged from the gateway's own retained status messages.

Healthy means, in statuses of a gateway process started after the switch: it is online and runs the
version on trial, every connector is reading (up or degraded, with readings), and its buffer
drains (not deeper than when the trial began, or nearly empty). Two such reports in a row are
asked for, so one lucky status right after start cannot commit a release that dies a moment
later. Pure: statuses in, verdict out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from factory_common.wire import GatewayStatus

REPORTS = 2
# A buffer this shallow counts as drained: the normal in-flight window of a live gateway.
DRAINED = 2000
READING = ("up", "degraded")


@dataclass(frozen=True)
class Health:
    healthy: bool
    reason: str


def assess(statuses: Sequence[GatewayStatus], version: str, since_ns: int) -> Health:
    """`statuses` in arrival order; only those of a gateway process started after `since_ns`
    count (the old process may still report, healthy, between the switch and its stop)."""
    fresh = [s for s in statuses if s.started_at >= since_ns]
    if not fresh:
        return Health(False, "no status from the gateway since the switch")
    latest = fresh[-1]
    problem = _problem(latest, version, fresh[0].buffer_depth)
    if problem:
        return Health(False, problem)
    good = 0
    for status in reversed(fresh):
        if _problem(status, version, fresh[0].buffer_depth):
            break
        good += 1
    if good < REPORTS:
        return Health(False, f"{good} healthy status report(s), waiting for {REPORTS}")
    return Health(True, "healthy")


def _problem(status: GatewayStatus, version: str, first_depth: int) -> str:
    if not status.online:
        return "the gateway reports offline"
    if version and status.version != version:
        return f"the gateway reports version {status.version!r}, not {version!r}"
    idle = [c.name for c in status.connectors if c.state not in READING or c.readings == 0]
    if idle:
        return f"connector(s) not reading: {', '.join(idle)}"
    if status.buffer_depth > max(first_depth, DRAINED):
        return f"buffer growing: {status.buffer_depth} readings (was {first_depth})"
    return ""

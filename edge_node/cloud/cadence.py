"""The loop every cloud sync runs: each interval, backing off while the cloud is away.

Sync down (master data) and sync up (summaries, events, alarms, defects) share it, so both log
once when the cloud goes away and once when it is back, and both can be woken early.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from edge_node.cloud.mysql import CloudError

BACKOFF_START = 2.0


async def sleep_or_wake(wake: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if `wake` is set (a new defect record, 'sync now')."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()
    wake.clear()


async def repeat_with_backoff(
    step: Callable[[], Awaitable[object]],
    *,
    interval: float,
    backoff_max: float,
    wake: asyncio.Event,
    on_failure: Callable[[CloudError, bool], None],
    on_recovery: Callable[[], None],
) -> None:
    """Run `step` forever, every `interval` s while it succeeds.

    While it raises CloudError, retry after doubling delays (up to `backoff_max`);
    `on_failure(exc, first)` sees every failure, `first` being True when the cloud has just
    gone away; `on_recovery()` runs once when a step succeeds again.
    """
    first_delay = min(BACKOFF_START, interval)
    delay, failing = first_delay, False
    while True:
        try:
            await step()
        except CloudError as exc:
            on_failure(exc, not failing)
            failing = True
            await sleep_or_wake(wake, delay)
            delay = min(delay * 2, backoff_max)
            continue
        if failing:
            on_recovery()
        failing, delay = False, first_delay
        await sleep_or_wake(wake, interval)

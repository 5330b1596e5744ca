"""Shutdown: every connector task ends, even one whose library lost the first cancel."""

from __future__ import annotations

import asyncio

from gateway_image.firmware.app import cancel_all


async def test_a_task_that_loses_a_cancel_is_cancelled_again_until_it_ends() -> None:
    lost = 0

    async def polls_on() -> None:
        nonlocal lost
        while True:
            try:
                await asyncio.sleep(0.001)
            except asyncio.CancelledError:
                if lost:
                    raise
                lost += 1  # as 3.11's wait_for does when the response comes with the cancel

    stubborn = asyncio.create_task(polls_on())
    plain = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0)  # both started
    async with asyncio.timeout(30):  # a guard: without the repeat this never returns
        await cancel_all([stubborn, plain])
    assert stubborn.cancelled() and plain.cancelled() and lost == 1

"""Shutdown: every connector task ends, even one whose library lost the first cancel."""

from __future__ import annotations

import asyncio
import time

from factory_common.wire import Quality, Reading
from gateway_image.firmware.app import cancel_all
from gateway_image.firmware.runner import ConnectorRunner


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


class SwallowsCancels:
    """A polling connector whose library turns every cancel into a normal answer."""

    name = "stubborn"

    def __init__(self) -> None:
        self.polls = self.swallowed = self.closes = 0
        self.polling = asyncio.Event()  # set once it has polled a few times

    async def open(self) -> None:
        return None

    async def poll(self) -> list[Reading]:
        self.polls += 1
        if self.polls >= 3:
            self.polling.set()
        try:
            await asyncio.sleep(0.001)
        except asyncio.CancelledError:
            self.swallowed += 1
        return [Reading("d1", "t", time.time_ns(), 1.0)]

    async def close(self) -> None:
        self.closes += 1


async def test_a_stopped_runner_ends_even_if_its_connector_swallows_every_cancel() -> None:
    connector = SwallowsCancels()
    delivered: list[Reading] = []

    async def sink(readings: list[Reading]) -> None:
        delivered.extend(readings)

    runner = ConnectorRunner(
        connector, sink, gateway="gw", connector_type="test", interval=0.001, settle=0.0
    )
    task = asyncio.create_task(runner.run())
    await connector.polling.wait()
    runner.stop()
    async with asyncio.timeout(30):  # a guard: a runner that polls on never returns
        await cancel_all([task])
    assert connector.closes == 1
    # Nothing reported as down: a shutdown is not a failure of the device.
    assert all(r.quality is Quality.GOOD for r in delivered)
    assert runner.state != "down"

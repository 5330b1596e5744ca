"""The gateway's sink (app.py): a connector hands its poll to the buffer and polls again on
schedule; the group commit takes whatever has arrived, and nothing is counted as stored before
its commit."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from factory_common.wire import Reading
from gateway_image.firmware.app import buffer_sink
from gateway_image.firmware.buffer import DurableBuffer
from gateway_image.firmware.runner import Backoff, ConnectorRunner


class InstantPoller:
    """A PollingConnector whose polls return at once, two readings each."""

    name = "instant"

    async def open(self) -> None:
        return None

    async def poll(self) -> list[Reading]:
        return [Reading("d1", "a", 1, 1.0), Reading("d1", "b", 1, 2.0)]

    async def close(self) -> None:
        return None


class HeldCommits(DurableBuffer):
    """A buffer whose commits wait, in their worker thread, until the test releases them:
    a disk as slow as the test wants, without a clock."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started = threading.Event()  # a commit is in its worker thread
        self.release = threading.Event()
        self.commits = 0

    def append_many(
        self, groups: Sequence[Sequence[Reading]], queue_lost: int = 0
    ) -> list[tuple[int, int]]:
        self.commits += 1
        self.started.set()
        self.release.wait(60)
        return super().append_many(groups, queue_lost)


async def test_polls_go_on_while_the_first_commit_is_held(tmp_path: Path) -> None:
    buffer = HeldCommits.open(tmp_path / "b.sqlite", max_bytes=10**8)
    assert isinstance(buffer, HeldCommits)
    hand_over = buffer_sink(buffer)
    handed = polls = 0
    twenty = asyncio.Event()

    async def sink(readings: list[Reading]) -> None:
        nonlocal handed, polls
        handed, polls = handed + len(readings), polls + 1
        if polls >= 20:
            twenty.set()
        await hand_over(readings)

    runner = ConnectorRunner(
        InstantPoller(),
        sink,
        gateway="gw",
        connector_type="test",
        interval=0.001,
        backoff=Backoff(initial=0.01, cap=0.05),
    )
    task = asyncio.create_task(runner.run())
    try:
        # A sink that waited for the commit would hold the runner at its first poll.
        async with asyncio.timeout(30):
            await twenty.wait()
        assert await asyncio.to_thread(buffer.started.wait, 30)
        assert buffer.commits == 1  # the first commit, still held: polls did not wait
        assert buffer.depth == 0  # and none of those readings counts as stored yet
    finally:
        buffer.release.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await buffer.aclose()  # commits what waits
    assert buffer.depth == handed  # the group commit took every reading handed over

"""Deletes confirmed seq ranges from the buffer, everything confirmed meanwhile in one
transaction (a drain after an outage confirms hundreds of batches a second)."""

from __future__ import annotations

import asyncio
import sqlite3

from factory_common.logs import get_logger
from gateway_image.firmware.buffer.store import BufferClosed, DurableBuffer
from gateway_image.firmware.uplink.window import Counters


class Deleter:
    """Only used on the event loop thread; the delete itself runs in a worker thread."""

    def __init__(self, buffer: DurableBuffer, counters: Counters, gateway: str) -> None:
        self.buffer = buffer
        self.counters = counters
        self._ranges: list[tuple[int, int]] = []  # confirmed seq ranges not deleted yet
        self._running = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.log = get_logger(component="uplink", gateway=gateway)

    def delete(self, first: int, last: int) -> None:
        self._ranges.append((first, last))
        if self._running:
            return  # the running deleter takes it with the next transaction
        self._running = True
        # Not in the uplink's TaskGroup: a PUBACK that arrives while shutting down must still
        # delete.
        task = asyncio.get_running_loop().create_task(self._loop())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def finish(self) -> None:
        """Until the deletions asked for so far are done (the buffer closes after this)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _loop(self) -> None:
        try:
            while self._ranges:
                ranges, self._ranges = self._ranges, []
                try:
                    removed = await asyncio.to_thread(self.buffer.ack_ranges, ranges)
                except (sqlite3.Error, BufferClosed) as exc:
                    # The rows stay and are sent again after a restart: a duplicate, not a loss.
                    self.log.error("ack_not_applied", ranges=ranges[:3], error=str(exc))
                    continue
                self.counters.batches_acked += len(ranges)
                self.counters.readings_acked += removed
        finally:
            self._running = False  # no await since the loop's check: no delete slips between

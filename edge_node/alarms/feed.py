"""A bounded hand-off from ingest to a consumer (monitoring, rules): ingest never waits for them.

Ingest calls `offer()` with the batches of each committed flush; a consumer that falls
behind loses whole flushes, counted in `dropped_batches` / `dropped_readings` (exposed in the
consumer's status), rather than slowing the path that acknowledges gateways' messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from factory_common.wire import Batch

DEFAULT_DEPTH = 1000  # flushes (each up to store.flush_messages batches)


class Feed:
    def __init__(self, name: str, depth: int = DEFAULT_DEPTH) -> None:
        self.name = name
        self._queue: asyncio.Queue[Sequence[Batch]] = asyncio.Queue(depth)
        self.offered = 0
        self.dropped_batches = 0
        self.dropped_readings = 0

    def offer(self, batches: Sequence[Batch]) -> None:
        """Called by ingest on the loop thread after each commit; never blocks, never raises."""
        if not batches:
            return
        self.offered += 1
        try:
            self._queue.put_nowait(batches)
        except asyncio.QueueFull:
            self.dropped_batches += len(batches)
            self.dropped_readings += sum(len(b.readings) for b in batches)

    async def get(self) -> Sequence[Batch]:
        return await self._queue.get()

    def get_nowait(self) -> Sequence[Batch] | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def stats(self) -> dict[str, int]:
        return {
            "queued": self._queue.qsize(),
            "offered": self.offered,
            "dropped_batches": self.dropped_batches,
            "dropped_readings": self.dropped_readings,
        }

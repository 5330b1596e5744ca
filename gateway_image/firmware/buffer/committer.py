"""The group commit: connectors hand readings over and go on; one task commits what arrived.

`offer` is the connectors' sink: it queues the readings (bounded, see intake.py) and returns
at once, so a poll schedule never waits for the disk. `put` queues and returns only after the
commit (for callers that must know their readings are on disk, and their seqs). One task
commits everything waiting at most every `sync_interval` seconds (at once when `group_max`
readings wait), in a worker thread, and sets `committed` after each commit: readings reach
the uplink only from committed rows, so nothing is published before it is on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence

from factory_common.wire import Reading
from gateway_image.firmware.buffer.format import BufferClosed, Policy, log
from gateway_image.firmware.buffer.intake import Intake

Ranges = list[tuple[int, int]]
# Writes groups of readings in one transaction, counting `lost` readings as queue_full;
# returns one (first, last) seq range per group.
Writer = Callable[[list[list[Reading]], int], Ranges]


class GroupCommit:
    """Only touched on the event loop thread; the write itself runs in a worker thread."""

    def __init__(
        self,
        write: Writer,
        *,
        sync_interval: float,
        group_max: int,
        queue_max: int,
        policy: Policy,
    ) -> None:
        self._write = write
        self.sync_interval = sync_interval
        self.group_max = group_max
        self.intake: Intake[Reading, asyncio.Future[tuple[int, int]]] = Intake(queue_max, policy)
        self._lost = 0  # queue_full drops not yet persisted by a commit
        self._wake: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._last_commit = 0.0
        self.closed = False
        self.committed = asyncio.Event()  # set after every commit; the uplink waits on it

    @property
    def lost_unsaved(self) -> int:
        """queue_full drops counted since the last commit (shown in stats before saved)."""
        return self._lost

    def offer(self, readings: Sequence[Reading]) -> int:
        """Queue readings for the next commit and return at once; returns how many were lost."""
        self._check_open()
        lost = self.intake.offer(readings)
        self._lost += lost
        self._kick()
        return lost

    async def put(self, readings: Sequence[Reading]) -> tuple[int, int]:
        """Queue readings and return their (first, last) seqs once they are committed."""
        self._check_open()
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self.intake.put(readings, future)
        self._kick()
        return await future

    async def flush(self) -> None:
        """Until everything handed over so far is committed (or refused and counted)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    def _check_open(self) -> None:
        if self.closed:
            raise BufferClosed("buffer is closed")

    def _kick(self) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
        if len(self.intake) >= self.group_max:
            self._wake.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop(), name="buffer-flush")

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wake is not None
        while len(self.intake) or self._lost:
            delay = self._last_commit + self.sync_interval - loop.time()
            if delay > 0 and len(self.intake) < self.group_max:
                self._wake.clear()
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
            groups, lost = self.intake.take(), self._lost
            self._lost = 0
            self._last_commit = loop.time()
            try:
                ranges = await asyncio.to_thread(self._write, [g.items for g in groups], lost)
            except (sqlite3.Error, BufferClosed) as exc:
                unawaited = sum(len(g.items) for g in groups if g.waiter is None)
                if unawaited:  # nobody else can report these: the connectors went on polling
                    log.error("commit_failed", readings=unawaited, error=str(exc))
                for group in groups:
                    if group.waiter is not None and not group.waiter.done():
                        group.waiter.set_exception(exc)
                continue
            for group, seqs in zip(groups, ranges, strict=True):
                if group.waiter is not None and not group.waiter.done():
                    group.waiter.set_result(seqs)
            self.committed.set()

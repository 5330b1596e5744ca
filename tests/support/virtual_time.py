"""An asyncio event loop on virtual time: a sleep takes no wall time and load cannot stretch it."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _FastForward(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """When nothing is ready, jumps the loop's clock to its next timer instead of waiting."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None:  # no timers at all: only real I/O can wake the loop
            return super().select(None)
        ready = super().select(0)
        while not ready and timeout > 0 and self._loop.threads_working:
            # Work handed to a thread (asyncio.to_thread) takes no virtual time: wait for it
            # for real, or the clock would race ahead of it by however long the machine is
            # loaded, and a timer due "later" would fire before the thread's result arrives.
            ready = super().select(1.0)
        if not ready:
            self._loop.now += timeout
        return ready


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """`loop.time()` starts at 0 and moves only when every task is waiting on a timer and
    no thread is working for the loop."""

    def __init__(self) -> None:
        self.now = 0.0
        self.threads_working = 0
        super().__init__(selector=_FastForward(self))

    def time(self) -> float:
        return self.now

    def run_in_executor(self, executor: Any, func: Any, *args: Any) -> asyncio.Future[Any]:
        future = super().run_in_executor(executor, func, *args)
        self.threads_working += 1
        future.add_done_callback(self._thread_done)
        return future

    def _thread_done(self, _future: asyncio.Future[Any]) -> None:
        self.threads_working -= 1


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a fresh virtual-time loop."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main)
    finally:
        loop.close()

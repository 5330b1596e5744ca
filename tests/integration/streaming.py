"""Drive a StreamingConnector the way the gateway does (through the runner) and collect readings."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from factory_common.wire import Reading
from gateway_image.firmware.connectors.base import StreamingConnector
from gateway_image.firmware.runner import Backoff, ConnectorRunner


class Sink:
    """The runner's sink: collects readings and lets a test wait for one it expects."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self._changed = asyncio.Condition()

    async def __call__(self, readings: list[Reading]) -> None:
        async with self._changed:
            self.readings.extend(readings)
            self._changed.notify_all()

    def of(self, tag: str) -> list[Reading]:
        return [r for r in self.readings if r.tag == tag]

    async def wait_for(self, check: Callable[[Reading], bool], within: float = 5.0) -> Reading:
        async with asyncio.timeout(within), self._changed:
            while True:
                found = next((r for r in self.readings if check(r)), None)
                if found is not None:
                    return found
                await self._changed.wait()


@contextlib.asynccontextmanager
async def running(
    connector: StreamingConnector, sink: Sink, kind: str
) -> AsyncIterator[ConnectorRunner]:
    """The gateway's runner with a short back-off, cancelled on exit like at shutdown."""
    runner = ConnectorRunner(
        connector, sink, gateway="test-gw", connector_type=kind, backoff=Backoff(0.1, 0.5)
    )
    task = asyncio.create_task(runner.run())
    try:
        yield runner
    except TimeoutError as exc:
        # The runner turns connector errors into health: show it when a wait times out.
        exc.add_note(f"connector health: {runner.health()}")
        raise
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

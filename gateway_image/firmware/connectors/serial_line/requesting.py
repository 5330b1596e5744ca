"""Serial instruments that answer only when asked: send the command, read one reply, parse it.

A polling connector, so the runner owns the schedule (`request.interval`), the timeouts and
the back-off like any other device. One request is outstanding at a time: input left over
from an earlier reply is discarded before each command, so a late answer is never taken for
the current one.
"""

from __future__ import annotations

import asyncio
import contextlib

from factory_common.wire import Reading
from gateway_image.firmware.connectors.advice import Failure, explain
from gateway_image.firmware.connectors.base import ConnectorError
from gateway_image.firmware.connectors.serial_line.codec import is_blank
from gateway_image.firmware.connectors.serial_line.config import SerialLineConfig
from gateway_image.firmware.connectors.serial_line.connector import SerialLineConnector, framer


class RequestingSerialConnector(SerialLineConnector):
    """PollingConnector for an instrument with a `request:`; parsing as for streaming lines."""

    def __init__(self, config: SerialLineConfig) -> None:
        super().__init__(config)
        assert config.request is not None
        self.request = config.request
        self.command = config.request.payload()
        # The runner's per-poll deadline: the reply timeout plus writing the command.
        self.poll_timeout = config.request.reply_timeout + 1.0
        self._stack: contextlib.AsyncExitStack | None = None
        self._queue: asyncio.Queue | None = None
        self._port = None

    async def open(self) -> None:
        stack = contextlib.AsyncExitStack()
        self._queue, self._port = await stack.enter_async_context(self._chunks_and_port())
        self._stack = stack

    async def close(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()

    async def poll(self) -> list[Reading]:
        assert self._queue is not None and self._port is not None
        while not self._queue.empty():  # a reply that came after its deadline
            self._queue.get_nowait()
        await asyncio.to_thread(self._write, self.command)
        frames = framer(self.config)
        try:
            async with asyncio.timeout(self.request.reply_timeout):
                while True:
                    ts, chunk = await self._next(self._queue)
                    for frame in frames.feed(chunk):
                        if not is_blank(frame):
                            return self.readings(frame, ts) or self._garbled_reply()
        except TimeoutError:
            self.counters["no_reply"] += 1
            detail = (
                f"no reply to {self.command!r} on {self.config.port} within "
                f"{self.request.reply_timeout:g} s"
            )
            raise ConnectorError(explain("serial", Failure.NO_REPLY, detail)) from None

    async def probe(self) -> list[Reading]:
        await self.open()
        try:
            return await self.poll()
        finally:
            await self.close()

    def _garbled_reply(self) -> list[Reading]:
        raise ConnectorError(
            f"the reply to {self.command!r} on {self.config.port} was rejected (see the "
            "serial_line_garbled log line and the counters): check `pattern` and `checksum`"
        )

    def _write(self, data: bytes) -> None:
        assert self._port is not None
        self._port.write(data)
        self._port.flush()

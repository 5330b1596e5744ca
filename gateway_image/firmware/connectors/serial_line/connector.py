"""Serial line instruments (scanners, scales, colourimeters): ASCII lines in, readings out."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from collections.abc import AsyncIterator

import serial

from factory_common.logs import get_logger
from factory_common.wire import Quality, Reading, now_ns
from gateway_image.firmware.connectors.advice import Failure, explain
from gateway_image.firmware.connectors.base import ConnectorError, Emit
from gateway_image.firmware.connectors.serial_line.codec import (
    FieldSpec,
    Framer,
    Garbled,
    LineError,
    LineSpec,
    is_blank,
    parse_line,
)
from gateway_image.firmware.connectors.serial_line.config import SerialLineConfig, SerialPort

# Chunks waiting for the parser; at 115200 baud this is seconds of data. Beyond it the
# instrument outruns the gateway and chunks are dropped (counted as `overrun`).
_QUEUE_CHUNKS = 1024
OPEN_TIMEOUT = 5.0


def open_serial(settings: SerialPort) -> serial.Serial:
    """Open a port non-blocking (timeout=0) so reads happen only when the fd is readable."""
    try:
        return serial.Serial(
            port=settings.port,
            baudrate=settings.baudrate,
            bytesize=settings.bytesize,
            parity=settings.parity,
            stopbits=settings.stopbits,
            timeout=0,
            write_timeout=0,
        )
    except (serial.SerialException, ValueError) as exc:
        raise ConnectorError(
            explain("serial", Failure.PORT, f"cannot open serial port {settings.port}: {exc}")
        ) from None


def line_spec(config: SerialLineConfig) -> LineSpec:
    fields = tuple(FieldSpec(t.name, t.group_name, t.type, t.scale, t.offset) for t in config.tags)
    checksum = config.checksum.spec() if config.checksum else None
    return LineSpec(re.compile(config.pattern), fields, config.encoding, checksum=checksum)


def framer(config: SerialLineConfig) -> Framer:
    frame = config.framing
    terminator = (frame.terminator or "").encode("latin-1")
    return Framer(terminator=terminator, length=frame.length, max_length=frame.max_length)


class SerialLineConnector:
    """StreamingConnector: reads the port via the event loop's fd watcher (no threads)."""

    def __init__(self, config: SerialLineConfig) -> None:
        self.name = config.name
        self.config = config
        self.spec = line_spec(config)
        self.device = config.device_name
        # lines: good lines parsed; garbled kinds and `overrun` count rejected input.
        self.counters: Counter[str] = Counter()
        self._logged: set[str] = set()
        self._log = get_logger(connector=config.name, port=config.port)

    async def run(self, emit: Emit) -> None:
        async with self._chunks() as queue:
            await self._consume(queue, framer(self.config), emit)

    async def probe(self) -> list[Reading]:
        """Wait for a good frame and return its readings, for `gateway check --probe`.

        The first frame may be the tail of a line the port opened into, so up to three
        frames are tried; if all are garbled, each tag comes back as a bad reading naming
        why (wrong baud rate and wrong pattern are the usual first-wiring mistakes). No line
        at all is the caller's timeout.
        """
        frames = framer(self.config)
        tries = 3
        async with self._chunks() as queue:
            while True:
                ts, chunk = await self._next(queue)
                for frame in frames.feed(chunk):
                    if is_blank(frame):
                        continue
                    try:
                        if isinstance(frame, LineError):
                            raise frame
                        parse_line(frame, self.spec)
                    except LineError as exc:
                        tries -= 1
                        if tries:
                            continue
                        reason = f"{exc.kind.value}: {exc}"
                        return [
                            Reading(self.device, t.name, ts, None, Quality.BAD, reason)
                            for t in self.config.tags
                        ]
                    return self.readings(frame, ts)

    @contextlib.asynccontextmanager
    async def _chunks(self) -> AsyncIterator[asyncio.Queue]:
        """Open the port and feed (timestamp, bytes) chunks into a queue until exit."""
        async with self._chunks_and_port() as (queue, _port):
            yield queue

    @contextlib.asynccontextmanager
    async def _chunks_and_port(self) -> AsyncIterator[tuple[asyncio.Queue, serial.Serial]]:
        try:
            port = await asyncio.wait_for(asyncio.to_thread(open_serial, self.config), OPEN_TIMEOUT)
        except TimeoutError:
            raise ConnectorError(f"opening {self.config.port} took over {OPEN_TIMEOUT}s") from None
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[int, bytes] | ConnectorError] = asyncio.Queue(_QUEUE_CHUNKS)
        loop.add_reader(port.fileno(), self._readable, port, queue)
        try:
            yield queue, port
        finally:
            loop.remove_reader(port.fileno())
            port.close()

    @staticmethod
    async def _next(queue: asyncio.Queue) -> tuple[int, bytes]:
        item = await queue.get()
        if isinstance(item, ConnectorError):
            raise item
        return item

    def _readable(self, port: serial.Serial, queue: asyncio.Queue) -> None:
        item: tuple[int, bytes] | ConnectorError
        try:
            item = (now_ns(), port.read(max(port.in_waiting, 1)))
        except (serial.SerialException, OSError) as exc:
            # Unplugged USB adapter or closed pty: the runner reopens with back-off.
            item = ConnectorError(f"serial port {self.config.port} failed: {exc}")
        try:
            queue.put_nowait(item)
        except asyncio.QueueFull:
            self.counters["overrun"] += 1

    async def _consume(self, queue: asyncio.Queue, frames: Framer, emit: Emit) -> None:
        while True:
            ts, chunk = await self._next(queue)
            readings: list[Reading] = []
            for frame in frames.feed(chunk):
                readings += self.readings(frame, ts)
            if readings:
                await emit(readings)

    def readings(self, frame: bytes | LineError, ts: int) -> list[Reading]:
        """One frame to readings; a garbled frame is counted and yields nothing."""
        if is_blank(frame):
            return []
        try:
            if isinstance(frame, LineError):
                raise frame
            parsed = parse_line(frame, self.spec)
        except LineError as exc:
            self._garbled(exc)
            return []
        out: list[Reading] = []
        for tag, value in parsed:
            if isinstance(value, LineError):
                self._garbled(value)
                out.append(Reading(self.device, tag, ts, None, Quality.BAD, str(value)))
            else:
                out.append(Reading(self.device, tag, ts, value))
        self.counters["lines"] += 1
        return out

    def _garbled(self, error: LineError) -> None:
        self.counters[error.kind.value] += 1
        # One log line per kind: a noisy cable must not flood the log; counters show the rate.
        if error.kind.value not in self._logged:
            self._logged.add(error.kind.value)
            self._log.warning(
                "serial_line_garbled",
                kind=error.kind.value,
                detail=str(error),
                note="further lines of this kind are counted, not logged",
            )

    @property
    def garbled(self) -> int:
        return sum(self.counters[k.value] for k in Garbled)


def build(config: SerialLineConfig) -> SerialLineConnector:
    """Streaming for instruments that send on their own, polling for those that must be asked."""
    if config.request is not None:
        # Imported here: the requesting connector is built on this module's classes.
        from gateway_image.firmware.connectors.serial_line.requesting import (
            RequestingSerialConnector,
        )

        return RequestingSerialConnector(config)
    return SerialLineConnector(config)

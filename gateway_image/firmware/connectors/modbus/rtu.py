"""Modbus RTU over one RS-485 port: one bus arbiter per port, degraded slaves never stall the rest.

- `SerialBus` (one per port path, shared by every connector naming that port) owns the
  pymodbus serial client, an asyncio.Lock taken per transaction (so two requests are never on
  the wire at once), the inter-frame silence and the per-bus counters.
- `BusLink` is common.py's ModbusLink with every transaction routed through the bus and
  retried per slave; reads, writes and read-backs all go through it.
- `ModbusRtuConnector` polls slave by slave. A slave whose poll fails (no answer after its
  retries) is *degraded* and skipped for a growing interval (poll_interval doubling up to
  backoff_max), so a dead slave costs one timeout now and then, not one per poll.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from dataclasses import dataclass, field

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from factory_common.logs import get_logger
from factory_common.wire import Reading, Value, now_ns
from gateway_image.firmware.connectors.advice import Failure, explain
from gateway_image.firmware.connectors.base import ConnectorError
from gateway_image.firmware.connectors.modbus.common import (
    ILLEGAL_ADDRESS,
    ModbusExceptionResponse,
    ModbusLink,
    PlannedRead,
    UnitTimeout,
    bad_readings,
    plan_all,
    split_refused,
)
from gateway_image.firmware.connectors.modbus.config import ModbusRtuConfig, ModbusRtuDevice
from gateway_image.firmware.connectors.serial_line.config import SerialPort

OPEN_TIMEOUT = 5.0
CLIENT_TIMEOUT = 31.0


def char_time(settings: SerialPort) -> float:
    """Seconds one character takes: start bit, data bits, parity bit, stop bits."""
    bits = 1 + settings.bytesize + (0 if settings.parity == "N" else 1) + settings.stopbits
    return bits / settings.baudrate


def inter_frame_silence(settings: SerialPort) -> float:
    """Modbus over serial line v1.02, 2.5.1.1: 3.5 character times; fixed 1.75 ms above 19200."""
    if settings.baudrate > 19200:
        return 0.00175
    return 3.5 * char_time(settings)


def bus_key(port: str) -> str:
    """A /dev/serial/by-id/ symlink and the ttyUSB node it points to are the same bus."""
    return os.path.realpath(port)  # a local /dev lookup, cheap enough for the event loop


def _serial_key(settings: SerialPort) -> tuple:
    return (settings.baudrate, settings.bytesize, settings.parity, settings.stopbits)


class SerialBus:
    """One RS-485 port: the client, the arbiter lock, the silence and the counters."""

    _buses: dict[str, SerialBus] = {}

    def __init__(self, settings: SerialPort) -> None:
        self.port = settings.port
        self.key = settings.port
        self.settings = settings
        self.silence = inter_frame_silence(settings)
        self.lock = asyncio.Lock()
        self._connect_lock = asyncio.Lock()
        self.counters: Counter[str] = Counter()
        self.busy_s = 0.0
        self.opened_at = time.monotonic()
        self._last_end = 0.0
        self._rx_seen = False
        self._users = 0
        self.client = AsyncModbusSerialClient(
            settings.port,
            framer=FramerType.RTU,
            baudrate=settings.baudrate,
            bytesize=settings.bytesize,
            parity=settings.parity,
            stopbits=int(settings.stopbits),
            # Each slave's own timeout is enforced per request (ModbusLink.call); pymodbus's
            # must never fire first, so it is set above the largest a config allows.
            timeout=CLIENT_TIMEOUT,
            retries=0,  # retries are per slave, each one arbitrated: see BusLink.call
            reconnect_delay=0,  # the runner owns reopening with back-off
            trace_packet=self._trace,
        )

    @classmethod
    async def acquire(cls, settings: SerialPort) -> SerialBus:
        """The shared bus for this port, opened on first use; settings must match."""
        key = bus_key(settings.port)
        bus = cls._buses.get(key)
        if bus is not None and _serial_key(bus.settings) != _serial_key(settings):
            raise ConnectorError(
                f"{settings.port} is already open with other serial settings "
                f"({_serial_key(bus.settings)}): all slaves on one line share baud rate, "
                "data bits, parity and stop bits; make the connectors agree"
            )
        if bus is None:
            bus = cls._buses[key] = SerialBus(settings)
            bus.key = key
        bus._users += 1
        try:
            await bus._connect()
        except ConnectorError:
            await bus.release()
            raise
        return bus

    async def _connect(self) -> None:
        # Connectors sharing the port open together at start: only one may connect.
        async with self._connect_lock:
            if self.client.connected:
                return
            try:
                ok = await asyncio.wait_for(self.client.connect(), OPEN_TIMEOUT)
            except (TimeoutError, OSError):
                ok = False
        if not ok:
            raise ConnectorError(explain("modbus", Failure.PORT, f"cannot open {self.port}"))

    async def release(self) -> None:
        self._users -= 1
        if self._users <= 0:
            self.client.close()
            SerialBus._buses.pop(self.key, None)

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending and data:
            self._rx_seen = True
        return data

    async def transact(
        self, link: ModbusLink, fn: str, unit: int, *args: object, **kw: object
    ) -> ModbusPDU:
        """One request/response with the bus to itself, after the inter-frame silence."""
        async with self.lock:
            loop = asyncio.get_running_loop()
            wait = self._last_end + self.silence - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._rx_seen = False
            started = loop.time()
            self.counters["transactions"] += 1
            try:
                return await ModbusLink.call(link, fn, unit, *args, **kw)
            except UnitTimeout:
                self.counters["errors"] += 1
                if not self._rx_seen:
                    self.counters["timeouts"] += 1
                    raise
                # Bytes arrived but made no valid frame: CRC error or collision, not silence.
                self.counters["crc_errors"] += 1
                raise UnitTimeout(
                    explain("modbus", Failure.FRAMING, f"unit {unit} answered with a bad CRC")
                ) from None
            except ModbusExceptionResponse:
                self.counters["exceptions"] += 1
                raise
            finally:
                self._last_end = loop.time()
                self.busy_s += self._last_end - started

    def stats(self) -> dict[str, float | int]:
        """Per-bus counters and utilisation: share of wall time the line was in a transaction."""
        elapsed = max(time.monotonic() - self.opened_at, 1e-9)
        out: dict[str, float | int] = {
            k: self.counters[k]
            for k in ("transactions", "errors", "timeouts", "crc_errors", "exceptions")
        }
        out["busy_s"] = round(self.busy_s, 6)
        out["utilisation_pct"] = round(100.0 * self.busy_s / elapsed, 2)
        return out


class BusLink(ModbusLink):
    """A ModbusLink for one slave: transactions arbitrated by the bus, retried per slave."""

    def __init__(self, bus: SerialBus, device: ModbusRtuDevice) -> None:
        super().__init__(bus.client, device.timeout)
        self.bus = bus
        self.retries = device.retries

    async def call(self, fn: str, unit: int, *args: object, **kw: object) -> ModbusPDU:
        for attempt in range(self.retries + 1):
            try:
                return await self.bus.transact(self, fn, unit, *args, **kw)
            except UnitTimeout:
                if attempt == self.retries:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


@dataclass
class SlaveState:
    """Back-off of one slave: skipped until `retry_at` after `failures` failed polls."""

    failures: int = 0
    retry_at: float = 0.0
    skipped: int = 0
    last_error: str = ""
    plan: list[PlannedRead] = field(default_factory=list)

    @property
    def degraded(self) -> bool:
        return self.failures > 0


class ModbusRtuConnector:
    """PollingConnector + WritableConnector for one `modbus_rtu` config entry."""

    def __init__(self, config: ModbusRtuConfig) -> None:
        self.name = config.name
        self.config = config
        self.slaves: dict[str, SlaveState] = {d.name: SlaveState() for d in config.devices}
        for read in plan_all(config.devices, config.max_registers, config.max_gap):
            self.slaves[read.device.name].plan.append(read)
        self._devices = {d.name: d for d in config.devices}
        self._tags = {(d.name, t.name): (d, t) for d in config.devices for t in d.tags}
        self.bus: SerialBus | None = None
        self._write_lock = asyncio.Lock()  # bit-in-register writes are read-modify-write
        self._log = get_logger(connector=config.name, port=config.port)

    @property
    def poll_timeout(self) -> float:
        """Worst case: every request of every slave times out on every attempt, plus bus waits."""
        worst = sum(
            len(self.slaves[d.name].plan) * (d.retries + 1) * (d.timeout + 0.01)
            for d in self.config.devices
        )
        return 2 * worst + 1.0  # x2: other connectors on the same port take turns with us

    async def open(self) -> None:
        self.bus = await SerialBus.acquire(self.config)

    async def close(self) -> None:
        if self.bus is not None:
            bus, self.bus = self.bus, None
            await bus.release()

    async def poll(self) -> list[Reading]:
        bus = self._bus()
        readings: list[Reading] = []
        now = time.monotonic()
        for device in self.config.devices:
            state = self.slaves[device.name]
            if state.degraded and now < state.retry_at:
                state.skipped += 1  # degraded: its turn on the bus goes to the live slaves
                continue
            readings += await self._poll_slave(BusLink(bus, device), device, state)
        return readings

    async def _poll_slave(
        self, link: BusLink, device: ModbusRtuDevice, state: SlaveState
    ) -> list[Reading]:
        readings: list[Reading] = []
        queue, kept = list(state.plan), []
        while queue:
            read = queue.pop(0)
            ts = now_ns()
            try:
                values = await link.read(
                    device.unit, read.table, read.request.address, read.request.count
                )
            except UnitTimeout as exc:
                self._failed(device, state, str(exc))
                # The slave is silent: its other requests would only time out too.
                return readings + [
                    r for rest in [read, *queue] for r in bad_readings(rest, ts, str(exc))
                ]
            except ModbusExceptionResponse as exc:
                parts = split_refused(read) if exc.code == ILLEGAL_ADDRESS else []
                if len(parts) > 1:
                    queue[:0] = parts  # a bridged hole the slave does not map: read around it
                    continue
                readings += bad_readings(read, ts, str(exc))
            else:
                readings += read.readings(ts, values)
            kept.append(read)
        state.plan = kept + queue
        self._answered(device, state)
        return readings

    def _failed(self, device: ModbusRtuDevice, state: SlaveState, error: str) -> None:
        state.failures += 1
        delay = min(self.config.backoff_max, self.config.poll_interval * 2**state.failures)
        state.retry_at = time.monotonic() + delay
        state.last_error = error
        if state.failures == 1:
            self._log.warning(
                "slave degraded",
                device=device.name,
                unit=device.unit,
                error=error,
                retry_in_s=delay,
            )

    def _answered(self, device: ModbusRtuDevice, state: SlaveState) -> None:
        if state.degraded:
            self._log.info(
                "slave recovered", device=device.name, unit=device.unit, failed_polls=state.failures
            )
        state.failures, state.retry_at, state.last_error = 0, 0.0, ""

    async def write(self, device: str, tag: str, value: Value) -> Value:
        try:
            dev, spec = self._tags[(device, tag)]
        except KeyError:
            raise ValueError(f"connector {self.name} has no tag {device}/{tag}") from None
        async with self._write_lock:
            return await BusLink(self._bus(), dev).write(dev, spec, value)

    def _bus(self) -> SerialBus:
        if self.bus is None:
            raise ConnectorError(f"Modbus RTU port {self.config.port} is not open")
        return self.bus

    @property
    def counters(self) -> dict[str, int]:
        """Error counts by kind for ConnectorHealth.counters (bus counters are per port)."""
        stats = self.bus.stats() if self.bus else {}
        out = {k: int(v) for k, v in stats.items() if k not in ("busy_s", "utilisation_pct")}
        if stats:
            out["busy_ms"] = int(stats["busy_s"] * 1000)
            out["utilisation_pct"] = round(stats["utilisation_pct"])
        out["degraded_slaves"] = sum(s.degraded for s in self.slaves.values())
        return out

    def stats(self) -> dict[str, object]:
        """Bus counters plus each slave's back-off state, for status and `gateway check`."""
        slaves = {
            name: {"degraded": s.degraded, "failures": s.failures, "skipped": s.skipped}
            for name, s in self.slaves.items()
        }
        return {"bus": self.bus.stats() if self.bus else {}, "slaves": slaves}


def build(config: ModbusRtuConfig) -> ModbusRtuConnector:
    return ModbusRtuConnector(config)

"""Drives one connector: schedule, timeouts, reconnect back-off, health and state-change logs.

The runner is the one place where connector failures become health. Whatever a connector
raises (ConnectorError, a timeout, or a bug), the runner closes it, waits a jittered,
capped back-off and starts again; it never lets the failure escape to other runners.

When a connector goes down, the runner also emits one bad reading (no value, the reason) per
tag it reads, once per outage: every consumer of the readings (the edge, its UI, a cloud
export) then sees the last value is no longer current without having to read the status.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from operator import attrgetter
from typing import cast

import msgspec

from factory_common.logs import get_logger
from factory_common.wire import ConnectorHealth, DeviceHealth, Quality, Reading, now_ns
from gateway_image.firmware.clock import ClockWatch
from gateway_image.firmware.connectors.base import (
    ConnectorError,
    PollingConnector,
    StreamingConnector,
)
from gateway_image.firmware.exception_filter import ExceptionFilter
from gateway_image.firmware.tag_index import HasTags, tags_of

Sink = Callable[[list[Reading]], Awaitable[None]]
LATENESS_KEPT = 1000
# What a connector failure may look like; anything else is a bug, logged with its traceback.
EXPECTED = (ConnectorError, TimeoutError, OSError)
_DEVICE, _TS, _QUALITY = attrgetter("device"), attrgetter("ts"), attrgetter("quality")
_GOOD = {Quality.GOOD}


class Backoff:
    """Exponential back-off with jitter, so gateways restarted together do not retry in step."""

    def __init__(self, initial: float = 0.5, cap: float = 30.0, rng: random.Random | None = None):
        self.initial, self.cap, self.attempt = initial, cap, 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        base = min(self.cap, self.initial * 2**self.attempt)
        self.attempt += 1
        return base * (0.5 + 0.5 * self._rng.random())

    def reset(self) -> None:
        self.attempt = 0


class _Health:
    """Mutable counters behind `ConnectorRunner.health()`."""

    def __init__(self, name: str, type_: str) -> None:
        self.name, self.type = name, type_
        self.state = "starting"
        self.last_success: int | None = None
        self.polls = self.errors = self.readings = self.overruns = self.clock_jumps = 0
        self.latency_ms: float | None = None
        self.last_error = ""
        self.devices: dict[str, DeviceHealth] = {}
        self.all_good = True  # every reading of the last batch recorded was good

    def record(self, readings: list[Reading]) -> list[tuple[str, str, DeviceHealth]]:
        """Per-device state from one batch: up (all good), degraded (some bad), down (all bad).

        Returns (device, old state, new health) for every device whose state changed, and
        sets `all_good`. Runs on every poll's readings: per reading it only takes attributes
        in C (map, set), and a Python loop only for what a batch of several devices needs.
        """
        changes = []
        self.readings += len(readings)
        self.all_good = True
        devices = dict.fromkeys(map(_DEVICE, readings))
        by_device: dict[str, list[Reading]]
        if len(devices) == 1:
            by_device = dict.fromkeys(devices, readings)
        else:
            by_device = {device: [] for device in devices}
            for reading in readings:
                by_device[reading.device].append(reading)
        for device, items in by_device.items():
            good = set(map(_QUALITY, items)) == _GOOD
            bad = [] if good else [r for r in items if r.quality is not Quality.GOOD]
            self.all_good = self.all_good and good
            old = self.devices.get(device, DeviceHealth(state="starting"))
            state = "up" if not bad else "down" if len(bad) == len(items) else "degraded"
            new = DeviceHealth(
                state=state,
                last_success=max(map(_TS, items)) if len(bad) < len(items) else old.last_success,
                errors=old.errors + len(bad),
                last_error=bad[-1].reason if bad else old.last_error,
            )
            self.devices[device] = new
            if state != old.state:
                changes.append((device, old.state, new))
        return changes

    def all_devices_down(self) -> None:
        self.devices = {
            name: DeviceHealth("down", d.last_success, d.errors, d.last_error)
            for name, d in self.devices.items()
        }

    def snapshot(self) -> ConnectorHealth:
        return ConnectorHealth(
            name=self.name,
            type=self.type,
            state=self.state,
            last_success=self.last_success,
            polls=self.polls,
            errors=self.errors,
            readings=self.readings,
            latency_ms=self.latency_ms,
            last_error=self.last_error,
            devices=dict(self.devices),
            clock_jumps=self.clock_jumps,
        )


def describe(exc: BaseException) -> str:
    text = str(exc)
    return text if text else type(exc).__name__


class ConnectorRunner:
    """Runs one polling or streaming connector until cancelled; see the module docstring."""

    def __init__(
        self,
        connector: PollingConnector | StreamingConnector,
        sink: Sink,
        *,
        gateway: str,
        connector_type: str,
        interval: float = 1.0,
        poll_timeout: float | None = None,
        open_timeout: float = 10.0,
        backoff: Backoff | None = None,
        settle: float = 1.0,
        exception_filter: ExceptionFilter | None = None,
        clock: ClockWatch | None = None,
        tags: list[tuple[str, str]] | None = None,
    ) -> None:
        self.connector = connector
        self.name = connector.name
        self.interval = interval
        # A connector may know its own worst case (e.g. Modbus: one timeout per unit).
        self.poll_timeout = (
            poll_timeout or getattr(connector, "poll_timeout", None) or max(2 * interval, 5.0)
        )
        self.open_timeout = open_timeout
        self.backoff = backoff or Backoff()
        self.settle = settle
        self.overruns = 0
        # Seconds each of the last LATENESS_KEPT polls started after its tick (the bench's
        # schedule figures; the sink returns at once, so the disk cannot make this grow).
        self.lateness: deque[float] = deque(maxlen=LATENESS_KEPT)
        self._sink = sink
        self._h = _Health(connector.name, connector_type)
        self._log = get_logger(gateway=gateway, connector=connector.name)
        self._down_since: float | None = None
        self._sink_failing = False
        self.filter = exception_filter
        self.clock = clock or ClockWatch()
        # Held for each poll; a command's write takes it too, so a write never interleaves
        # with this connector's own polling (see commands.py).
        self.io_lock = asyncio.Lock()
        # (device, tag) of every tag this connector reads: the config's, plus any it reported
        # (streams whose tags come from the data). Each gets a bad reading when it goes down.
        self._tags: dict[tuple[str, str], None] = dict.fromkeys(tags or [])
        # Set by stop(): the loops end at their next turn even if a library swallowed the
        # cancel that shutdown sent (see app.cancel_all), and nothing is reported as down.
        self.stopping = False

    def stop(self) -> None:
        """Ask the runner to end after the poll in hand; the caller still cancels its task."""
        self.stopping = True

    def health(self) -> ConnectorHealth:
        """Health for the status message, with the connector's own error counts by kind."""
        counters = dict(getattr(self.connector, "counters", None) or {})
        if self.overruns:
            counters["poll_overruns"] = self.overruns
        return msgspec.structs.replace(self._h.snapshot(), counters=counters)

    @property
    def state(self) -> str:
        return self._h.state

    async def run(self) -> None:
        """Run the connector until cancelled, restarting it with back-off whenever it fails."""
        while not self.stopping:
            error: Exception | None = None
            try:
                if isinstance(self.connector, PollingConnector):
                    await self._poll_session(self.connector)
                else:
                    await self._stream_session(self.connector)
                reason = "connector stopped without an error"
            except EXPECTED as exc:
                reason = describe(exc)
            except Exception as exc:  # a connector bug must not stop the gateway
                reason, error = f"{type(exc).__name__}: {exc}", exc
            if self.stopping:
                break
            if self._went_down(reason, error):
                await self._announce_down()
            await self._close()
            await asyncio.sleep(self.backoff.next_delay())
        await self._close()

    async def _poll_session(self, connector: PollingConnector) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops an outside cancel that
        # arrives as the awaited call finishes, and the runner would go on after a shutdown.
        async with asyncio.timeout(self.open_timeout):
            await connector.open()
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while not self.stopping:
            started = loop.time()
            self.lateness.append(started - next_tick)
            try:
                async with self.io_lock, asyncio.timeout(self.poll_timeout):
                    readings = await connector.poll()
            except TimeoutError:
                raise ConnectorError(f"poll did not finish within {self.poll_timeout:g}s") from None
            readings = self._check_clock(readings)
            self._succeeded(readings, (loop.time() - started) * 1000)
            await self._deliver(self._filtered(readings))
            next_tick = self._next_tick(next_tick + self.interval, loop.time())
            await asyncio.sleep(next_tick - loop.time())

    def _next_tick(self, due: float, now: float) -> float:
        """Fixed rate without drift; ticks already missed are skipped and counted, not bunched."""
        if now <= due:
            return due
        missed = int((now - due) // self.interval) + 1
        if not self.overruns:
            self._log.info(
                "poll overran its interval",
                interval=self.interval,
                hint="raise poll_interval or split the connector",
            )
        self.overruns += missed
        return due + missed * self.interval

    async def _stream_session(self, connector: StreamingConnector) -> None:
        # A quiet stream (a door switch that never moves) is healthy once it has run a while.
        timer = asyncio.get_running_loop().call_later(self.settle, self._stream_settled)
        tick = self.filter.tick if self.filter is not None else None
        alive = asyncio.create_task(self._report_due(tick)) if tick else None
        try:
            await connector.run(self._emit)
        finally:
            timer.cancel()
            if alive is not None:
                alive.cancel()

    async def _emit(self, readings: list[Reading]) -> None:
        readings = self._check_clock(readings)
        self._succeeded(readings, None)
        await self._deliver(self._filtered(readings))

    async def _report_due(self, tick: float) -> None:
        """Streams fall silent: held-back changes and alive reports are sent from here."""
        assert self.filter is not None
        while True:
            await asyncio.sleep(tick)
            await self._deliver(self.filter.due(time.monotonic(), now_ns()))

    def _filtered(self, readings: list[Reading]) -> list[Reading]:
        if self.filter is None or not self.filter.active:
            return readings
        return self.filter.apply(readings, time.monotonic())

    def _check_clock(self, readings: list[Reading]) -> list[Reading]:
        """A cycle during which the wall clock jumped has untrustworthy timestamps: flag it."""
        jump = self.clock.check()
        if jump is None:
            return readings
        self._h.clock_jumps += 1
        self._log.warning("clock_jump", jump_s=round(jump, 3), readings=len(readings))
        return [
            msgspec.structs.replace(r, quality=Quality.UNCERTAIN, reason="clock_jump")
            if r.quality is Quality.GOOD
            else r
            for r in readings
        ]

    def _stream_settled(self) -> None:
        if self._h.state in ("starting", "down"):
            self._came_up("up")

    def _succeeded(self, readings: list[Reading], latency_ms: float | None) -> None:
        for r in readings:
            self._tags.setdefault((r.device, r.tag))
        h = self._h
        h.polls += 1
        h.last_success = now_ns()
        if latency_ms is not None:
            h.latency_ms = round(latency_ms, 3)
        for device, old, new in h.record(readings):
            self._log_device(device, old, new)
        state = "up" if h.all_good else "degraded"
        if h.state in ("starting", "down"):
            self._came_up(state)
        h.state = state

    def _came_up(self, state: str) -> None:
        if self._h.state == "down" and self._down_since is not None:
            down_for = round(time.monotonic() - self._down_since, 3)
            self._log.info("connector recovered", down_s=down_for)
        else:
            self._log.info("connector up")
        self._h.state = state
        self._down_since = None
        self.backoff.reset()

    def _log_device(self, device: str, old: str, new: DeviceHealth) -> None:
        if new.state == "down":
            self._log.warning("device unavailable", device=device, error=new.last_error)
        elif old == "down":
            self._log.info("device recovered", device=device, state=new.state)

    def _went_down(self, error: str, exc: Exception | None) -> bool:
        """Record a failure; True when the connector was not down already."""
        h = self._h
        h.errors += 1
        h.last_error = error
        if h.state == "down":
            return False
        # Logged once per outage; later failed attempts only count in health.
        extra = {"exc_info": exc} if exc is not None else {}
        self._log.warning("connector unavailable", error=error, **extra)
        self._down_since = time.monotonic()
        h.state = "down"
        h.all_devices_down()
        return True

    def down_readings(self, ts: int) -> list[Reading]:
        """One bad reading per tag, saying why: the last value is no longer current."""
        reason = f"connector down: {self._h.last_error}"[:200]
        return [
            Reading(device=d, tag=t, ts=ts, value=None, quality=Quality.BAD, reason=reason)
            for d, t in self._tags
        ]

    async def _announce_down(self) -> None:
        if self.filter is not None:
            self.filter.forget()
        await self._deliver(self.down_readings(now_ns()))

    async def _deliver(self, readings: list[Reading]) -> None:
        if not readings:
            return
        try:
            await self._sink(readings)
        except Exception as exc:  # a sink failure is not a device failure
            self._h.last_error = f"sink: {describe(exc)}"
            if not self._sink_failing:
                self._log.error("sink refused readings", error=describe(exc), exc_info=exc)
            self._sink_failing = True
            return
        if self._sink_failing:
            self._log.info("sink accepts readings again")
        self._sink_failing = False

    async def _close(self) -> None:
        close = getattr(self.connector, "close", None)
        if close is None:
            return
        try:
            async with asyncio.timeout(self.open_timeout):
                await close()
        except Exception as exc:  # a failing close must not block the restart
            self._log.debug("close failed", error=describe(exc))


def runner_for(config: object, sink: Sink, gateway: str) -> ConnectorRunner:
    """Build a connector from one `connectors:` entry and wrap it in a runner."""
    from gateway_image.firmware.connectors.registry import build_connector

    connector = build_connector(config)  # type: ignore[arg-type]
    return ConnectorRunner(
        connector,
        sink,
        gateway=gateway,
        connector_type=str(getattr(config, "type", "unknown")),
        interval=float(getattr(config, "poll_interval", 1.0)),
        exception_filter=ExceptionFilter.from_config(config),
        tags=[(t.device, t.tag) for t in tags_of(cast(HasTags, config))],
    )

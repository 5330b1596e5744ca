"""GPIO connector (gpiozero): debounced inputs, pulse counters with rate, verified outputs."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from gpiozero import DigitalInputDevice, DigitalOutputDevice, GPIOZeroError
from gpiozero.pins import Factory

from factory_common.logs import get_logger
from factory_common.wire import Reading, Value, now_ns
from gateway_image.firmware.connectors.base import ConnectorError, Emit
from gateway_image.firmware.connectors.gpio.config import (
    GpioConfig,
    GpioCounter,
    GpioInput,
    GpioOutput,
    PinFactory,
)

_FACTORIES = {
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"),  # Pi 5 and current Raspberry Pi OS
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"),
    "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
    "native": ("gpiozero.pins.native", "NativeFactory"),
    "mock": ("gpiozero.pins.mock", "MockFactory"),
}


def make_pin_factory(kind: PinFactory) -> Factory | None:
    """The configured gpiozero pin factory; None lets gpiozero pick the best one on a Pi."""
    if kind == "auto":
        return None
    module, cls = _FACTORIES[kind]
    try:
        return getattr(importlib.import_module(module), cls)()
    except (ImportError, OSError, RuntimeError, GPIOZeroError) as exc:
        # Debian's python3-lgpio is invisible to the venv or container the gateway runs in;
        # the gateway extra brings lgpio itself on 64-bit Raspberry Pi OS (linux aarch64).
        raise ConnectorError(
            f"GPIO pin factory {kind!r} is not available here ({exc}); on a Raspberry Pi "
            "with 64-bit Raspberry Pi OS use pin_factory: lgpio (installed with the gateway "
            "extra: pip install 'factory-edge[gateway]'), or set pin_factory: mock to run "
            "without GPIO hardware"
        ) from None


@dataclass
class _Line:
    """One input pin: raw level as last seen, and the debounced level we report."""

    spec: GpioInput | GpioCounter
    device: DigitalInputDevice
    stable: bool
    raw: bool
    raw_ts: int = 0
    timer: asyncio.TimerHandle | None = None


@dataclass
class _Output:
    spec: GpioOutput
    device: DigitalOutputDevice
    readback: DigitalInputDevice | None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class GpioConnector:
    """StreamingConnector and WritableConnector over the Pi's header pins."""

    def __init__(self, config: GpioConfig, pin_factory: Factory | None = None) -> None:
        self.name = config.name
        self.config = config
        self.device = config.device_name
        self.pin_factory = pin_factory
        # Counts live on the instance, not in run(): a connector restarted by the runner
        # keeps counting up, so a count is monotonic for the whole boot.
        self.counts: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()  # edges, bounces (glitches filtered)
        self._pulses: dict[str, deque[float]] = {c.name: deque() for c in config.counters}
        self._started = time.monotonic()
        self._lines: list[_Line] = []
        self._outputs: dict[str, _Output] = {}
        self._pending: list[Reading] = []
        self._wake = asyncio.Event()
        self._log = get_logger(connector=config.name)

    async def run(self, emit: Emit) -> None:
        loop = asyncio.get_running_loop()
        if self.pin_factory is None:
            self.pin_factory = make_pin_factory(self.config.pin_factory)
        try:
            self._open(loop)
            await self._report_loop(emit)
        finally:
            self._close()

    async def probe(self) -> list[Reading]:
        """Claim the pins, read every input, count and output once, release them: `--probe`."""
        if self.pin_factory is None:
            self.pin_factory = make_pin_factory(self.config.pin_factory)
        try:
            self._open(asyncio.get_running_loop())
            ts = now_ns()
            counts = [
                Reading(self.device, c.name, ts, self.counts[c.name]) for c in self.config.counters
            ]
            readings, self._pending = self._pending + counts, []
            return readings
        finally:
            self._close()

    def _open(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            specs: list[GpioInput | GpioCounter] = [*self.config.inputs, *self.config.counters]
            for spec in specs:
                self._lines.append(self._open_input(spec, loop))
            for out in self.config.outputs:
                self._outputs[out.name] = self._open_output(out)
        except GPIOZeroError as exc:
            raise ConnectorError(f"GPIO setup failed: {exc}; check pin numbers (BCM)") from None
        ts = now_ns()
        self._pending += [
            Reading(self.device, ln.spec.name, ts, ln.stable)
            for ln in self._lines
            if isinstance(ln.spec, GpioInput)
        ]
        self._pending += [
            self._output_reading(o, o.device.is_active) for o in self._outputs.values()
        ]

    def _open_input(self, spec: GpioInput | GpioCounter, loop: asyncio.AbstractEventLoop) -> _Line:
        # bounce_time is not passed to gpiozero: its meaning differs per pin factory (lockout
        # on RPi.GPIO, none on MockFactory). Debouncing here behaves the same everywhere.
        device = DigitalInputDevice(
            spec.pin,
            pull_up=spec.pull_up,
            active_state=spec.active_high,
            pin_factory=self.pin_factory,
        )
        level = bool(device.is_active)
        line = _Line(spec, device, stable=level, raw=level)
        device.when_activated = self._bridge(loop, line, True)
        device.when_deactivated = self._bridge(loop, line, False)
        return line

    def _bridge(
        self, loop: asyncio.AbstractEventLoop, line: _Line, level: bool
    ) -> Callable[[], None]:
        """The one crossing from gpiozero's callback threads into the event loop."""

        def callback() -> None:
            loop.call_soon_threadsafe(self._edge, line, level, now_ns())

        return callback

    def _open_output(self, spec: GpioOutput) -> _Output:
        device = DigitalOutputDevice(
            spec.pin,
            active_high=spec.active_high,
            initial_value=spec.initial,
            pin_factory=self.pin_factory,
        )
        readback = None
        if spec.readback_pin is not None:
            readback = DigitalInputDevice(
                spec.readback_pin, pull_up=spec.readback_pull_up, pin_factory=self.pin_factory
            )
        return _Output(spec, device, readback)

    def _close(self) -> None:
        for line in self._lines:
            if line.timer is not None:
                line.timer.cancel()
            line.device.close()
        for out in self._outputs.values():
            # Closing returns the pin to input: the driver's own pull decides the idle state.
            out.device.close()
            if out.readback is not None:
                out.readback.close()
        self._lines, self._outputs = [], {}

    # ------------------------------------------------------------ inputs (event loop only)

    def _edge(self, line: _Line, level: bool, ts: int) -> None:
        self.counters["edges"] += 1
        line.raw, line.raw_ts = level, ts
        if line.timer is not None:
            line.timer.cancel()
            line.timer = None
        bounce = line.spec.bounce_time or 0.0
        if bounce > 0:
            # Stable-time debounce: the level must hold for bounce_time before it counts.
            line.timer = asyncio.get_running_loop().call_later(bounce, self._settle, line)
        else:
            self._settle(line)

    def _settle(self, line: _Line) -> None:
        line.timer = None
        if line.raw == line.stable:
            self.counters["bounces"] += 1  # a glitch that came back: filtered
            return
        line.stable = line.raw
        if isinstance(line.spec, GpioCounter):
            if line.stable:
                self.counts[line.spec.name] += 1
                self._pulses[line.spec.name].append(time.monotonic())
            return
        self._pending.append(Reading(self.device, line.spec.name, line.raw_ts, line.stable))
        self._wake.set()

    # ------------------------------------------------------------ reporting

    async def _report_loop(self, emit: Emit) -> None:
        due = {c.name: time.monotonic() for c in self.config.counters}
        while True:
            if self._pending:
                batch, self._pending = self._pending, []
                await emit(batch)
            now = time.monotonic()
            for counter in self.config.counters:
                if now >= due[counter.name]:
                    self._pending += self._counter_readings(counter, now)
                    due[counter.name] = now + counter.report_interval
            if self._pending:
                continue
            timeout = min(due.values()) - now if due else None
            self._wake.clear()
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that
            # arrives as the event is set, and the connector would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    def _counter_readings(self, spec: GpioCounter, now: float) -> list[Reading]:
        pulses = self._pulses[spec.name]
        while pulses and pulses[0] < now - spec.rate_window:
            pulses.popleft()
        # Just after boot the window is not full yet: average over what has elapsed.
        span = min(spec.rate_window, max(now - self._started, 1.0))
        ts = now_ns()
        return [
            Reading(self.device, spec.name, ts, self.counts[spec.name]),
            Reading(self.device, spec.rate_name, ts, round(len(pulses) * 60.0 / span, 3)),
        ]

    # ------------------------------------------------------------ outputs

    def _output_reading(self, out: _Output, state: bool) -> Reading:
        return Reading(self.device, out.spec.name, now_ns(), bool(state))

    async def _read_back(self, out: _Output) -> bool:
        if out.readback is None:
            return bool(out.device.is_active)  # the pin latch: proves the GPIO, not the load
        await asyncio.sleep(out.spec.readback_delay)  # relay contacts take ~10 ms to settle
        return bool(out.readback.is_active)

    async def write(self, device: str, tag: str, value: Value) -> Value:
        """Set an output and return its read-back; a pulse output returns the level it pulsed."""
        names = [o.name for o in self.config.outputs]
        if device != self.device or tag not in names:
            # ValueError: refused before anything reached a pin (commands.py relies on it).
            raise ValueError(f"connector {self.name} has no GPIO output {device}/{tag}: {names}")
        if not isinstance(value, bool | int) or value not in (0, 1):
            raise ValueError(f"GPIO output {tag} takes true/false, got {value!r}")
        out = self._outputs.get(tag)
        if out is None:
            raise ConnectorError(f"GPIO connector {self.name} is not running: cannot set {tag}")
        async with out.lock:  # a pulse in progress finishes before the next write starts
            out.device.value = bool(value)
            readback = await self._read_back(out)
            self._report(out, readback)
            self._log.info("gpio_write", tag=tag, value=bool(value), readback=readback)
            if value and out.spec.pulse:
                await asyncio.sleep(out.spec.pulse)
                out.device.off()
                self._report(out, await self._read_back(out))
            return readback

    def _report(self, out: _Output, state: bool) -> None:
        self._pending.append(self._output_reading(out, state))
        self._wake.set()


def build(config: GpioConfig) -> GpioConnector:
    return GpioConnector(config)

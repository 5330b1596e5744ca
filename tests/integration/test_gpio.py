"""GPIO connector on gpiozero's MockFactory: debounced edges, counted pulses, verified writes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from gpiozero.pins.mock import MockConnectedPin, MockFactory

from factory_common.wire import Reading
from gateway_image.firmware.connectors.base import (
    ConnectorError,
    StreamingConnector,
    WritableConnector,
)
from gateway_image.firmware.connectors.gpio.config import GpioConfig
from gateway_image.firmware.connectors.gpio.connector import GpioConnector

DOOR, PARTS, LAMP, TRIGGER, LAMP_SENSE = 17, 27, 22, 23, 24


class Collector:
    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.changed = asyncio.Event()

    async def __call__(self, readings: list[Reading]) -> None:
        self.readings += readings
        self.changed.set()

    def values(self, tag: str) -> list[object]:
        return [r.value for r in self.readings if r.tag == tag]

    async def until(self, check: Callable[[], bool], within: float = 3.0) -> None:
        async with asyncio.timeout(within):
            while not check():
                self.changed.clear()
                await self.changed.wait()


CONFIG = {
    "type": "gpio",
    "name": "cell-io",
    "device": "cell1",
    "pin_factory": "mock",
    "inputs": [{"name": "door_closed", "pin": DOOR, "pull_up": True, "bounce_time": 0.05}],
    "counters": [
        {
            "name": "parts",
            "pin": PARTS,
            "pull_up": False,
            "bounce_time": 0.01,
            "rate_window": 0.5,
            "report_interval": 0.05,
        }
    ],
    "outputs": [
        {
            "name": "defect_lamp",
            "pin": LAMP,
            "driver": "relay",
            "readback_pin": LAMP_SENSE,
            "readback_pull_up": False,
        },
        {"name": "label_trigger", "pin": TRIGGER, "driver": "opto", "pulse": 0.1},
    ],
}


@pytest.fixture
def factory() -> MockFactory:
    pins = MockFactory()
    # The lamp relay's contact is wired back to GPIO24: a real read-back, not the pin latch.
    pins.pin(LAMP, pin_class=MockConnectedPin, input_pin=pins.pin(LAMP_SENSE))
    return pins


@pytest.fixture
async def running(factory: MockFactory) -> AsyncIterator[tuple[GpioConnector, Collector]]:
    connector = GpioConnector(GpioConfig.model_validate(CONFIG), pin_factory=factory)
    sink = Collector()
    task = asyncio.create_task(connector.run(sink))
    await sink.until(lambda: "door_closed" in {r.tag for r in sink.readings})
    yield connector, sink
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_protocols_and_initial_state(running: tuple[GpioConnector, Collector]) -> None:
    connector, sink = running
    assert isinstance(connector, StreamingConnector)
    assert isinstance(connector, WritableConnector)
    # Pull-up, contact open: the pin is high, the door switch inactive.
    assert sink.values("door_closed") == [False]
    assert sink.values("defect_lamp") == [False]
    assert {r.device for r in sink.readings} == {"cell1"}


async def test_input_edges_are_debounced(
    running: tuple[GpioConnector, Collector], factory: MockFactory
) -> None:
    connector, sink = running
    door = factory.pin(DOOR)
    # Contact chatter on closing: several edges within the 50 ms bounce time -> one change.
    for _ in range(3):
        door.drive_low()
        door.drive_high()
    door.drive_low()
    await sink.until(lambda: sink.values("door_closed") == [False, True])
    # A 5 ms spike while closed never reaches the readings.
    door.drive_high()
    await asyncio.sleep(0.005)
    door.drive_low()
    await asyncio.sleep(0.15)
    assert sink.values("door_closed") == [False, True]
    assert connector.counters["bounces"] >= 1
    door.drive_high()
    await sink.until(lambda: sink.values("door_closed") == [False, True, False])


async def test_edges_from_another_thread_cross_into_the_loop(
    running: tuple[GpioConnector, Collector], factory: MockFactory
) -> None:
    """On a Pi, gpiozero calls back from its own threads: the bridge must carry those edges."""
    _, sink = running
    door = factory.pin(DOOR)
    await asyncio.to_thread(door.drive_low)
    await sink.until(lambda: sink.values("door_closed") == [False, True])
    await asyncio.to_thread(door.drive_high)
    await sink.until(lambda: sink.values("door_closed") == [False, True, False])


async def test_counter_counts_pulses_and_rate(
    running: tuple[GpioConnector, Collector], factory: MockFactory
) -> None:
    connector, sink = running
    await asyncio.sleep(0.5)  # let the rate window fill, so the rate is over exactly 0.5 s
    sensor = factory.pin(PARTS)
    for _ in range(5):
        sensor.drive_high()
        sensor.drive_low()  # chatter inside the 10 ms bounce time: not a part
        sensor.drive_high()
        await asyncio.sleep(0.02)
        sensor.drive_low()
        await asyncio.sleep(0.02)
    await sink.until(lambda: 5 in sink.values("parts"))
    assert connector.counts["parts"] == 5
    counts = sink.values("parts")
    assert counts == sorted(counts)  # monotonic
    await sink.until(lambda: 5 * 60 / 0.5 in sink.values("parts_rate"))
    # After the window passes without parts the rate drops back to zero; the count stays.
    await sink.until(lambda: sink.values("parts_rate")[-1] == 0.0)
    assert sink.values("parts")[-1] == 5


async def test_output_write_is_read_back(
    running: tuple[GpioConnector, Collector], factory: MockFactory
) -> None:
    connector, sink = running
    assert await connector.write("cell1", "defect_lamp", True) is True
    assert factory.pin(LAMP).state is True and factory.pin(LAMP_SENSE).state is True
    assert await connector.write("cell1", "defect_lamp", 0) is False
    await sink.until(lambda: sink.values("defect_lamp") == [False, True, False])


async def test_pulse_output_switches_off_after_its_pulse(
    running: tuple[GpioConnector, Collector], factory: MockFactory
) -> None:
    connector, sink = running
    trigger = factory.pin(TRIGGER)
    trigger.clear_states()
    started = asyncio.get_running_loop().time()
    assert await connector.write("cell1", "label_trigger", True) is True
    assert asyncio.get_running_loop().time() - started >= 0.1
    assert [s.state for s in trigger.states] == [False, True, False]
    assert trigger.states[2].timestamp == pytest.approx(0.1, abs=0.05)
    await sink.until(lambda: sink.values("label_trigger") == [False, True, False])


async def test_bad_writes_are_refused(running: tuple[GpioConnector, Collector]) -> None:
    connector, _ = running
    with pytest.raises(ValueError, match="no GPIO output"):
        await connector.write("cell1", "door_closed", True)
    with pytest.raises(ValueError, match="no GPIO output"):
        await connector.write("other", "defect_lamp", True)
    with pytest.raises(ValueError, match="true/false"):
        await connector.write("cell1", "defect_lamp", 2)


async def test_write_before_run_is_a_connector_error(factory: MockFactory) -> None:
    connector = GpioConnector(GpioConfig.model_validate(CONFIG), pin_factory=factory)
    with pytest.raises(ConnectorError, match="not running"):
        await connector.write("cell1", "defect_lamp", True)


async def test_probe_reads_every_pin_once_and_releases_them(factory: MockFactory) -> None:
    # An opto module with its own resistor pulls the pin low when the door is closed.
    door = {"name": "door_closed", "pin": DOOR, "pull_up": None, "active_high": False}
    connector = GpioConnector(
        GpioConfig.model_validate(CONFIG | {"inputs": [door]}), pin_factory=factory
    )
    factory.pin(DOOR).drive_low()
    readings = {r.tag: r.value for r in await connector.probe()}
    assert readings == {
        "door_closed": True,
        "parts": 0,
        "defect_lamp": False,
        "label_trigger": False,
    }
    # The pins were released: the connector can claim them again.
    assert {r.tag for r in await connector.probe()} == set(readings)


async def test_counts_survive_a_connector_restart(factory: MockFactory) -> None:
    connector = GpioConnector(GpioConfig.model_validate(CONFIG), pin_factory=factory)
    for _ in range(2):
        sink = Collector()
        task = asyncio.create_task(connector.run(sink))
        await sink.until(lambda s=sink: bool(s.values("parts")))
        factory.pin(PARTS).drive_high()
        await asyncio.sleep(0.03)
        factory.pin(PARTS).drive_low()
        await asyncio.sleep(0.03)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert connector.counts["parts"] == 2


def test_config_rejects_pin_reuse_and_missing_driver() -> None:
    reuse = {
        "type": "gpio",
        "name": "io",
        "inputs": [{"name": "a", "pin": 5}],
        "outputs": [{"name": "b", "pin": 5, "driver": "relay"}],
    }
    with pytest.raises(
        ValueError, match=r"outputs\.0\.pin\n  GPIO5 \(header pin 29\) is wired to two things"
    ):
        GpioConfig.model_validate(reuse)
    no_driver = {**reuse, "outputs": [{"name": "b", "pin": 6}]}
    with pytest.raises(ValueError, match=r"outputs\.0\.driver\n  Field required"):
        GpioConfig.model_validate(no_driver)

"""Serial line connector through a socat pty pair: instrument writes lines, gateway reads them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import serial

from factory_common.wire import Quality, Reading
from gateway_image.firmware.connectors.base import ConnectorError, StreamingConnector
from gateway_image.firmware.connectors.serial_line.config import SerialLineConfig
from gateway_image.firmware.connectors.serial_line.connector import build
from tests.support.ptypair import PtyPair


def scale_config(port: Path, **extra: object) -> SerialLineConfig:
    return SerialLineConfig.model_validate(
        {
            "type": "serial_line",
            "name": "scale-1",
            "device": "scale1",
            "port": str(port),
            "baudrate": 9600,
            "framing": {"terminator": "\r\n", "max_length": 40},
            "pattern": r"(?P<state>ST|US),GS,\s*(?P<weight>[-+]?\d+\.\d+)\s*kg",
            "tags": [
                {"name": "weight_g", "group": "weight", "scale": 1000, "unit": "g"},
                {"name": "state", "type": "str"},
                {"name": "count", "group": "state", "type": "int"},
            ],
            **extra,
        }
    )


class Collector:
    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.changed = asyncio.Event()

    async def __call__(self, readings: list[Reading]) -> None:
        self.readings += readings
        self.changed.set()

    async def wait_for(self, count: int, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while len(self.readings) < count:
                self.changed.clear()
                await self.changed.wait()


async def test_lines_become_readings_and_garbage_is_counted(pty: PtyPair) -> None:
    connector = build(scale_config(pty.b))
    assert isinstance(connector, StreamingConnector)
    sink = Collector()
    task = asyncio.create_task(connector.run(sink))
    instrument = serial.Serial(str(pty.a), 9600, timeout=1)
    try:
        await asyncio.sleep(0.2)  # let the connector open its end before the first line
        # Split mid-line to prove framing does not depend on read boundaries.
        for chunk in (
            b"ST,GS,  1.25",
            b"0 kg\r\n",
            b"\xff\xfe\x00noise\r\n",
            b"US,GS, 2.000 lb\r\n",
        ):
            instrument.write(chunk)
            instrument.flush()
            await asyncio.sleep(0.05)
        instrument.write(b"X" * 100 + b"\r\n" + b"US,GS, -0.500 kg\r\n")
        instrument.flush()
        await sink.wait_for(6)
    finally:
        instrument.close()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    by_tag = [(r.tag, r.value, r.quality) for r in sink.readings]
    assert by_tag[:2] == [("weight_g", 1250.0, Quality.GOOD), ("state", "ST", Quality.GOOD)]
    assert by_tag[2][0] == "count" and by_tag[2][2] is Quality.BAD  # "ST" is not an int
    assert by_tag[3:] == [
        ("weight_g", -500.0, Quality.GOOD),
        ("state", "US", Quality.GOOD),
        ("count", None, Quality.BAD),
    ]
    assert all(r.device == "scale1" for r in sink.readings)
    counts = connector.counters
    assert (counts["lines"], counts["not_ascii"], counts["no_match"], counts["overlong"]) == (
        2,
        1,
        1,
        1,
    )
    assert counts["bad_value"] == 2
    assert connector.garbled == 5


async def test_fixed_length_frames(pty: PtyPair) -> None:
    config = SerialLineConfig.model_validate(
        {
            "type": "serial_line",
            "name": "colour",
            "port": str(pty.b),
            "framing": {"terminator": None, "length": 8},
            "pattern": r"L(?P<l>\d{3})A(?P<a>[-+]\d{2})",
            "tags": [{"name": "l", "type": "int"}, {"name": "a", "type": "int"}],
        }
    )
    connector = build(config)
    sink = Collector()
    task = asyncio.create_task(connector.run(sink))
    try:
        await asyncio.sleep(0.2)
        with serial.Serial(str(pty.a), 9600) as instrument:
            instrument.write(b"L050A+12L099A-03")
            await sink.wait_for(4)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert [(r.device, r.tag, r.value) for r in sink.readings] == [
        ("colour", "l", 50),
        ("colour", "a", 12),
        ("colour", "l", 99),
        ("colour", "a", -3),
    ]


async def test_missing_port_is_a_connector_error_naming_it(tmp_path: Path) -> None:
    connector = build(scale_config(tmp_path / "ttyUSB9"))
    with pytest.raises(ConnectorError, match=r"ttyUSB9.*dialout"):
        await connector.run(Collector())


async def test_vanishing_port_ends_run_with_connector_error(pty: PtyPair) -> None:
    connector = build(scale_config(pty.b))
    task = asyncio.create_task(connector.run(Collector()))
    await asyncio.sleep(0.2)
    pty.stop()  # the USB adapter is unplugged
    with pytest.raises(ConnectorError, match="failed"):
        await asyncio.wait_for(task, 5)


async def test_probe_returns_the_first_good_line(pty: PtyPair) -> None:
    connector = build(scale_config(pty.b))
    probe = asyncio.create_task(connector.probe())
    await asyncio.sleep(0.2)
    with serial.Serial(str(pty.a), 9600) as instrument:
        # The port opened mid-line: the tail of a line comes first and is skipped.
        instrument.write(b"0 kg\r\nST,GS, 0.750 kg\r\n")
        readings = await asyncio.wait_for(probe, 5)
    assert [(r.tag, r.value) for r in readings[:2]] == [("weight_g", 750.0), ("state", "ST")]


async def test_probe_names_why_lines_are_garbled(pty: PtyPair) -> None:
    connector = build(scale_config(pty.b))
    probe = asyncio.create_task(connector.probe())
    await asyncio.sleep(0.2)
    with serial.Serial(str(pty.a), 9600) as instrument:
        instrument.write(b"\x8f\x0f\x1e\r\n" * 3)  # what a wrong baud rate looks like
        readings = await asyncio.wait_for(probe, 5)
    assert {r.tag for r in readings} == {"weight_g", "state", "count"}
    assert all(r.quality is Quality.BAD and r.reason.startswith("not_ascii") for r in readings)

"""Modbus RTU over a socat pty pair: three slaves on one "bus", one of them dead."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer

from factory_common.wire import Quality, Reading
from gateway_image.firmware.connectors.base import ConnectorError
from gateway_image.firmware.connectors.modbus.config import ModbusRtuConfig
from gateway_image.firmware.connectors.modbus.rtu import (
    ModbusRtuConnector,
    SerialBus,
    inter_frame_silence,
)
from gateway_image.firmware.runner import ConnectorRunner
from tests.support.modbus_server import UnitData
from tests.support.ptypair import PtyPair

LIVE_A, LIVE_B, DEAD, NOISY = 1, 2, 3, 4
INTERVAL = 0.2


class BusServer:
    """pymodbus RTU server on one pty answering two unit ids; logs every PDU it sees in order."""

    def __init__(self, port: Path) -> None:
        self.port = port
        self.events: list[tuple[float, str, int]] = []  # (time, "req"/"rsp", unit)
        self.units: dict[int, UnitData] = {}
        self._server: ModbusSerialServer | None = None

    def _trace(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not (sending and pdu.dev_id not in self.units):
            self.events.append((time.monotonic(), "rsp" if sending else "req", pdu.dev_id))
        return pdu

    def _silence_unknown(self, sending: bool, packet: bytes) -> bytes:
        # pymodbus 3.16's simulator answers unknown unit ids with exception 4 despite
        # ignore_missing_devices; on a real RS-485 line nobody answers. Drop those frames.
        if sending and packet and packet[0] not in self.units:
            return b""
        if sending and packet and packet[0] == NOISY:
            return packet[:-1] + bytes([packet[-1] ^ 0xFF])  # line noise: the CRC fails
        return packet

    async def start(self) -> None:
        self.units = {
            LIVE_A: UnitData(holding={0: [111, 112, 0, 0, 115]}),
            LIVE_B: UnitData(holding={0: [221, 222]}, coils={0: [True]}),
            NOISY: UnitData(holding={0: [441]}),
        }
        self._server = ModbusSerialServer(
            [data.simdevice(unit) for unit, data in self.units.items()],
            framer=FramerType.RTU,
            port=str(self.port),
            baudrate=9600,
            parity="N",  # Linux ptys refuse parity bits (EINVAL); the spec's default is E
            # A unit nobody serves stays silent, as on a real RS-485 line.
            ignore_missing_devices=True,
            trace_pdu=self._trace,
            trace_packet=self._silence_unknown,
        )
        await self._server.serve_forever(background=True)
        await asyncio.sleep(0.2)

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await server.shutdown()


@pytest.fixture
async def server(pty: PtyPair) -> AsyncIterator[BusServer]:
    bus = BusServer(pty.a)
    await bus.start()
    yield bus
    await bus.stop()


def rtu_config(port: Path, name: str, devices: list[dict]) -> ModbusRtuConfig:
    return ModbusRtuConfig.model_validate(
        {
            "type": "modbus_rtu",
            "name": name,
            "port": str(port),
            "baudrate": 9600,
            "parity": "N",
            "poll_interval": INTERVAL,
            "backoff_max": 5.0,
            "devices": devices,
        }
    )


def holding(name: str, address: int) -> dict:
    return {"name": name, "table": "holding", "address": address, "type": "uint16"}


def connectors(port: Path) -> tuple[ModbusRtuConnector, ModbusRtuConnector]:
    """Two connectors on the same port: only the shared bus arbiter keeps them apart."""
    first = rtu_config(
        port,
        "rtu-a",
        [
            {"name": "meter1", "unit": LIVE_A, "tags": [holding("v", 0), holding("w", 4)]},
            {
                "name": "ghost",
                "unit": DEAD,
                "timeout": 0.1,
                "retries": 1,
                "tags": [holding("x", 0)],
            },
        ],
    )
    second = rtu_config(
        port,
        "rtu-b",
        [
            {
                "name": "meter2",
                "unit": LIVE_B,
                "tags": [
                    holding("v", 0),
                    {"name": "run", "table": "coil", "address": 0, "writable": True},
                    holding("unmapped", 5000),  # the slave answers "illegal data address"
                ],
            }
        ],
    )
    return ModbusRtuConnector(first), ModbusRtuConnector(second)


async def run_for(seconds: float, *items: ModbusRtuConnector) -> list[Reading]:
    readings: list[Reading] = []

    async def sink(batch: list[Reading]) -> None:
        readings.extend(batch)

    runners = [
        ConnectorRunner(c, sink, gateway="gw", connector_type="modbus_rtu", interval=INTERVAL)
        for c in items
    ]
    tasks = [asyncio.create_task(r.run()) for r in runners]
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for connector in items:
        await connector.close()
    return readings


def polls(readings: list[Reading], device: str, tag: str) -> list[Reading]:
    return [r for r in readings if r.device == device and r.tag == tag]


async def test_live_slaves_keep_their_rate_while_the_dead_one_is_degraded(
    pty: PtyPair, server: BusServer
) -> None:
    first, second = connectors(pty.b)
    seconds = 3.0
    readings = await run_for(seconds, first, second)
    expected = seconds / INTERVAL
    for device in ("meter1", "meter2"):
        got = polls(readings, device, "v")
        gaps_dbg = [round((b.ts - a.ts) / 1e9, 3) for a, b in itertools.pairwise(got)]
        assert len(got) >= 0.75 * expected, (device, len(got), gaps_dbg)
        assert all(r.quality is Quality.GOOD for r in got)
        # No stall: consecutive polls stay one interval apart, even when the dead slave is
        # retried (its probe holds the bus for at most 2 x 50 ms).
        gaps = sorted((b.ts - a.ts) / 1e9 for a, b in itertools.pairwise(got))
        assert gaps[len(gaps) // 2] == pytest.approx(INTERVAL, rel=0.15), (device, gaps)
        assert gaps[-1] < 2.5 * INTERVAL, (device, gaps)
    assert {r.value for r in polls(readings, "meter1", "w")} == {115}
    # The dead slave was tried, degraded, and then skipped with a growing back-off.
    ghost = polls(readings, "ghost", "x")
    assert ghost and all(r.quality is Quality.BAD for r in ghost)
    assert len(ghost) <= 4  # at 0.4 s, 0.8 s, 1.6 s back-off: not once per poll
    slaves = first.stats()["slaves"]
    assert slaves["ghost"]["degraded"] and slaves["ghost"]["skipped"] >= expected / 2
    assert not slaves["meter1"]["degraded"]


async def test_frames_on_the_bus_never_interleave(pty: PtyPair, server: BusServer) -> None:
    first, second = connectors(pty.b)
    await run_for(2.0, first, second)
    events = server.events
    assert len(events) > 20
    silence = inter_frame_silence(first.config)
    for (t0, kind, unit), (t1, next_kind, next_unit) in itertools.pairwise(events):
        if kind == "req" and unit != DEAD:
            # A request to a live slave is answered before anything else is on the wire.
            assert (next_kind, next_unit) == ("rsp", unit), events
        if kind == "rsp":
            assert next_kind == "req", events  # never two responses in a row
            assert t1 - t0 >= 0.9 * silence  # the master waited the inter-frame silence
    # Every request the master sent arrived as a valid frame: no collisions, no CRC errors.
    total = sum(1 for _, kind, _ in events if kind == "req")
    bus_stats = first.stats()["bus"]  # the bus is shared: both connectors' transactions
    assert bus_stats == {} or bus_stats["crc_errors"] == 0
    assert total >= 20


async def test_exception_response_is_a_bad_reading_and_counted(
    pty: PtyPair, server: BusServer
) -> None:
    _, second = connectors(pty.b)
    await second.open()
    try:
        readings = await second.poll()
        stats = second.stats()["bus"]
        counters = second.counters
    finally:
        await second.close()
    unmapped = polls(readings, "meter2", "unmapped")
    assert len(unmapped) == 1 and unmapped[0].quality is Quality.BAD
    assert "Modbus exception 2" in unmapped[0].reason
    assert polls(readings, "meter2", "v")[0].value == 221
    assert stats["exceptions"] == 1 and stats["transactions"] >= 3
    assert 0 < stats["utilisation_pct"] <= 100
    assert counters["exceptions"] == 1 and counters["degraded_slaves"] == 0


async def test_write_coil_is_read_back(pty: PtyPair, server: BusServer) -> None:
    _, second = connectors(pty.b)
    await second.open()
    try:
        assert await second.write("meter2", "run", False) is False
        assert await second.write("meter2", "run", True) is True
    finally:
        await second.close()


async def test_mismatched_settings_on_one_port_are_refused(pty: PtyPair) -> None:
    first = rtu_config(pty.b, "one", [{"name": "m", "unit": 1, "tags": [holding("v", 0)]}])
    other = first.model_copy(update={"name": "two", "baudrate": 19200})
    a, b = ModbusRtuConnector(first), ModbusRtuConnector(other)
    await a.open()
    try:
        with pytest.raises(ConnectorError, match="other serial settings"):
            await b.open()
    finally:
        await a.close()
    assert not SerialBus._buses  # released: nothing keeps the port open


def test_inter_frame_silence_follows_the_spec() -> None:
    base = {"type": "modbus_rtu", "name": "x", "port": "/dev/null", "devices": []}
    slow = ModbusRtuConfig.model_construct(
        **base, baudrate=9600, bytesize=8, parity="E", stopbits=1
    )
    fast = ModbusRtuConfig.model_construct(
        **base, baudrate=115200, bytesize=8, parity="N", stopbits=1
    )
    assert inter_frame_silence(slow) == pytest.approx(3.5 * 11 / 9600)
    assert inter_frame_silence(fast) == 0.00175


async def test_a_noisy_slave_counts_crc_errors_and_is_degraded(
    pty: PtyPair, server: BusServer
) -> None:
    config = rtu_config(
        pty.b,
        "rtu-noise",
        [
            {"name": "meter1", "unit": LIVE_A, "tags": [holding("v", 0)]},
            {"name": "noisy", "unit": NOISY, "timeout": 0.1, "retries": 2}
            | {"tags": [holding("v", 0)]},
        ],
    )
    connector = ModbusRtuConnector(config)
    await connector.open()
    try:
        first = await connector.poll()
        second = await connector.poll()  # the noisy slave is skipped: back-off
        counters = connector.counters
    finally:
        await connector.close()
    noisy = [r for r in first if r.device == "noisy"]
    assert [r.quality for r in noisy] == [Quality.BAD]
    assert "garbled frame (bad CRC)" in noisy[0].reason
    assert counters["crc_errors"] == 3  # first try and two retries, each answered garbled
    assert counters["timeouts"] == 0 and counters["degraded_slaves"] == 1
    assert [r.device for r in second] == ["meter1"] and second[0].value == 111


async def test_connectors_on_one_port_open_together_and_share_the_bus(pty: PtyPair) -> None:
    first, second = connectors(pty.b)
    # Both runners open at gateway start; a second connect of the port would fail (locked).
    await asyncio.gather(first.open(), second.open())
    try:
        assert first.bus is second.bus and first.bus is not None
        assert first.bus.client.connected
    finally:
        await first.close()
        await second.close()
    assert not SerialBus._buses


async def test_lost_port_is_a_connector_error(pty: PtyPair, server: BusServer) -> None:
    _, second = connectors(pty.b)
    await second.open()
    try:
        assert polls(await second.poll(), "meter2", "v")[0].value == 221
        await server.stop()
        pty.stop()  # the USB adapter is unplugged
        with pytest.raises(ConnectorError):
            for _ in range(3):  # the loss may surface on the next transaction
                await asyncio.wait_for(second.poll(), 5)
                await asyncio.sleep(0.1)
    finally:
        await second.close()

"""Modbus TCP connector and runner against a real pymodbus server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient as PymodbusClient
from structlog.testing import capture_logs

from factory_common.wire import Quality, Reading
from gateway_image.firmware.connectors.base import ConnectorError
from gateway_image.firmware.connectors.modbus.coalesce import plan_reads
from gateway_image.firmware.connectors.modbus.config import ByteOrder, ModbusTcpConfig
from gateway_image.firmware.connectors.modbus.tcp import ModbusTcpConnector
from gateway_image.firmware.runner import Backoff, ConnectorRunner
from tests.support.modbus_server import ModbusTestServer, UnitData
from tests.unit.test_coalesce import Item, minimal_requests, scattered

# Values chosen to use every byte (so a wrong order cannot decode to the same number).
SAMPLES: dict[str, int | float] = {
    "int16": -12345,
    "uint16": 54321,
    "int32": -123456789,
    "uint32": 3456789012,
    "int64": -1234567890123456789,
    "uint64": 12345678901234567890,
    "float32": 123.456,
    "float64": -9876.54321,
}


def swap_bytes(words: list[int]) -> list[int]:
    return [((w & 0xFF) << 8) | (w >> 8) for w in words]


def reference_encode(value: Any, data_type: str, order: ByteOrder) -> list[int]:
    """pymodbus's own encoder (word order) plus a byte swap: independent of our codec."""
    words = PymodbusClient.convert_to_registers(
        value,
        PymodbusClient.DATATYPE[data_type.upper()],
        word_order="little" if order.word_swap else "big",
    )
    return swap_bytes(words) if order.byte_swap else words


def typed_layout() -> tuple[list[int], list[dict], dict[str, Any]]:
    """Holding registers from address 0: every type in every order, back to back."""
    registers: list[int] = []
    tags: list[dict] = []
    expected: dict[str, Any] = {}
    for data_type, value in SAMPLES.items():
        for order in ByteOrder:
            name = f"{data_type}_{order.value.lower()}"
            tags.append(
                {"name": name, "table": "holding", "address": len(registers), "type": data_type}
                | {"byte_order": order.value}
            )
            registers += reference_encode(value, data_type, order)
            expected[name] = value
    return registers, tags, expected


REGISTERS, TYPED_TAGS, EXPECTED = typed_layout()
TEXT = "ANOD-0042"
TEXT_WORDS = PymodbusClient.convert_to_registers(TEXT, PymodbusClient.DATATYPE.STRING)


def units() -> dict[int, UnitData]:
    return {
        1: UnitData(
            holding={
                0: REGISTERS,
                200: [0b1000_0000_0000_0100],
                300: [*TEXT_WORDS, 0],
                310: swap_bytes([*TEXT_WORDS, 0]),
                400: reference_encode(20.5, "float32", ByteOrder.CDAB),
            },
            input={0: [2150, 600]},
            coils={0: [True, False, True, False]},
            discrete={0: [False, True]},
        ),
        2: UnitData(holding={0: [7]}),
    }


def extra_tags() -> list[dict]:
    length = len(TEXT_WORDS) + 1
    return [
        {"name": "bit2", "table": "holding", "address": 200, "type": "bool", "bit": 2},
        {"name": "bit3", "table": "holding", "address": 200, "type": "bool", "bit": 3},
        {"name": "bit15", "table": "holding", "address": 200, "type": "bool", "bit": 15},
        {"name": "text", "table": "holding", "address": 300, "type": "string", "length": length},
        {"name": "text_swapped", "table": "holding", "address": 310, "type": "string"}
        | {"length": length, "byte_order": "byte-swap"},
        {"name": "setpoint", "table": "holding", "address": 400, "type": "float32"}
        | {"byte_order": "word-swap", "writable": True, "min": 0, "max": 90},
        {"name": "temp", "table": "input", "address": 0, "type": "int16", "scale": 0.01},
        {"name": "level", "table": "input", "address": 1, "type": "int16"}
        | {"scale": 0.1, "offset": -40},
        {"name": "pump", "table": "coil", "address": 0, "writable": True},
        {"name": "valve", "table": "coil", "address": 1},
        {"name": "lamp", "table": "coil", "address": 2},
        {"name": "door", "table": "discrete", "address": 1},
        {"name": "flag", "table": "holding", "address": 200, "type": "bool", "bit": 4}
        | {"writable": True},
    ]


def config(port: int, devices: list[dict], **extra: Any) -> ModbusTcpConfig:
    data = {"type": "modbus_tcp", "name": "plc", "host": "127.0.0.1", "port": port}
    return ModbusTcpConfig.model_validate(data | {"timeout": 0.5, "devices": devices} | extra)


def full_devices() -> list[dict]:
    return [
        {"name": "bath1", "unit": 1, "tags": TYPED_TAGS + extra_tags()},
        {
            "name": "rect",
            "unit": 2,
            "tags": [{"name": "count", "table": "holding", "address": 0} | {"type": "uint16"}],
        },
    ]


@pytest.fixture
async def server() -> AsyncIterator[ModbusTestServer]:
    srv = ModbusTestServer(units())
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def connector(server: ModbusTestServer) -> AsyncIterator[ModbusTcpConnector]:
    conn = ModbusTcpConnector(config(server.port, full_devices()))
    await conn.open()
    yield conn
    await conn.close()


def by_name(readings: list[Reading]) -> dict[str, Reading]:
    return {r.tag: r for r in readings}


async def test_every_type_and_byte_order(connector: ModbusTcpConnector) -> None:
    readings = by_name(await connector.poll())
    for name, value in EXPECTED.items():
        got = readings[name]
        assert got.quality is Quality.GOOD, got
        if isinstance(value, float):
            assert got.value == pytest.approx(value, rel=1e-6), name
        else:
            assert got.value == value, name


async def test_bits_strings_scaling_and_units(connector: ModbusTcpConnector) -> None:
    readings = await connector.poll()
    values = {r.tag: r.value for r in readings}
    assert (values["bit2"], values["bit3"], values["bit15"]) == (True, False, True)
    assert values["text"] == TEXT and values["text_swapped"] == TEXT
    assert values["temp"] == pytest.approx(21.5)
    assert values["level"] == pytest.approx(20.0)
    assert (values["pump"], values["valve"], values["lamp"], values["door"]) == (
        True,
        False,
        True,
        True,
    )
    assert values["count"] == 7
    assert {r.device for r in readings if r.tag == "count"} == {"rect"}
    assert all(r.quality is Quality.GOOD for r in readings)


async def test_exception_response_becomes_bad_quality(server: ModbusTestServer) -> None:
    devices = [
        {
            "name": "d1",
            "unit": 1,
            "tags": [
                {"name": "ok", "table": "holding", "address": 0, "type": "int16"},
                {"name": "unmapped", "table": "holding", "address": 5000, "type": "int16"},
            ],
        },
    ]
    conn = ModbusTcpConnector(config(server.port, devices, max_gap=0))
    await conn.open()
    try:
        readings = by_name(await conn.poll())
    finally:
        await conn.close()
    assert readings["ok"].quality is Quality.GOOD
    bad = readings["unmapped"]
    assert (bad.quality, bad.value) == (Quality.BAD, None)
    assert "Modbus exception 2 (illegal data address) from unit 1" in bad.reason


async def test_silent_unit_is_bad_and_does_not_stall_others() -> None:
    async def slow(*_access: object) -> None:
        await asyncio.sleep(2.0)  # longer than the connector's timeout: the unit is "dead"

    srv = ModbusTestServer(
        {1: UnitData(holding={0: [1, 2]}), 3: UnitData(holding={0: [3]}, action=slow)}
    )
    await srv.start()
    tag = {"table": "holding", "type": "uint16"}
    devices = [
        {
            "name": "dead",
            "unit": 3,
            "tags": [{"name": "a", "address": 0} | tag, {"name": "b", "address": 40} | tag],
        },
        {
            "name": "alive",
            "unit": 1,
            "tags": [{"name": "a", "address": 0} | tag, {"name": "b", "address": 1} | tag],
        },
    ]
    conn = ModbusTcpConnector(config(srv.port, devices, timeout=0.3, max_gap=0))
    await conn.open()
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        readings = await conn.poll()
        took = loop.time() - started
    finally:
        await conn.close()
        await srv.stop()
    dead = [r for r in readings if r.device == "dead"]
    alive = {r.tag: r.value for r in readings if r.device == "alive"}
    assert len(dead) == 2 and all(r.quality is Quality.BAD for r in dead)
    assert all(r.reason == "unit 3 did not respond within 0.3s" for r in dead)
    assert alive == {"a": 1, "b": 2}
    # One timeout for the dead unit, not one per request.
    assert took < 0.55


async def test_refused_bridge_is_split_and_remembered(server: ModbusTestServer) -> None:
    # Registers 306..309 are not mapped on unit 1: a read bridging them is refused.
    tags = [
        {"name": "a", "table": "holding", "address": 305, "type": "uint16"},
        {"name": "b", "table": "holding", "address": 310, "type": "uint16"},
    ]
    conn = ModbusTcpConnector(config(server.port, [{"name": "d", "unit": 1, "tags": tags}]))
    await conn.open()
    try:
        first = by_name(await conn.poll())
        before = len(server.requests)
        second = by_name(await conn.poll())
    finally:
        await conn.close()
    assert first["a"].quality is Quality.GOOD and first["b"].quality is Quality.GOOD
    assert second["a"].quality is Quality.GOOD and second["b"].value == first["b"].value
    assert [(r.request.address, r.request.count) for r in conn.plan] == [(305, 1), (310, 1)]
    assert len(server.requests) - before == 2


async def test_coalescing_uses_minimal_requests(server: ModbusTestServer) -> None:
    items = [
        i for i in scattered(400, seed=7, max_width=2) if i.address + i.count <= len(REGISTERS)
    ]
    items = [i for i in scattered(400, seed=7, max_width=2)]
    top = max(i.address + i.count for i in items)
    big = ModbusTestServer({1: UnitData(holding={0: list(range(top))})})
    await big.start()
    tags = [
        {"name": f"r{n}", "table": "holding", "address": i.address}
        | {"type": "uint16" if i.count == 1 else "uint32"}
        for n, i in enumerate(items)
    ]
    conn = ModbusTcpConnector(config(big.port, [{"name": "d", "unit": 1, "tags": tags}]))
    await conn.open()
    try:
        before = len(big.requests)
        readings = await conn.poll()
    finally:
        await conn.close()
        await big.stop()
    assert len(readings) == 400 and all(r.quality is Quality.GOOD for r in readings)
    assert by_name(readings)["r0"].value == (
        items[0].address if items[0].count == 1 else (items[0].address << 16) + items[0].address + 1
    )
    sent = len(big.requests) - before
    assert sent == minimal_requests(items, 125, 10)
    assert sent == len(plan_reads([Item(i.address, i.count) for i in items], 125, 10))
    assert sent < 200


async def test_write_reads_back(connector: ModbusTcpConnector, server: ModbusTestServer) -> None:
    assert await connector.write("bath1", "setpoint", 42.25) == 42.25
    assert await connector.write("bath1", "pump", False) is False
    assert await connector.write("bath1", "flag", True) is True
    # The other bits of register 200 survive a bit write (read-modify-write).
    assert await server.get(1, 3, 200, 1) == [0b1000_0000_0001_0100]
    readings = by_name(await connector.poll())
    assert readings["setpoint"].value == 42.25 and readings["pump"].value is False
    with pytest.raises(ValueError, match="not writable"):
        await connector.write("bath1", "valve", True)
    with pytest.raises(ValueError, match="above the maximum"):
        await connector.write("bath1", "setpoint", 95)
    with pytest.raises(ValueError, match="no tag"):
        await connector.write("bath1", "nope", 1)


async def test_open_fails_clearly_without_server() -> None:
    from tests.support.ports import free_port

    conn = ModbusTcpConnector(config(free_port(), full_devices()))
    with pytest.raises(ConnectorError, match="cannot connect to Modbus TCP server"):
        await conn.open()


async def wait_for_state(runner: ConnectorRunner, state: str, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while runner.state != state:  # noqa: ASYNC110 - the runner exposes state, not events
            await asyncio.sleep(0.02)


async def test_runner_goes_down_and_recovers(server: ModbusTestServer) -> None:
    got: list[Reading] = []

    async def sink(readings: list[Reading]) -> None:
        got.extend(readings)

    conn = ModbusTcpConnector(config(server.port, full_devices()))
    runner = ConnectorRunner(
        conn,
        sink,
        gateway="gw1",
        connector_type="modbus_tcp",
        interval=0.1,
        backoff=Backoff(initial=0.05, cap=0.2),
    )
    with capture_logs() as logs:
        task = asyncio.create_task(runner.run())
        try:
            await wait_for_state(runner, "up")
            await server.stop()
            await wait_for_state(runner, "down")
            await asyncio.sleep(0.5)  # several failed reconnects while down
            failures = runner.health().errors
            await server.start()
            await wait_for_state(runner, "up")
            count = len(got)
            await asyncio.sleep(0.35)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    events = [e["event"] for e in logs]
    assert events.count("connector unavailable") == 1
    assert events.count("connector recovered") == 1
    assert failures >= 2
    assert all(e.get("connector") == "plc" and e.get("gateway") == "gw1" for e in logs)
    health = runner.health()
    assert health.state == "up" and health.last_success and health.latency_ms is not None
    assert health.devices["bath1"].state == "up"
    assert len(got) > count  # polling resumed after recovery

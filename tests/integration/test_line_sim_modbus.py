"""The simulator's pymodbus server answers a plain pymodbus client with the documented map."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu import ExceptionResponse

from line_sim.anodizing import LABEL_PRINT_S, AnodizingLine, LineParams, State
from line_sim.modbus_server import LineServer
from line_sim.register_map import POINTS, Point
from tests.support.ports import free_port


@pytest.fixture
async def server() -> AsyncIterator[LineServer]:
    # A long tick: the image stays still, so reads can be compared with one snapshot.
    line = AnodizingLine(LineParams(seed=21, first_product=42))
    for _ in range(60):  # get a product into the bath and one measured
        line.step(1.0)
    srv = LineServer(line, port=free_port(), tick=3600.0)
    ready = asyncio.Event()
    task = asyncio.create_task(srv.serve(ready))
    await asyncio.wait_for(ready.wait(), 5)
    yield srv
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def client(server: LineServer) -> AsyncIterator[AsyncModbusTcpClient]:
    c = AsyncModbusTcpClient("127.0.0.1", port=server.port, timeout=2, retries=0)
    assert await c.connect()
    yield c
    c.close()


def _words_to_value(point: Point, words: list[int]) -> float | int | str:
    """Decode with struct, independently of the encoder the server uses."""
    if point.type == "string":
        return b"".join(w.to_bytes(2, "big") for w in words).rstrip(b"\0").decode("ascii")
    if point.byte_order == "CDAB":
        words = list(reversed(words))
    raw = b"".join(w.to_bytes(2, "big") for w in words)
    fmt = {"int16": ">h", "uint16": ">H", "uint32": ">I", "float32": ">f"}[point.type]
    return struct.unpack(fmt, raw)[0]


async def _read(client: AsyncModbusTcpClient, point: Point) -> list[int] | list[bool]:
    kw = {"count": point.registers, "device_id": point.unit_id}
    reader = {
        "holding": client.read_holding_registers,
        "input": client.read_input_registers,
        "coil": client.read_coils,
        "discrete": client.read_discrete_inputs,
    }[point.table]
    response = await reader(point.address, **kw)
    assert not response.isError(), f"{point.device}.{point.name}: {response}"
    return response.bits[:1] if point.table in ("coil", "discrete") else response.registers


@pytest.mark.parametrize("point", POINTS, ids=lambda p: f"{p.device}.{p.name}")
async def test_every_point_reads_as_documented(
    server: LineServer, client: AsyncModbusTcpClient, point: Point
) -> None:
    data = await _read(client, point)
    expected = point.read(server.snapshot)
    if point.table in ("coil", "discrete"):
        assert data == [bool(expected)]
        return
    value = _words_to_value(point, list(data))  # type: ignore[arg-type]
    if point.type == "string":
        assert value == expected
    elif point.type == "float32":
        assert value * point.scale == pytest.approx(expected, rel=1e-6)
    else:
        assert value * point.scale == pytest.approx(expected, abs=point.scale / 2 + 1e-9)


async def test_the_line_is_mid_cycle_with_a_product_id(
    server: LineServer, client: AsyncModbusTcpClient
) -> None:
    state = await client.read_input_registers(4, count=1, device_id=1)
    ident = await client.read_input_registers(8, count=6, device_id=1)
    assert state.registers[0] in (State.IDLE, State.PROCESSING)
    text = client.convert_from_registers(ident.registers, client.DATATYPE.STRING)
    assert text.startswith("P2611-0000")


async def test_whole_table_reads_in_one_request(client: AsyncModbusTcpClient) -> None:
    # The gateway coalesces neighbouring tags; the tables have no holes to trip over.
    bath = await client.read_input_registers(0, count=17, device_id=1)
    meter = await client.read_input_registers(0, count=18, device_id=2)
    assert not bath.isError() and not meter.isError()
    beyond = await client.read_input_registers(17, count=1, device_id=1)
    assert isinstance(beyond, ExceptionResponse) and beyond.exception_code == 2


async def test_setpoint_write_reaches_the_model_and_reads_back(
    server: LineServer, client: AsyncModbusTcpClient
) -> None:
    words = list(struct.unpack(">HH", struct.pack(">f", 23.5)))
    assert not (await client.write_registers(0, words, device_id=1)).isError()
    assert server.line.control.setpoint == 23.5
    back = await client.read_holding_registers(0, count=2, device_id=1)
    assert back.registers == words


async def test_out_of_range_setpoint_is_refused_with_illegal_value(
    server: LineServer, client: AsyncModbusTcpClient
) -> None:
    words = list(struct.unpack(">HH", struct.pack(">f", 55.0)))
    response = await client.write_registers(0, words, device_id=1)
    assert isinstance(response, ExceptionResponse) and response.exception_code == 3
    assert server.line.control.setpoint == 20.0


async def test_label_coil_is_a_trigger_cleared_once_the_label_is_printed(
    server: LineServer, client: AsyncModbusTcpClient
) -> None:
    assert not (await client.write_coil(1, True, device_id=1)).isError()
    assert (await client.read_coils(1, count=1, device_id=1)).bits[0] is True
    server.line.step(0.2)  # a PLC scan while the label prints: still set
    server.refresh()
    assert (await client.read_coils(1, count=1, device_id=1)).bits[0] is True
    server.line.step(LABEL_PRINT_S)
    server.refresh()
    assert (await client.read_coils(1, count=1, device_id=1)).bits[0] is False
    printed = await client.read_input_registers(16, count=1, device_id=1)
    assert printed.registers == [1]


async def test_run_enable_off_stops_the_line(
    server: LineServer, client: AsyncModbusTcpClient
) -> None:
    assert not (await client.write_coil(2, False, device_id=1)).isError()
    server.line.step(0.2)
    server.refresh()
    state = await client.read_input_registers(4, count=1, device_id=1)
    running = await client.read_discrete_inputs(0, count=1, device_id=1)
    assert state.registers == [State.STOPPED] and running.bits[0] is False


async def test_model_ticks_while_serving() -> None:
    srv = LineServer(AnodizingLine(LineParams(seed=1)), port=free_port(), tick=0.05, speed=20)
    task = asyncio.create_task(srv.serve())
    try:
        await asyncio.sleep(1.0)
        assert srv.line.t == pytest.approx(20.0, abs=6.0)
        assert srv.snapshot.event_count >= 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

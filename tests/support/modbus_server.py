"""A real pymodbus TCP server on a loopback port for tests, counting the requests it receives."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from tests.support.ports import free_port


@dataclass
class UnitData:
    """Initial contents of one unit, by table; each maps a start address to its values."""

    holding: dict[int, list[int]] = field(default_factory=dict)
    input: dict[int, list[int]] = field(default_factory=dict)
    coils: dict[int, list[bool]] = field(default_factory=dict)
    discrete: dict[int, list[bool]] = field(default_factory=dict)
    # pymodbus SimDevice action: awaited on every access (delay it to play a slow unit).
    action: Callable[..., Awaitable[object]] | None = None

    def simdevice(self, unit: int) -> SimDevice:
        def block(table: dict, kind: DataType) -> list[SimData]:
            # pymodbus refuses an empty block: park one value far away from every test tag.
            table = table or {65000: [False] if kind is DataType.BITS else [0]}
            return [SimData(address=a, values=v, datatype=kind) for a, v in sorted(table.items())]

        # Non-shared blocks: coil and discrete addresses are bit numbers, as on most PLCs.
        return SimDevice(
            unit,
            simdata=(
                block(self.coils, DataType.BITS),
                block(self.discrete, DataType.BITS),
                block(self.holding, DataType.REGISTERS),
                block(self.input, DataType.REGISTERS),
            ),
            action=self.action,
        )


class ModbusTestServer:
    """Start/stop a server on a fixed port; `requests` lists every request PDU received."""

    def __init__(self, units: dict[int, UnitData], port: int | None = None) -> None:
        self.units = units
        self.port = port or free_port()
        self.requests: list[ModbusPDU] = []
        self._server: ModbusTcpServer | None = None

    def _trace(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending:
            self.requests.append(pdu)
        return pdu

    async def start(self) -> None:
        devices = [data.simdevice(unit) for unit, data in self.units.items()]
        self._server = ModbusTcpServer(
            devices, address=("127.0.0.1", self.port), trace_pdu=self._trace
        )
        await self._server.serve_forever(background=True)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None
            await asyncio.sleep(0.05)

    async def get(self, unit: int, function_code: int, address: int, count: int) -> list:
        assert self._server is not None
        return await self._server.async_getValues(unit, function_code, address, count)

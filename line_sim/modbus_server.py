"""Serve the anodizing line over Modbus TCP with pymodbus's server, one unit id per device.

The model ticks in its own task and re-encodes a register image each tick; pymodbus's
per-device `action` hook (called on every request) copies that image into the server's
registers before a read and turns a write into a model call. A write the model refuses
(a setpoint out of range) is answered with exception 03, ILLEGAL DATA VALUE, as a PLC would.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from factory_common.logs import get_logger
from line_sim.anodizing import AnodizingLine, LineParams
from line_sim.register_map import DEVICES, POINTS, Point, Table, decode, encode, points_of

log = get_logger(component="line-sim")

# Modbus function codes -> the table they address (Modbus application protocol 6.1-6.17).
_FC_TABLE: dict[int, Table] = {1: "coil", 5: "coil", 15: "coil", 2: "discrete", 4: "input"}
_FC_TABLE.update({fc: "holding" for fc in (3, 6, 16, 22, 23)})


@dataclass
class RegisterImage:
    """Encoded values per (unit, table): register address -> word, or bit address -> bool."""

    words: dict[tuple[int, Table], dict[int, int]] = field(default_factory=dict)
    bits: dict[tuple[int, Table], dict[int, bool]] = field(default_factory=dict)


class LineServer:
    """The simulated line behind a Modbus TCP listener. Constructors do no I/O."""

    def __init__(
        self,
        line: AnodizingLine,
        host: str = "127.0.0.1",
        port: int = 5020,
        tick: float = 0.2,
        speed: float = 1.0,
    ) -> None:
        self.line = line
        self.host, self.port = host, port
        self.tick, self.speed = tick, speed
        self.image = RegisterImage()
        self.snapshot = line.snapshot()  # the values the image currently encodes
        self.refresh()
        self._server: ModbusTcpServer | None = None

    def refresh(self) -> None:
        """Re-encode every point from a fresh snapshot of the line."""
        snap = self.snapshot = self.line.snapshot()
        image = RegisterImage()
        for point in POINTS:
            key = (point.unit_id, point.table)
            encoded = encode(point, point.read(snap))
            if isinstance(encoded, bool):
                image.bits.setdefault(key, {})[point.address] = encoded
            else:
                words = image.words.setdefault(key, {})
                for i, word in enumerate(encoded):
                    words[point.address + i] = word
        self.image = image

    def devices(self) -> list[SimDevice]:
        return [
            SimDevice(
                id=unit_id,
                simdata=tuple(_block(unit_id, t) for t in ("coil", "discrete", "holding", "input")),  # type: ignore[arg-type]
                action=functools.partial(self._action, unit_id),
            )
            for unit_id in DEVICES
        ]

    async def _action(
        self,
        unit_id: int,
        function_code: int,
        start_address: int,
        address: int,
        _count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        table = _FC_TABLE[function_code]
        if set_values is not None:
            problem = self._write(unit_id, table, address, set_values)
            if problem is not None:
                return problem
            self.refresh()
        if table in ("coil", "discrete"):
            _copy_bits(self.image.bits.get((unit_id, table), {}), start_address, registers)
        else:
            for addr, word in self.image.words.get((unit_id, table), {}).items():
                registers[addr - start_address] = word
        return None

    def _write(
        self, unit_id: int, table: Table, address: int, values: Sequence[int] | Sequence[bool]
    ) -> ExcCodes | None:
        end = address + len(values)
        for point in points_of(unit_id, table):
            if point.address >= end or point.address + point.registers <= address:
                continue
            if point.write is None:
                return ExcCodes.ILLEGAL_ADDRESS
            value = self._merged(point, address, values)
            try:
                point.write(self.line, value)
            except ValueError as exc:
                log.warning("write refused", device=point.device, tag=point.name, error=str(exc))
                return ExcCodes.ILLEGAL_VALUE
            log.info("write", device=point.device, tag=point.name, value=value)
        return None

    def _merged(
        self, point: Point, address: int, values: Sequence[int] | Sequence[bool]
    ) -> float | int | bool | str:
        """The point's value after this write (a write may cover only one word of a float)."""
        if point.table == "coil":
            return bool(values[point.address - address])
        current = self.image.words[(point.unit_id, point.table)]
        words = [
            int(values[a - address]) if address <= a < address + len(values) else current[a]
            for a in range(point.address, point.address + point.registers)
        ]
        return decode(point, words)

    async def serve(self, ready: asyncio.Event | None = None) -> None:
        """Listen and tick until cancelled."""
        self._server = ModbusTcpServer(self.devices(), address=(self.host, self.port))
        await self._server.serve_forever(background=True)
        log.info("modbus server listening", host=self.host, port=self.port, units=DEVICES)
        if ready is not None:
            ready.set()
        try:
            while True:
                await asyncio.sleep(self.tick)
                for event in self.line.step(self.tick * self.speed):
                    log.info("equipment event", code=event.code.name, product=event.product_id)
                self.refresh()
        finally:
            await self._server.shutdown()


def _block(unit_id: int, table: Table) -> list[SimData]:
    """pymodbus's layout for one table: holding/input words, or single bits for coils."""
    if table in ("coil", "discrete"):
        return [
            SimData(address=p.address, values=[False], datatype=DataType.BITS)
            for p in points_of(unit_id, table)
        ]
    return [
        SimData(
            address=p.address,
            count=p.registers,
            values=0,
            datatype=DataType.REGISTERS,
            readonly=not p.writable,
        )
        for p in points_of(unit_id, table)
    ]


def _copy_bits(bits: dict[int, bool], start_register: int, registers: list[int]) -> None:
    """pymodbus packs 16 coils per word, bit 0 first; `start_register` is in words."""
    for addr, on in bits.items():
        index, mask = addr // 16 - start_register, 1 << (addr % 16)
        registers[index] = registers[index] | mask if on else registers[index] & ~mask


async def serve(host: str, port: int, params: LineParams, tick: float, speed: float) -> None:
    await LineServer(AnodizingLine(params), host, port, tick, speed).serve()

"""Modbus reads and writes over any pymodbus async client (shared by the TCP and RTU connectors).

Failure mapping, in one place:
- an exception response (illegal address, device busy, gateway target failed...) makes the
  tags of that request bad-quality readings with the exception named in `reason`;
- a unit that does not answer in time makes its tags bad for this poll (`UnitTimeout`, and the
  rest of that unit's requests are skipped so a dead unit costs one timeout per poll, not one
  per request);
- a lost connection raises ConnectorError, so the runner closes, backs off and reconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from pymodbus.client.base import ModbusBaseClient
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from factory_common.errors import GatewayError
from factory_common.wire import Quality, Reading, Value, now_ns
from gateway_image.firmware.connectors.advice import Failure, explain
from gateway_image.firmware.connectors.base import ConnectorError
from gateway_image.firmware.connectors.modbus.coalesce import (
    ReadRequest,
    plan_device,
    plan_reads,
)
from gateway_image.firmware.connectors.modbus.codec import decode_tag, encode_tag
from gateway_image.firmware.connectors.modbus.config import ModbusDevice, ModbusTag, Table
from gateway_image.firmware.connectors.modbus.decode_plan import RequestDecoder

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


class UnitTimeout(GatewayError):
    """One unit did not answer within the timeout; the connection itself may be fine."""


class ModbusExceptionResponse(GatewayError):
    def __init__(self, unit: int, code: int) -> None:
        self.code = code
        name = EXCEPTION_NAMES.get(code, "unknown exception")
        super().__init__(f"Modbus exception {code} ({name}) from unit {unit}")


@dataclass(frozen=True)
class PlannedRead:
    device: ModbusDevice
    table: Table
    request: ReadRequest[ModbusTag]
    # How a response becomes readings, worked out once here rather than on every poll.
    decoder: RequestDecoder = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "decoder", RequestDecoder(self.request))

    def readings(self, ts: int, values: list) -> list[Reading]:
        """The reading of every tag of this request from its response's registers or bits."""
        return self.decoder.readings(self.device.name, ts, values)


def plan_all(
    devices: Sequence[ModbusDevice], max_registers: int, max_gap: int
) -> list[PlannedRead]:
    """Every request of one poll cycle, computed once at construction."""
    return [
        PlannedRead(device, table, request)
        for device in devices
        for table, request in plan_device(device.tags, max_registers, max_gap)
    ]


_READS = {
    Table.HOLDING: "read_holding_registers",
    Table.INPUT: "read_input_registers",
    Table.COIL: "read_coils",
    Table.DISCRETE: "read_discrete_inputs",
}


ILLEGAL_ADDRESS = 2


def split_refused(read: PlannedRead) -> list[PlannedRead]:
    """First drop the bridged holes; if there were none, read each tag on its own."""
    items = read.request.items
    requests = plan_reads(items, read.request.count, 0)
    if len(requests) == 1:
        requests = [ReadRequest(t.address, t.count, (t,)) for t in items] if len(items) > 1 else []
    return [PlannedRead(read.device, read.table, r) for r in requests]


def bad_readings(read: PlannedRead, ts: int, reason: str) -> list[Reading]:
    return [
        Reading(read.device.name, tag.name, ts, None, Quality.BAD, reason)
        for tag in read.request.items
    ]


def check_write(tag: ModbusTag, value: Value) -> None:
    """Refuse what the tag's config does not allow, before anything goes on the wire."""
    if not tag.writable:
        raise ValueError(f"tag {tag.name} is not writable (set writable: true in the config)")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if tag.min is not None and value < tag.min:
            raise ValueError(f"{value} is below the minimum {tag.min} of tag {tag.name}")
        if tag.max is not None and value > tag.max:
            raise ValueError(f"{value} is above the maximum {tag.max} of tag {tag.name}")


class ModbusLink:
    """One pymodbus async client plus the per-request timeout every transaction runs under."""

    def __init__(self, client: ModbusBaseClient, request_timeout: float) -> None:
        self.client = client
        self.request_timeout = request_timeout

    async def call(self, fn: str, unit: int, *args: object, **kw: object) -> ModbusPDU:
        """One Modbus transaction; exception responses raise ModbusExceptionResponse."""
        if not self.client.connected:
            raise ConnectorError("connection lost")
        wait = self.request_timeout
        try:
            request = getattr(self.client, fn)(*args, device_id=unit, **kw)
            response = await asyncio.wait_for(request, wait)
        except ConnectionException as exc:
            raise ConnectorError(f"connection lost: {exc}") from None
        except (ModbusIOException, TimeoutError) as exc:
            if not self.client.connected:
                raise ConnectorError(f"connection lost: {exc}") from None
            raise UnitTimeout(f"unit {unit} did not respond within {wait}s") from None
        if response.isError():
            raise ModbusExceptionResponse(unit, getattr(response, "exception_code", 0))
        return response

    async def read(self, unit: int, table: Table, address: int, count: int) -> list:
        response = await self.call(_READS[table], unit, address, count=count)
        return list(response.bits if table.is_bits else response.registers)

    async def poll(self, plan: list[PlannedRead]) -> list[Reading]:
        """Run one poll cycle; raises ConnectorError when the link is gone or nothing answers.

        A coalesced request refused with "illegal data address" probably bridged a hole the
        device does not map: it is split (see `split_refused`) and `plan` is updated in place,
        so later polls use the split requests and only a truly bad tag reads as bad.
        """
        readings: list[Reading] = []
        silent: dict[str, str] = {}
        answered = 0
        queue, kept = list(plan), []
        while queue:
            read = queue.pop(0)
            got, replacement, unit_answered = await self._read_planned(read, silent)
            answered += unit_answered
            if replacement:
                queue[:0] = replacement
                continue
            kept.append(read)
            readings += got
        plan[:] = kept
        if plan and not answered:
            # Every unit silent: most likely a half-open TCP connection, so reconnect.
            detail = next(iter(silent.values()))
            raise ConnectorError(explain("modbus", Failure.WRONG_UNIT, detail))
        return readings

    async def _read_planned(
        self, read: PlannedRead, silent: dict[str, str]
    ) -> tuple[list[Reading], list[PlannedRead], bool]:
        """(readings, requests to read instead, did the unit answer) for one planned read.

        `silent` collects units that timed out this poll: their other requests are skipped.
        """
        ts = now_ns()
        if read.device.name in silent:
            return bad_readings(read, ts, silent[read.device.name]), [], False
        request = read.request
        try:
            unit, table = read.device.unit, read.table
            values = await self.read(unit, table, request.address, request.count)
        except UnitTimeout as exc:
            silent[read.device.name] = str(exc)
            return bad_readings(read, ts, str(exc)), [], False
        except ModbusExceptionResponse as exc:
            parts = split_refused(read) if exc.code == ILLEGAL_ADDRESS else []
            if len(parts) > 1:
                return [], parts, True
            return bad_readings(read, ts, str(exc)), [], True
        return read.readings(ts, values), [], True

    async def write(self, device: ModbusDevice, tag: ModbusTag, value: Value) -> Value:
        """Write one tag and return its value read back from the device.

        Raises ValueError (bad value / not writable: nothing was written) or ConnectorError
        (the device refused or did not answer: the write may or may not have happened).
        """
        check_write(tag, value)
        unit = device.unit
        try:
            current = None
            if tag.bit is not None:
                current = int((await self.read(unit, tag.table, tag.address, 1))[0])
            payload = encode_tag(tag, value, current)
            if isinstance(payload, bool):
                await self.call("write_coil", unit, tag.address, payload)
            elif len(payload) == 1:
                await self.call("write_register", unit, tag.address, payload[0])
            else:
                await self.call("write_registers", unit, tag.address, payload)
            words = await self.read(unit, tag.table, tag.address, tag.count)
        except (UnitTimeout, ModbusExceptionResponse) as exc:
            raise ConnectorError(f"write {device.name}/{tag.name}: {exc}") from None
        return decode_tag(tag, words[: tag.count])

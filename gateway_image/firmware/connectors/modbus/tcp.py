"""Modbus TCP connector: one connection per server, every unit id on it, coalesced reads."""

from __future__ import annotations

import asyncio

from pymodbus.client import AsyncModbusTcpClient

from factory_common.wire import Reading, Value
from gateway_image.firmware.connectors.advice import Failure, classify_network, explain
from gateway_image.firmware.connectors.base import ConnectorError
from gateway_image.firmware.connectors.modbus.common import ModbusLink, plan_all
from gateway_image.firmware.connectors.modbus.config import ModbusDevice, ModbusTag, ModbusTcpConfig


class ModbusTcpConnector:
    """PollingConnector + WritableConnector for one `modbus_tcp` config entry."""

    def __init__(self, config: ModbusTcpConfig) -> None:
        self.name = config.name
        self.config = config
        self.plan = plan_all(config.devices, config.max_registers, config.max_gap)
        self._tags: dict[tuple[str, str], tuple[ModbusDevice, ModbusTag]] = {
            (d.name, t.name): (d, t) for d in config.devices for t in d.tags
        }
        self._client: AsyncModbusTcpClient | None = None
        # A bit-in-register write is read-modify-write: two writes must not interleave.
        self._write_lock = asyncio.Lock()

    @property
    def where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    @property
    def poll_timeout(self) -> float:
        """Worst case of one poll: each unit may time out once, everything else answers."""
        return self.config.timeout * (len(self.config.devices) + len(self.plan)) + 1.0

    async def open(self) -> None:
        # retries=0 and reconnect_delay=0: the runner owns retrying and reconnect back-off.
        client = AsyncModbusTcpClient(
            self.config.host,
            port=self.config.port,
            timeout=self.config.timeout,
            retries=0,
            reconnect_delay=0,
            name=self.name,
        )
        # A silent unit must not make pymodbus drop the connection the other units share.
        client.set_max_no_responses(1_000_000)
        try:
            connected = await asyncio.wait_for(client.connect(), self.config.timeout + 1.0)
        except (TimeoutError, OSError):
            connected = False
        if not connected:
            client.close()
            failure = await self._diagnose()
            raise ConnectorError(
                explain("modbus", failure, f"cannot connect to Modbus TCP server {self.where}")
            )
        self._client = client

    async def _diagnose(self) -> Failure:
        """Why the connection failed: pymodbus says only "not connected", so try once more."""
        try:
            _reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.config.host, self.config.port), self.config.timeout
            )
        except OSError as exc:
            return classify_network(exc) or Failure.TIMEOUT
        except TimeoutError:
            return Failure.TIMEOUT
        writer.close()
        return Failure.TIMEOUT  # it accepts now: the device was slow to answer before

    async def poll(self) -> list[Reading]:
        return await self._link().poll(self.plan)

    async def write(self, device: str, tag: str, value: Value) -> Value:
        try:
            dev, spec = self._tags[(device, tag)]
        except KeyError:
            raise ValueError(f"connector {self.name} has no tag {device}/{tag}") from None
        async with self._write_lock:
            return await self._link().write(dev, spec, value)

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _link(self) -> ModbusLink:
        if self._client is None or not self._client.connected:
            raise ConnectorError(f"not connected to Modbus TCP server {self.where}")
        return ModbusLink(self._client, self.config.timeout)


def build(config: ModbusTcpConfig) -> ModbusTcpConnector:
    return ModbusTcpConnector(config)

"""The two connector shapes. A runner owns scheduling, timeouts, backoff, health and logging.

Connectors do no I/O in their constructors, raise `ConnectorError` (or a subclass) for
anything that goes wrong talking to a device, and never swallow errors themselves: the
runner decides what is logged and when a device counts as unavailable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from factory_common.errors import GatewayError
from factory_common.wire import Reading, Value

Emit = Callable[[list[Reading]], Awaitable[None]]


class ConnectorError(GatewayError):
    """A device or transport failed; the message names the device and what to check."""


@runtime_checkable
class PollingConnector(Protocol):
    """Asked for values on a schedule (Modbus, OPC UA reads)."""

    name: str

    async def open(self) -> None: ...

    async def poll(self) -> list[Reading]: ...

    async def close(self) -> None: ...


@runtime_checkable
class StreamingConnector(Protocol):
    """Pushes values as they come (OPC UA subscriptions, serial lines, GPIO edges, MQTT in).

    `run` returns only when cancelled or when the transport fails (raise ConnectorError).
    """

    name: str

    async def run(self, emit: Emit) -> None: ...


@runtime_checkable
class WritableConnector(Protocol):
    """Optional: a connector that can write a tag and read it back (setpoints, coils, outputs)."""

    async def write(self, device: str, tag: str, value: Value) -> Value:
        """Write `value` and return what the device reads back afterwards."""
        ...

"""The uplink's answer to one command: the handler's ack, or a refusal that says why."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from factory_common import wire
from factory_common.logs import get_logger

CommandHandler = Callable[[wire.Command], Awaitable[wire.CommandAck]]


def _ack(
    command: wire.Command, gateway: str, status: wire.AckStatus, detail: str
) -> wire.CommandAck:
    return wire.CommandAck(
        v=wire.WIRE_VERSION,
        id=command.id,
        gateway=gateway,
        status=status,
        ts=wire.now_ns(),
        detail=detail,
    )


async def answer(
    handler: CommandHandler | None, command: wire.Command, gateway: str
) -> wire.CommandAck:
    """Never raises: a handler bug is a FAILED ack, not a torn-down uplink."""
    if handler is None:
        return _ack(command, gateway, wire.AckStatus.REJECTED, "commands not enabled")
    try:
        return await handler(command)
    except Exception as exc:
        get_logger(component="uplink", gateway=gateway).exception(
            "command_handler_crashed", command=command.id
        )
        detail = f"gateway error while executing: {type(exc).__name__}: {exc}"
        return _ack(command, gateway, wire.AckStatus.FAILED, detail)

"""POST /api/commands: an engineer sends a setpoint or recipe (writes) to a gateway's devices.

The role is checked before anything else, so a viewer's or operator's request never reaches
the command sender (H2's edge_node/commands.py), let alone the broker. The gateway executes,
reads back and acks; the response is that ack.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Protocol

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from edge_node.auth import Role, User, require_role
from factory_common.logs import get_logger
from factory_common.wire import CommandAck, WireError, Write, check_id

router = APIRouter(prefix="/api", tags=["commands"])
log = get_logger(component="commands_api")
Engineer = Annotated[User, Depends(require_role(Role.ENGINEER))]


class Sender(Protocol):
    async def send(self, gateway: str, writes: list[Write], *, issued_by: str) -> CommandAck: ...


class WriteIn(BaseModel):
    device: str = Field(min_length=1, max_length=64)
    tag: str = Field(min_length=1, max_length=128)
    value: bool | int | float | str


class CommandIn(BaseModel):
    """One command: a setpoint is one write, a recipe several, executed together."""

    gateway: str = Field(min_length=1, max_length=64)
    writes: list[WriteIn] = Field(min_length=1, max_length=64)
    timeout_s: float = Field(default=10.0, gt=0, le=60)


class CommandOut(BaseModel):
    id: str
    gateway: str
    status: str  # done, failed, rejected, expired, duplicate (wire.AckStatus)
    detail: str = ""
    results: list[dict[str, Any]] = []


def _sender(request: Request) -> Sender:
    sender = getattr(request.app.state, "commands", None)
    if sender is None:
        raise HTTPException(503, "this edge node has no command sender (no MQTT connection)")
    return sender


@router.post("/commands", response_model=CommandOut)
async def send_command(
    body: CommandIn, user: Engineer, sender: Annotated[Sender, Depends(_sender)]
) -> CommandOut:
    """Publish the command and wait for the gateway's ack: 504 when none comes in time."""
    try:
        gateway = check_id(body.gateway)
    except WireError as exc:
        raise HTTPException(422, str(exc)) from None
    writes = [Write(w.device, w.tag, w.value) for w in body.writes]
    log.info("command_requested", user=user.name, gateway=gateway, writes=len(writes))
    try:
        async with asyncio.timeout(body.timeout_s):
            ack = await sender.send(gateway, writes, issued_by=user.name)
    except TimeoutError:
        log.warning("command_unacknowledged", user=user.name, gateway=gateway)
        raise HTTPException(
            504, f"no ack from {gateway} within {body.timeout_s:g} s: is it online?"
        ) from None
    log.info("command_acked", user=user.name, gateway=gateway, id=ack.id, status=str(ack.status))
    return CommandOut(
        id=ack.id,
        gateway=ack.gateway,
        status=str(ack.status),
        detail=ack.detail,
        results=[msgspec.to_builtins(r) for r in ack.results],
    )

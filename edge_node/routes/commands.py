"""POST /api/commands: an engineer sends a setpoint or recipe (writes) to a gateway's devices.

The role is checked before anything else, so a viewer's or operator's request never reaches
the command sender (edge_node/commands.py), let alone the broker. The gateway executes,
reads back and acks; the response is that ack.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Protocol

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from edge_node import tagindex
from edge_node.auth import Role, User, require_role
from edge_node.writecheck import problem
from factory_common.logs import get_logger
from factory_common.wire import WireError, Write, check_id

router = APIRouter(prefix="/api", tags=["commands"])
log = get_logger(component="commands_api")
Engineer = Annotated[User, Depends(require_role(Role.ENGINEER))]


class Outcome(Protocol):
    status: str  # wire.AckStatus value, or "timeout"
    detail: str

    def as_dict(self) -> dict[str, Any]: ...


class Sender(Protocol):
    """edge_node.commands.CommandSender: publishes, waits for the ack, logs the outcome."""

    async def send(
        self,
        gateway: str,
        writes: list[Write],
        *,
        issued_by: str,
        timeout: float,  # noqa: ASYNC109 - the sender records a timeout as an outcome
    ) -> Outcome: ...


class WriteIn(BaseModel):
    device: str = Field(min_length=1, max_length=64)
    tag: str = Field(min_length=1, max_length=128)
    # strict: JSON 21 stays an int and 21.5 a float (lax mode would turn 21.0 into 21).
    value: StrictBool | StrictInt | StrictFloat | StrictStr


class CommandIn(BaseModel):
    """One command: a setpoint is one write, a recipe several, executed together."""

    gateway: str = Field(min_length=1, max_length=64)
    writes: list[WriteIn] = Field(min_length=1, max_length=64)
    timeout_s: float = Field(default=10.0, gt=0, le=60)


class CommandOut(BaseModel):
    """The outcome as edge_node.commands.CommandLog records it (times in ns, as on the wire)."""

    id: str
    gateway: str
    status: str  # done, failed, rejected, expired, duplicate (wire.AckStatus) or timeout
    ok: bool
    writes: list[dict[str, Any]]
    issued_by: str
    issued_at: int
    finished_at: int
    ack: dict[str, Any] | None = None
    detail: str = ""


# async: an attribute read, not worth a thread-pool hop (see api._edge)
async def _sender(request: Request) -> Sender:
    sender = getattr(request.app.state, "commands", None)
    if sender is None:
        raise HTTPException(503, "this edge node has no command sender (no MQTT connection)")
    return sender


def _refused(request: Request, gateway: str, writes: list[WriteIn]) -> list[str]:
    """What the tag catalogue says is wrong with these writes (not writable, type, limits)."""
    edge = getattr(request.app.state, "edge", None)
    if edge is None:
        return []
    names = [f"{gateway}/{w.device}/{w.tag}" for w in writes]
    meta = tagindex.meta_of(edge.store, request, names)
    found = (problem(meta.get(name), w.value) for name, w in zip(names, writes, strict=True))
    return [p for p in found if p]


@router.post(
    "/commands",
    response_model=CommandOut,
    responses={504: {"description": "no ack"}, 422: {"description": "refused by the edge"}},
)
async def send_command(
    body: CommandIn, user: Engineer, sender: Annotated[Sender, Depends(_sender)], request: Request
) -> Response:
    """Publish the command and wait for the gateway's ack; 504 when none comes in time.
    Any ack (done, failed, rejected...) is 200: `status` and `results` say what happened.
    A write the gateway's tag catalogue forbids (not writable, wrong type, outside min..max)
    is refused here with 422 before anything is sent."""
    try:
        gateway = check_id(body.gateway)
    except WireError as exc:
        raise HTTPException(422, str(exc)) from None
    refused = await asyncio.to_thread(_refused, request, gateway, body.writes)
    if refused:
        raise HTTPException(422, "; ".join(refused))
    writes = [Write(w.device, w.tag, w.value) for w in body.writes]
    log.info("command_requested", user=user.name, gateway=gateway, writes=len(writes))
    outcome = await sender.send(gateway, writes, issued_by=user.name, timeout=body.timeout_s)
    status = 504 if outcome.status == "timeout" else 200
    return Response(msgspec.json.encode(outcome.as_dict()), status, media_type="application/json")


@router.get("/commands", tags=["commands"])
def recent_commands(request: Request, limit: int = Query(50, ge=1, le=1000)) -> Response:
    """The last commands sent from this edge and their outcomes, newest first (viewers too)."""
    command_log = getattr(request.app.state, "command_log", None)
    rows = command_log.recent(limit) if command_log is not None else []
    return Response(msgspec.json.encode(rows), media_type="application/json")

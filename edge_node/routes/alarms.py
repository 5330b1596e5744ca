"""Alarms over HTTP: list (active or since a time), acknowledge (operators), live push as SSE.

Alarm times are epoch nanoseconds (as on the wire); `since` takes epoch milliseconds like the
rest of the API. The stream sends one `data:` line per change, `{"kind": ..., "alarm": {...}}`,
and a comment every 15 s so proxies keep the connection and clients notice a dead one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from edge_node.alarms.service import AlarmChange, AlarmError, AlarmService
from edge_node.auth import Role, User, require_role

router = APIRouter(prefix="/api", tags=["alarms"])
KEEPALIVE_S = 15.0
_encoder = msgspec.json.Encoder()
Operator = Annotated[User, Depends(require_role(Role.OPERATOR))]


class AlarmOut(BaseModel):
    id: int
    source: str  # the series (gateway/device/tag) or what a rule named
    rule: str  # spc.rule1..spc.rule4, spc.spec, or a rule's own name
    severity: str
    message: str
    value: Any = None
    details: dict[str, Any] = {}
    state: str  # raised, acknowledged, cleared_unacked, cleared
    active: bool
    count: int
    raised_at: int  # ns
    last_at: int
    acked_at: int | None = None
    acked_by: str | None = None
    cleared_at: int | None = None
    cleared_by: str | None = None


def _alarms(request: Request) -> AlarmService:
    service = getattr(request.app.state, "alarms", None)
    if service is None:
        raise HTTPException(503, "alarms are not enabled on this edge node (monitoring.enabled)")
    return service


Alarms = Annotated[AlarmService, Depends(_alarms)]


def _json(content: Any) -> Response:
    return Response(_encoder.encode(content), media_type="application/json")


@router.get("/alarms", response_model=list[AlarmOut])
def list_alarms(
    alarms: Alarms,
    active: Annotated[
        bool | None, Query(description="true: condition present; false: gone")
    ] = None,
    since: Annotated[int | None, Query(description="raised at or after, epoch ms")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> Response:
    """Alarms, newest first: the active ones, or those raised since a time (default all)."""
    if active is True:
        found = alarms.active()
    else:
        found = alarms.history(since=(since or 0) * 1_000_000, limit=limit)
        if active is False:
            found = [a for a in found if not a.active]
    return _json([a.as_dict() for a in found[:limit]])


@router.post("/alarms/{alarm_id}/ack", response_model=AlarmOut)
def acknowledge(alarm_id: int, alarms: Alarms, user: Operator) -> Response:
    """Acknowledge an alarm (operator or engineer); a second acknowledgement changes nothing."""
    try:
        return _json(alarms.acknowledge(alarm_id, user.name).as_dict())
    except AlarmError as exc:
        raise HTTPException(404, f"{exc}: see GET /api/alarms") from None


def _event(change: AlarmChange) -> bytes:
    body = _encoder.encode({"kind": change.kind, "alarm": change.alarm.as_dict()})
    return b"event: alarm\ndata: " + body + b"\n\n"


async def _stream(alarms: AlarmService) -> AsyncIterator[bytes]:
    changes = alarms.subscribe()
    pending = asyncio.ensure_future(anext(changes))
    try:
        yield b"retry: 2000\n: connected\n\n"
        while True:
            done, _ = await asyncio.wait({pending}, timeout=KEEPALIVE_S)
            if not done:
                yield b": keepalive\n\n"
                continue
            try:
                change = pending.result()
            except StopAsyncIteration:
                return  # this client fell behind: it reconnects and refreshes
            yield _event(change)
            pending = asyncio.ensure_future(anext(changes))
    finally:
        pending.cancel()
        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
            await pending
        await changes.aclose()


@router.get(
    "/alarms/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(alarms: Alarms) -> StreamingResponse:
    """Server-sent events: every alarm change (`event: alarm`) from now on."""
    return StreamingResponse(
        _stream(alarms),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/monitoring")
def monitoring(request: Request) -> Response:
    """SPC monitoring counters: readings checked, active SPC alarms, and its feed from ingest
    (queued, dropped when monitoring fell behind). Null on an API replica."""
    monitor = getattr(request.app.state, "monitor", None)
    return _json(monitor.stats() if monitor is not None else None)

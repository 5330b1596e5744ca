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
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from edge_node.alarms import isa
from edge_node.alarms.service import Alarm, AlarmChange, AlarmError, AlarmService
from edge_node.alarms.shelving import ShelfError, Shelves
from edge_node.api_time import EpochMs, ms_to_ns
from edge_node.auth import Role, User, require_role
from factory_common.wire import now_ns

router = APIRouter(prefix="/api", tags=["alarms"])
# Alarm ids are SQLite rowids: a larger number would fail in the store, not here.
AlarmId = Annotated[int, Path(ge=1, le=2**63 - 1)]
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
    priority: int  # 1 critical .. 4 low (ISA-18.2 priorities)
    priority_name: str
    state_label: str  # the state in words: "Active, unacknowledged", "Shelved", ...
    shelved: bool
    shelf: dict[str, Any] | None = None  # who shelved it, why, until when (ns)


class ShelveIn(BaseModel):
    minutes: float = Field(gt=0, description="how long; at most 12 h (one shift)")
    reason: str = Field(min_length=1, max_length=500)


# async: an attribute read, not worth a thread-pool hop (see api._edge)
async def _alarms(request: Request) -> AlarmService:
    service = getattr(request.app.state, "alarms", None)
    if service is None:
        raise HTTPException(503, "alarms are not enabled on this edge node (monitoring.enabled)")
    return service


Alarms = Annotated[AlarmService, Depends(_alarms)]


# async: an attribute read, not worth a thread-pool hop (see api._edge)
async def _shelves(request: Request) -> Shelves:
    shelves = getattr(request.app.state, "shelves", None)
    if shelves is None:
        raise HTTPException(503, "alarms are not enabled on this edge node (monitoring.enabled)")
    return shelves


ShelfStore = Annotated[Shelves, Depends(_shelves)]


def _described(alarms: list[Alarm], shelves: Shelves | None) -> list[dict[str, Any]]:
    open_shelves = shelves.open() if shelves is not None else {}
    return [isa.describe(a.as_dict(), open_shelves.get((a.source, a.rule))) for a in alarms]


def _json(content: Any) -> Response:
    return Response(_encoder.encode(content), media_type="application/json")


@router.get("/alarms", response_model=list[AlarmOut])
def list_alarms(
    alarms: Alarms,
    request: Request,
    active: Annotated[
        bool | None, Query(description="true: condition present; false: gone")
    ] = None,
    since: EpochMs = None,  # raised (started) at or after
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    shelved: Annotated[
        bool | None, Query(description="false: hide shelved alarms; true: only those")
    ] = None,
) -> Response:
    """Alarms, newest first: the active ones, or those raised since a time (default all),
    each with its ISA-18.2 priority, its state in words and its shelf (if shelved)."""
    if active is True:
        found = alarms.active()
    else:
        found = alarms.history(since=ms_to_ns(since, "since"), limit=limit)
        if active is False:
            found = [a for a in found if not a.active]
    described = _described(found[:limit], getattr(request.app.state, "shelves", None))
    if shelved is not None:
        described = [a for a in described if a["shelved"] == shelved]
    return _json(described)


@router.post("/alarms/{alarm_id}/ack", response_model=AlarmOut)
def acknowledge(alarm_id: AlarmId, alarms: Alarms, user: Operator, request: Request) -> Response:
    """Acknowledge an alarm (operator or engineer); a second acknowledgement changes nothing."""
    try:
        alarm = alarms.acknowledge(alarm_id, user.name)
    except AlarmError as exc:
        raise HTTPException(404, f"{exc}: see GET /api/alarms") from None
    return _json(_described([alarm], getattr(request.app.state, "shelves", None))[0])


@router.post("/alarms/{alarm_id}/shelve", response_model=AlarmOut)
def shelve(
    alarm_id: AlarmId, body: ShelveIn, alarms: Alarms, shelves: ShelfStore, user: Operator
) -> Response:
    """Shelve an alarm (operator or engineer): hidden from the active list until it expires
    (at most 12 h) or someone unshelves it; a repeat of it meanwhile stays shelved."""
    try:
        alarm = alarms.get(alarm_id)
        shelves.shelve(
            alarm.id, alarm.source, alarm.rule, user.name, body.minutes * 60, body.reason
        )
    except AlarmError as exc:
        raise HTTPException(404, f"{exc}: see GET /api/alarms") from None
    except ShelfError as exc:
        raise HTTPException(422, str(exc)) from None
    return _json(_described([alarm], shelves)[0])


@router.post("/alarms/{alarm_id}/unshelve", response_model=AlarmOut)
def unshelve(alarm_id: AlarmId, alarms: Alarms, shelves: ShelfStore, user: Operator) -> Response:
    """Put a shelved alarm back in the active list now."""
    try:
        alarm = alarms.get(alarm_id)
    except AlarmError as exc:
        raise HTTPException(404, f"{exc}: see GET /api/alarms") from None
    shelves.unshelve(alarm.source, alarm.rule, user.name)
    return _json(_described([alarm], shelves)[0])


@router.get("/alarms/journal")
def alarm_journal(
    alarms: Alarms,
    shelves: ShelfStore,
    since: EpochMs = None,  # default: 24 h ago
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> Response:
    """Who did what, newest first: raised, acknowledged, cleared, shelved (reason, until),
    unshelved (by whom, or by expiry). Times in ns."""
    since_ns = ms_to_ns(since, "since") if since is not None else now_ns() - 86_400 * 10**9
    found = [a.as_dict() for a in alarms.history(since=since_ns, limit=limit)]
    return _json(isa.journal(found, shelves.recent(since_ns, limit))[:limit])


@router.get("/alarms/rate")
def alarm_rate(
    alarms: Alarms,
    hours: Annotated[float, Query(gt=0, le=24 * 31)] = 24,
) -> Response:
    """Alarms raised per 10 minutes over the last `hours`, against ANSI/ISA-18.2 and EEMUA 191:
    ~1 per 10 min very likely acceptable, ~2 the maximum manageable, more than 10 a flood."""
    end = now_ns()
    start = end - int(hours * 3600) * 10**9
    start -= start % isa.WINDOW_NS  # whole 10-minute windows on the clock
    raised = [a.raised_at for a in alarms.history(since=start, limit=1_000_000)]
    return _json(isa.flood_summary(raised, start, end).as_dict())


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

"""Master data and cloud sync status: GET /api/master/* and /api/sync, POST /api/sync/now."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel

from edge_node.auth import Role, User, require_role
from edge_node.cloud.link import CloudLink
from edge_node.masterdata import MasterData

router = APIRouter(prefix="/api", tags=["master data"])
_encoder = msgspec.json.Encoder()


def json_response(content: Any, status_code: int = 200) -> Response:
    return Response(_encoder.encode(content), status_code, media_type="application/json")


# async: an attribute read, not worth a thread-pool hop (see api._edge)
async def _link(request: Request) -> CloudLink:
    link = getattr(request.app.state, "cloud", None)
    if link is None:
        raise HTTPException(503, "master data is not available in this process")
    return link


Link = Annotated[CloudLink, Depends(_link)]


def master_units(request: Request) -> dict[str, str]:
    """series name -> unit from master data, for /api/tags (empty without master data)."""
    link = getattr(request.app.state, "cloud", None)
    if link is None:
        return {}
    return {t.name: t.unit for t in link.masterdata.tags() if t.unit}


class EquipmentOut(BaseModel):
    id: str
    name: str
    line: str = ""
    kind: str = ""
    description: str | None = None


class TagOut(BaseModel):
    name: str
    gateway: str
    device: str
    tag: str
    equipment_id: str | None = None
    unit: str | None = None
    description: str | None = None


class LimitsOut(BaseModel):
    series: str
    lsl: float | None = None
    usl: float | None = None
    lcl: float | None = None
    ucl: float | None = None
    mean: float | None = None
    sigma: float | None = None
    version: int
    computed_at: str | None = None


class ParameterOut(BaseModel):
    value: float | str | None = None
    unit: str | None = None


class RecipeOut(BaseModel):
    id: str
    name: str
    parameters: dict[str, ParameterOut]
    products: list[str]


class SyncOut(BaseModel):
    configured: bool
    cloud: str | None
    version: int
    down: dict[str, Any]
    up: dict[str, Any] | None
    pending_outbox: int


def _rows(items: list[Any]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(i) for i in items]


@router.get("/master/equipment", response_model=list[EquipmentOut])
def equipment(link: Link) -> Response:
    """Equipment of this line, from the cloud's master data (retired equipment left out)."""
    return json_response(_rows(link.masterdata.equipment()))


@router.get("/master/tags", response_model=list[TagOut])
def tags(link: Link) -> Response:
    """Tags with their unit, description and equipment, named gateway/device/tag."""
    return json_response([{"name": t.name} | dataclasses.asdict(t) for t in link.masterdata.tags()])


@router.get("/master/limits", response_model=list[LimitsOut])
def limits(link: Link) -> Response:
    """Control (lcl/ucl, mean, sigma) and specification (lsl/usl) limits per series."""
    return json_response(_rows(link.masterdata.all_limits()))


def _recipes(md: MasterData) -> list[dict[str, Any]]:
    products: dict[str, list[str]] = {}
    for p in md.products():
        if p.recipe_id:
            products.setdefault(p.recipe_id, []).append(p.id)
    return [r.as_dict() | {"products": products.get(r.id, [])} for r in md.recipes()]


@router.get("/master/recipes", response_model=list[RecipeOut])
def recipes(link: Link) -> Response:
    """Recipes with their parameters ({name: {value, unit}}) and the products that use them."""
    return json_response(_recipes(link.masterdata))


@router.get("/sync", response_model=SyncOut, tags=["cloud"])
def sync_status(link: Link) -> Response:
    """Sync with the central cloud: down (master-data version, last success, last error) and
    up (rows pushed, marks, outbox records waiting). Times are epoch ms UTC."""
    status = link.status()
    up = status["up"]
    return json_response(
        status
        | {
            "version": status["down"].version,
            "down": dataclasses.asdict(status["down"]) | {"ok": status["down"].ok},
            "up": None if up is None else dataclasses.asdict(up),
        }
    )


Engineer = Annotated[User, Depends(require_role(Role.ENGINEER))]


@router.post("/sync/now", status_code=202, tags=["cloud"])
async def sync_now(link: Link, user: Engineer) -> Response:
    """Pull master data and push pending records now instead of at the next interval."""
    # async: runs on the event loop, where the sync tasks' asyncio.Events may be set.
    link.sync_now()
    return json_response({"requested": True}, 202)

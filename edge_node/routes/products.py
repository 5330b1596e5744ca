"""A product's whole story (the paper's case: every measurement linked to the product in
process): GET /api/products (search, or the product on some equipment at a moment) and
GET /api/products/{id} (recipe, time in each equipment, every parameter during that time,
the measurements taken, defects with their label result, alarms meanwhile)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import msgspec
import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from edge_node import products, tagindex
from edge_node.api_time import EpochMs, ms_to_ns
from edge_node.routes.rules import defect_rows
from edge_node.store import SeriesData, SeriesInfo, Store
from edge_node.tagmeta import TagMeta, enum_name

router = APIRouter(prefix="/api", tags=["products"])
MS = 1_000_000
MAX_CHART_POINTS = 600
Hours = Annotated[float, Query(gt=0, le=24 * 7, description="how far back to look")]


def _json(content: Any) -> Response:
    return Response(msgspec.json.encode(content), media_type="application/json")


def _values(data: SeriesData) -> list[Any]:
    return data.values.tolist() if isinstance(data.values, np.ndarray) else list(data.values)


def _product_histories(store: Store, hours: float) -> list[SeriesData]:
    end = time.time_ns()
    found = [s for s in store.series() if s.kind == "str" and products.is_product_tag(s.tag)]
    return store.history(found, end - int(hours * 3600e9), end + 1)


def _defects(request: Request, product_id: str | None = None) -> list[dict[str, Any]]:
    firings = getattr(request.app.state, "firings", None)
    if firings is None:
        return []
    rows = defect_rows(firings.recent(None, 5000))
    return [r for r in rows if product_id is None or r.get("product_id") == product_id]


@router.get("/products")
def find_products(
    request: Request,
    q: Annotated[str, Query(description="part of a product ID")] = "",
    hours: Hours = 24,
    at: EpochMs = None,  # the product in process at this moment
    source: Annotated[str | None, Query(description="gateway/device[/tag] for `at`")] = None,
) -> Response:
    """Products seen in the last `hours`, newest first, with their equipment and whether a
    defect was recorded; with `at` (and `source`), the product in process at that moment."""
    histories = _product_histories(request.app.state.edge.store, hours)
    if at is not None:
        return _json(_at(histories, ms_to_ns(at, "at"), source))
    defective = {d.get("product_id") for d in _defects(request)}
    found: dict[str, dict[str, Any]] = {}
    for data in histories:
        for pid, (first, last) in products.seen(data.ts.tolist(), _values(data)).items():
            if q.lower() not in pid.lower():
                continue
            item = found.setdefault(pid, {"id": pid, "first": first, "last": last, "equipment": []})
            item["first"], item["last"] = min(item["first"], first), max(item["last"], last)
            item["equipment"].append(f"{data.series.gateway}/{data.series.device}")
    rows = sorted(found.values(), key=lambda p: p["first"], reverse=True)[:200]
    return _json([r | {"first": r["first"] // MS, "last": r["last"] // MS,
                       "defect": r["id"] in defective} for r in rows])  # fmt: skip


def _at(histories: list[SeriesData], moment: int, source: str | None) -> list[dict[str, Any]]:
    device = "/".join(source.split("/")[:2]) if source else ""
    gateway = device.split("/")[0] if device else ""
    ranked = sorted(histories, key=lambda d: (d.series.name.startswith(device + "/") if device
                                               else False), reverse=True)  # fmt: skip
    for data in ranked:
        if gateway and data.series.gateway != gateway:
            continue
        pid = products.at(data.ts.tolist(), _values(data), moment)
        if pid:
            return [{"id": pid, "series": data.series.name}]
    return []


@router.get("/products/{product_id}")
def product_story(product_id: str, request: Request, hours: Hours = 24) -> Response:
    """Recipe, each equipment's span with every parameter as a chart and the values read at
    its start (the colour measurement), defect records with the label result, and alarms."""
    store: Store = request.app.state.edge.store
    index = tagindex.build(store, request)
    stays = _stays(store, _product_histories(store, hours), product_id)
    if not stays:
        raise HTTPException(404, f"no equipment reported product {product_id!r} in {hours:g} h")
    equipment = [_equipment(store, index.meta, span) for span in stays]
    defects = _defects(request, product_id)
    return _json(
        {
            "id": product_id,
            "start": stays[0].start // MS,
            "end": max(s.end for s in stays) // MS,
            "recipe": _recipe(request, product_id, defects, equipment),
            "equipment": equipment,
            "defects": defects,
            "alarms": _alarms(request, stays),
        }
    )


def _stays(store: Store, histories: list[SeriesData], product_id: str) -> list[products.Span]:
    by_device = {s.name.rsplit("/", 1)[0]: s for s in store.series() if s.tag == "in_process"}
    out = []
    for data in histories:
        for span in products.spans(data.series.name, data.ts.tolist(), _values(data), product_id):
            flag = by_device.get(span.device)
            if flag is not None:
                (flags,) = store.history([flag], span.start, span.end + 1)
                span = products.cut_to_process(span, flags.ts.tolist(), _values(flags))
            out.append(span)
    return sorted(out, key=lambda s: s.start)


def _equipment(store: Store, meta: dict[str, TagMeta], span: products.Span) -> dict[str, Any]:
    gateway, device = span.device.split("/")
    mine = [s for s in store.series() if (s.gateway, s.device) == (gateway, device)]
    end = span.end + 1 if span.open else span.end
    histories = store.history(mine, span.start, end)
    lead = store.history(mine, span.start, end + 5 * 10**9)  # the reading that opened the span
    return {
        "device": span.device,
        "equipment_id": _equipment_id(meta, span.device),
        "start": span.start // MS,
        "end": span.end // MS,
        "open": span.open,
        "duration_s": round((span.end - span.start) / 1e9, 1),
        "parameters": [_chart(d, meta.get(d.series.name)) for d in histories if len(d)],
        "values": [_first(d, meta.get(d.series.name)) for d in lead if len(d)],
    }


def _equipment_id(meta: dict[str, TagMeta], device: str) -> str | None:
    """Master data's equipment for this gateway/device, through any of its tags."""
    owners = (m.equipment_id for n, m in meta.items() if n.startswith(device + "/"))
    return next((e for e in owners if e), None)


def _chart(data: SeriesData, meta: TagMeta | None) -> dict[str, Any]:
    step = max(1, len(data) // MAX_CHART_POINTS)
    values = _values(data)[::step]
    if meta is not None and meta.type == "int":
        values = [None if v is None or v != v else int(v) for v in values]
    head = _head(data.series, meta)
    return head | {"t": (data.ts[::step] // MS).tolist(), "v": values}


def _first(data: SeriesData, meta: TagMeta | None) -> dict[str, Any]:
    value = _values(data)[0]
    if meta is not None and meta.type == "int" and isinstance(value, float) and value == value:
        value = int(value)
    return _head(data.series, meta) | {"t": int(data.ts[0]) // MS, "value": value,
                                       "text": enum_name(meta, value)}  # fmt: skip


def _head(info: SeriesInfo, meta: TagMeta | None) -> dict[str, Any]:
    if meta is None:
        return {"name": info.name, "kind": info.kind, "label": info.tag, "unit": info.unit}
    return {"name": info.name, "kind": info.kind, "label": meta.label, "unit": meta.unit,
            "type": meta.type, "enum": meta.enum, "precision": meta.precision}  # fmt: skip


def _recipe(
    request: Request, product_id: str, defects: list[dict[str, Any]], equipment: list[dict]
) -> dict[str, Any] | None:
    """Master data's recipe for the product, else the one a defect record names, else the
    recipe number the equipment ran while the product was in it."""
    link = getattr(request.app.state, "cloud", None)
    recipe = link.masterdata.recipe_for_product(product_id) if link is not None else None
    if recipe is not None:
        return recipe.as_dict() | {"source": "master data"}
    for d in defects:
        if isinstance(d.get("recipe"), dict):
            return d["recipe"] | {"source": "defect record"}
    for e in equipment:
        for v in e["values"]:
            if v["name"].endswith("/recipe"):
                return {"id": str(v["value"]), "name": v["text"] or str(v["value"]),
                        "source": f"{e['device']} while in process"}  # fmt: skip
    return None


def _alarms(request: Request, stays: list[products.Span]) -> list[dict[str, Any]]:
    alarms = getattr(request.app.state, "alarms", None)
    if alarms is None:
        return []
    start, end = stays[0].start, max(s.end for s in stays)
    devices = tuple(s.device + "/" for s in stays)
    found = alarms.history(since=start, until=end + 1, limit=500)
    return [a.as_dict() for a in found if a.source.startswith(devices)]

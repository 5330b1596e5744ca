"""The edge node's HTTP API (FastAPI, OpenAPI at /docs) and the operators' web page at /.

Responses are encoded with msgspec, history's columns by orjson straight from numpy arrays
(columns_json.py), not through FastAPI's per-object encoder: a day of 23 series is 2M values
and must stay well under a second.
Times in responses are epoch milliseconds (UTC); history series are columns (arrays), so a
point costs a few bytes of JSON, not a dict.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import msgspec
import numpy as np
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import Response

from edge_node import api_models as m
from edge_node import columns_json, routes, tagindex
from edge_node.api_time import MS, parse_time
from edge_node.auth import AuthService, api_guard
from edge_node.ingest import IngestStats
from edge_node.paths import NormalisePaths
from edge_node.routes import alarms as alarm_routes
from edge_node.routes import masterdata as masterdata_routes
from edge_node.routes import products as product_routes
from edge_node.routes import rules as rule_routes
from edge_node.store import Buckets, SeriesData, SeriesInfo, Store
from edge_node.store.downsample import last_per_bucket, min_max_mean
from edge_node.tagmeta import TagMeta

WEB_DIR = Path(__file__).parent / "web"
DEFAULT_SPAN_MS = 3_600_000
MAX_RAW_POINTS = 5_000_000
MAX_POINTS = 100_000
_encoder = msgspec.json.Encoder()


def json_response(content: Any, status_code: int = 200) -> Response:
    return Response(_encoder.encode(content), status_code, media_type="application/json")


def _ms(ts: np.ndarray) -> np.ndarray:
    return ts // MS


def _values(values: Any) -> list[Any]:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


# What a history series says about its tag: how to show its values. The write limits and
# `writable` stay in /api/tags: a minmax series' own `min` and `max` are its bucket columns.
META_FIELDS = ("label", "type", "unit", "enum", "precision")


def _head(info: SeriesInfo, meta: TagMeta | None = None) -> dict[str, Any]:
    head = {"name": info.name, "kind": info.kind, "unit": info.unit}
    if meta is not None:
        head |= {f: getattr(meta, f) for f in META_FIELDS}
    return head


def _ints(values: Any) -> list[Any]:
    """float64 history of an integer tag back to integers (NaN: no value), so 54321 stays
    54321 in every API, as the gateway sent it."""
    if not isinstance(values, np.ndarray):
        return list(values)
    if values.dtype.kind in "iub":
        return values.tolist()
    out: list[Any] = values.tolist()
    for i, x in enumerate(out):
        out[i] = None if x != x else int(x)
    return out


def _columns(values: Any) -> Any:
    """Values as columns_json writes them: numeric arrays as they are, the rest as a list."""
    return values if isinstance(values, np.ndarray) else list(values)


def _empty_series(meta: TagMeta) -> dict[str, Any]:
    """A known tag with no reading in range (or none yet): its metadata and no points."""
    return {"name": meta.name, "kind": meta.kind, "mode": "raw", "t": [], "v": [], "q": None} | {
        f: getattr(meta, f) for f in META_FIELDS
    }


def _buckets_json(b: Buckets, integer: bool = False) -> dict[str, Any]:
    extreme = _ints if integer else _columns
    return {
        "mode": "minmax",
        "t": _ms(b.t),
        "min": extreme(b.min),
        "max": extreme(b.max),
        "mean": b.mean,
        "count": b.count,
    }


def series_json(
    data: SeriesData, start: int, end: int, points: int | None, meta: TagMeta | None = None
) -> dict[str, Any]:
    head = _head(data.series, meta)
    integer = meta is not None and meta.type == "int"
    if points is None or len(data) <= points:
        quality = data.quality if data.quality.any() else None
        values = _ints(data.values) if integer else _columns(data.values)
        return head | {"mode": "raw", "t": _ms(data.ts), "v": values, "q": quality}
    if not isinstance(data.values, np.ndarray):  # strings: the last value per bucket
        ts, last = last_per_bucket(data.ts, _values(data.values), start, end, points)
        return head | {"mode": "last", "t": _ms(ts), "v": last}
    return head | _buckets_json(min_max_mean(data.ts, data.values, start, end, points), integer)


@dataclass(frozen=True)
class EdgeState:
    """What the routes read: reached through a FastAPI dependency, so tests build their own."""

    store: Store
    stats: IngestStats
    edge_id: str = ""
    started: float = field(default_factory=time.monotonic)
    timezone: str = "UTC"  # the plant's, for the UI's times


# async: FastAPI runs a plain `def` dependency in its thread pool, a hop of ~125 us
# per request measured here, and this one only reads request state.
async def _edge(request: Request) -> EdgeState:
    return request.app.state.edge


Edge = Annotated[EdgeState, Depends(_edge)]
router = APIRouter(prefix="/api")


@router.get("/health", response_model=m.Health, tags=["health"])
def health(edge: Edge) -> Response:
    """Liveness and readiness: `status` is degraded while the MQTT broker is unreachable."""
    connected = edge.stats.connected
    return json_response(
        {
            "status": "ok" if connected else "degraded",
            "edge": edge.edge_id,
            "mqtt_connected": connected,
            "uptime_s": round(time.monotonic() - edge.started, 3),
            "timezone": edge.timezone,
        }
    )


@router.get("/stats", response_model=m.Stats, tags=["health"])
def stats(edge: Edge) -> Response:
    """Ingest counters (incl. rejected payloads per gateway and reason) and store size."""
    return json_response({"ingest": edge.stats.as_dict(), "store": edge.store.stats()})


@router.get("/gateways", response_model=list[m.Gateway], tags=["gateways"])
def gateways(edge: Edge) -> Response:
    """The latest retained status of every gateway seen, as the gateway sent it, and when the
    edge last heard from the gateway itself (a last will comes from the broker), and what
    this edge refused of it, by reason (e.g. `seq_jump`: seqs it cannot have issued yet)."""
    heard = edge.store.heard()
    rejected = edge.stats.as_dict()["rejected"]
    return json_response(
        [
            {
                "gateway": g.gateway,
                "online": g.online,
                "ts": g.ts // MS,
                "received_at": g.received_at // MS,
                "last_heard": heard[g.gateway] // MS if g.gateway in heard else None,
                "status": msgspec.json.decode(g.payload),
                "rejected": rejected.get(g.gateway, {}),
            }
            for g in edge.store.gateways()
        ]
    )


@router.get("/tags", response_model=list[m.Tag], tags=["data"])
def tags(edge: Edge, request: Request) -> Response:
    """Every tag a gateway declared or the edge stored, named gateway/device/tag, with its
    type, unit, label, enumeration names, display precision and write limits: the gateways'
    tag catalogues merged with master data (master data wins where both say something)."""
    index = tagindex.build(edge.store, request)
    return json_response([meta.as_dict() for meta in index.meta.values()])


TagFilter = Annotated[list[str] | None, Query(description="gateway/device/tag; all if absent")]


@router.get("/latest", response_model=list[m.Latest], tags=["data"])
def latest(edge: Edge, request: Request, tag: TagFilter = None) -> Response:
    """The newest reading (by timestamp) of each series, `stale` (and quality `uncertain`)
    when its gateway is offline, its connector or device is down, or it is overdue."""
    index = tagindex.build(edge.store, request)
    return json_response(tagindex.latest_json(index, set(tag) if tag else None))


Tags = Annotated[list[str], Query(description="gateway/device/tag, repeat for more")]
Start = Annotated[str | None, Query(description="epoch ms or ISO 8601; default end - 1 h")]
End = Annotated[str | None, Query(description="epoch ms or ISO 8601; default now")]
Points = Annotated[
    int | None, Query(ge=1, le=MAX_POINTS, description="max buckets per series; raw if absent")
]


@router.get("/history", response_model=m.History, tags=["data"])
def history(
    edge: Edge,
    request: Request,
    tag: Tags,
    start: Start = None,
    end: End = None,
    points: Points = None,
) -> Response:
    """History over [start, end) per series: raw columns, or min/max/mean per time bucket
    when `points` is given and a series has more readings than that. A tag a gateway declared
    but never reported answers with its metadata and no points; only unknown names are 404."""
    end_ns = parse_time(end, time.time_ns() // MS, "end")
    start_ns = parse_time(start, end_ns // MS - DEFAULT_SPAN_MS, "start")
    if end_ns <= start_ns:
        raise HTTPException(422, "end must be after start")
    meta = tagindex.meta_of(edge.store, request, tag)
    found, unknown = edge.store.lookup(tag)
    missing = [n for n in unknown if n not in meta]
    if missing:
        raise HTTPException(404, f"unknown tag(s) {missing}: see /api/tags for the names")
    if points is None:
        data = edge.store.history(found, start_ns, end_ns)
        if sum(len(d) for d in data) > MAX_RAW_POINTS:
            raise HTTPException(
                413, f"more than {MAX_RAW_POINTS} raw points: pass points=N or a shorter range"
            )
        done = {
            d.series.name: series_json(d, start_ns, end_ns, None, meta.get(d.series.name))
            for d in data
        }
    else:
        done = downsampled_json(edge.store, found, start_ns, end_ns, points, meta)
    series = [done[n] if n in done else _empty_series(meta[n]) for n in dict.fromkeys(tag)]
    body = {"start": start_ns // MS, "end": end_ns // MS, "points": points, "series": series}
    return Response(columns_json.encode(body), media_type="application/json")


def downsampled_json(
    store: Store,
    found: list[SeriesInfo],
    start: int,
    end: int,
    points: int,
    meta: dict[str, TagMeta] | None = None,
) -> dict[str, dict[str, Any]]:
    """Minute summaries where they answer (long ranges of numbers); raw history reduced here
    otherwise, or returned as is when a series has no more than `points` readings."""
    meta = meta or {}
    fast = store.downsample(found, start, end, points)
    slow = [i for i, b in enumerate(fast) if b is None or int(b.count.sum()) <= points]
    history = store.history([found[i] for i in slow], start, end) if slow else []
    raw = dict(zip(slow, history, strict=True))
    out = {}
    for i, info in enumerate(found):
        buckets = fast[i]
        tag_meta = meta.get(info.name)
        if i in raw or buckets is None:
            out[info.name] = series_json(raw[i], start, end, points, tag_meta)
        else:
            integer = tag_meta is not None and tag_meta.type == "int"
            out[info.name] = _head(info, tag_meta) | _buckets_json(buckets, integer)
    return out


def create_app(
    store: Store,
    stats: IngestStats,
    *,
    edge_id: str = "",
    timezone: str = "UTC",
    web: bool = True,
    auth: AuthService | None = None,  # None: no login (unit tests); app.py always passes one
) -> FastAPI:
    app = FastAPI(
        title="Factory edge node",
        version="0.1.0",
        description="Latest values, history (raw and downsampled), gateways and ingest health "
        "of one edge node. Times are epoch milliseconds UTC unless stated.",
        dependencies=[Depends(api_guard)],  # every /api route needs a login unless OPEN_PATHS
    )
    app.state.edge = EdgeState(store, stats, edge_id, timezone=timezone)
    app.include_router(router)
    routes.install(app, auth)
    app.include_router(masterdata_routes.router)  # /api/master/*, /api/sync
    app.include_router(alarm_routes.router)  # /api/alarms (services: rules/runtime.py)
    app.include_router(rule_routes.router)  # /api/rules, /api/rules/firings, /api/defects
    app.include_router(product_routes.router)  # /api/products: a product's whole story
    if web:  # last: the page's static files are mounted at "/" and would hide later routes
        routes.mount_web(app)
    app.add_middleware(NormalisePaths)  # outermost: routing and the login see one path
    return app

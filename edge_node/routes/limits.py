"""GET /api/limits: the limits monitoring applies to each stored series, for the UI's gauges.

Monitoring chains master data's control limits (synced from the cloud) with the
config's `monitoring.limits` fallback; the page shows exactly what raises alarms.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from edge_node import spc_chart
from edge_node.spc import Limits

router = APIRouter(prefix="/api", tags=["data"])
FIELDS = ("mean", "sigma", "lcl", "ucl", "lsl", "usl")


class SeriesLimits(BaseModel):
    series: str
    mean: float | None = None
    sigma: float | None = None
    lcl: float | None = None
    ucl: float | None = None
    lsl: float | None = None
    usl: float | None = None


def _source(request: Request) -> Any:
    """Whatever answers limits(series_name): the monitor's chain, else master data."""
    monitor = getattr(request.app.state, "monitor", None)
    if monitor is not None:
        return monitor.source
    cloud = getattr(request.app.state, "cloud", None)
    return getattr(cloud, "masterdata", None)


@router.get("/limits", response_model=list[SeriesLimits])
def limits(request: Request) -> Response:
    """Per stored series with limits: control (mean, sigma, lcl, ucl) and spec (lsl, usl)."""
    source = _source(request)
    rows = []
    if source is not None:
        for info in request.app.state.edge.store.series():
            found = source.limits(info.name)
            if found is not None:
                rows.append({"series": info.name} | {f: getattr(found, f, None) for f in FIELDS})
    return Response(msgspec.json.encode(rows), media_type="application/json")


@router.get("/spc")
def control_chart(
    request: Request,
    tag: str = Query(description="gateway/device/tag"),
    minutes: float = Query(30, gt=0, le=7 * 24 * 60, description="how far back"),
) -> Response:
    """An individuals / moving-range control chart of one series over the last `minutes`
    (its last 2000 points): centre line, sigma zones and spec limits from the limits
    monitoring applies, each point that violated a rule marked with the rule (spec, rule1..4)."""
    store = request.app.state.edge.store
    found, _ = store.lookup([tag])
    source = _source(request)
    limits = source.limits(tag) if source is not None else None
    if not found:
        raise HTTPException(404, f"no readings of {tag!r} yet: see /api/tags for the names")
    end = time.time_ns()
    (data,) = store.history(found, end - int(minutes * 60e9), end)
    values = data.values.tolist() if hasattr(data.values, "tolist") else list(data.values)
    chart = spc_chart.chart((data.ts // 1_000_000).tolist(), values,
                            Limits.of(limits) if limits is not None else None)  # fmt: skip
    return Response(msgspec.json.encode({"name": tag} | chart), media_type="application/json")

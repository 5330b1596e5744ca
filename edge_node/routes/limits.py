"""GET /api/limits: the limits monitoring applies to each stored series, for the UI's gauges.

Monitoring (H2) chains master data's control limits (H1, synced from the cloud) with the
config's `monitoring.limits` fallback; the page shows exactly what raises alarms.
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

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

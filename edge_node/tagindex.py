"""Gathers what the API needs to describe tags truthfully: metadata, gateway statuses, latest.

Thin I/O around the pure `tagmeta.merge` and `freshness.judge`: reads the store (catalogues,
series, latest values, statuses) and master data (when this process has it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from edge_node.freshness import judge
from edge_node.store import LatestValue, Store
from edge_node.tagmeta import StoredSeries, TagMeta, enum_name, merge
from factory_common.wire import GatewayStatus, Quality, WireError, decode, now_ns

MS = 1_000_000


@dataclass(frozen=True, slots=True)
class TagIndex:
    meta: dict[str, TagMeta]
    latest: list[LatestValue]
    statuses: dict[str, GatewayStatus]


def master_tags(request: Request) -> list[Any]:
    link = getattr(request.app.state, "cloud", None)
    return link.masterdata.tags() if link is not None else []


def statuses(store: Store) -> dict[str, GatewayStatus]:
    out = {}
    for record in store.gateways():
        try:
            out[record.gateway] = decode(record.payload, GatewayStatus)
        except WireError:
            continue  # stored by an older edge in another shape: no status known
    return out


def build(store: Store, request: Request) -> TagIndex:
    latest = store.latest()
    return TagIndex(_merged(store, request, latest, None), latest, statuses(store))


def meta_of(store: Store, request: Request, names: Iterable[str]) -> dict[str, TagMeta]:
    """`build(...).meta` of just these tags: a request naming a few tags does not pay for
    every tag the edge knows (~15 us a tag) nor for the gateways' statuses."""
    return _merged(store, request, store.latest(), set(names))


def _merged(
    store: Store, request: Request, latest: list[LatestValue], wanted: set[str] | None
) -> dict[str, TagMeta]:
    """Catalogues, stored series (with their newest value) and master data merged, for the
    `wanted` names only unless None."""
    newest = {v.series.name: v.value for v in latest}
    stored = [
        StoredSeries(s.gateway, s.device, s.tag, s.kind, s.unit, newest.get(s.name))
        for s in store.series()
        if wanted is None or s.name in wanted
    ]
    return merge(store.catalogues(), stored, master_tags(request), only=wanted)


def latest_json(index: TagIndex, wanted: set[str] | None) -> list[dict[str, Any]]:
    """Each newest value with its unit, enumeration name and whether it is still current."""
    now = now_ns()
    out = []
    for v in index.latest:
        name = v.series.name
        if wanted is not None and name not in wanted:
            continue
        meta = index.meta.get(name)
        fresh = judge(meta, v.ts, index.statuses.get(v.series.gateway), now)
        quality, reason = v.quality, v.reason
        if fresh.stale and quality == Quality.GOOD.value:
            quality, reason = Quality.UNCERTAIN.value, f"stale: {fresh.why}"
        out.append(
            {
                "name": name,
                "t": v.ts // MS,
                "ts_ns": v.ts,
                "value": v.value,
                "text": enum_name(meta, v.value),
                "quality": quality,
                "reason": reason,
                "stale": fresh.stale,
                "stale_reason": fresh.why,
                "age_s": round(max(0, now - v.ts) / 1e9, 1),
                "unit": meta.unit if meta else v.series.unit,
                "label": meta.label if meta else v.series.tag,
            }
        )
    return out

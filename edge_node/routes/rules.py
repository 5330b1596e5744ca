"""Rules over HTTP: what is loaded (and why a reload was refused), firings, and the defect log."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from edge_node.api_time import EpochMs, ms_to_ns
from edge_node.rules.engine import RuleEngine
from edge_node.rules.store import FiringStore

router = APIRouter(prefix="/api", tags=["rules"])
_encoder = msgspec.json.Encoder()


# async: an attribute read, not worth a thread-pool hop (see api._edge)
async def _engine(request: Request) -> RuleEngine:
    engine = getattr(request.app.state, "rules", None)
    if engine is None:
        raise HTTPException(
            503, "no rules on this edge node: add `rules: {path: ...}` to its config"
        )
    return engine


Engine = Annotated[RuleEngine, Depends(_engine)]


# async: an attribute read, not worth a thread-pool hop (see api._edge)
async def _firings(request: Request) -> FiringStore:
    """API replicas have the firings (shared file) but no engine: the ingest process runs it."""
    store = getattr(request.app.state, "firings", None)
    if store is None:
        raise HTTPException(
            503, "no rules on this edge node: add `rules: {path: ...}` to its config"
        )
    return store


Firings = Annotated[FiringStore, Depends(_firings)]


def _json(content: Any) -> Response:
    return Response(_encoder.encode(content), media_type="application/json")


@router.get("/rules")
def rules(engine: Engine) -> Response:
    """The rules in force, their counters, and the last reload error (file:line: problem)."""
    return _json(engine.describe())


@router.get("/rules/firings")
def firings(
    store: Firings,
    rule: Annotated[str | None, Query(description="only this rule id")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
) -> Response:
    """Firings newest first: trigger, once-per key, inputs, each action's result, outcome."""
    return _json(store.recent(rule, limit))


def defect_rows(firings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per defect record a rule sent to the cloud, with the label command's result."""
    rows = []
    for firing in firings:
        actions = firing["actions"] or []
        commands = [a for a in actions if a.get("type") == "command"]
        for action in actions:
            if action.get("type") != "cloud_event" or action.get("kind") != "defect":
                continue
            row = dict(action.get("payload") or {})
            row.setdefault("ts", firing["started_at"])
            row |= {"rule": firing["rule_id"], "firing": firing["id"], "key": action.get("key")}
            if commands:
                row["label_status"] = commands[-1].get("status")
                row["label_ok"] = bool(commands[-1].get("ok"))
            rows.append(row)
    return rows


@router.get("/defects")
def defects(
    store: Firings,
    since: EpochMs = None,  # raised (started) at or after
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> Response:
    """Defect records sent to the cloud by rules (the paper's case), newest first."""
    since_ns = ms_to_ns(since, "since")
    found = [f for f in store.recent(None, limit) if f["started_at"] >= since_ns]
    return _json(defect_rows(found))

"""What a rule can do: command a gateway, send an event to the cloud, raise an alarm, call a URL.

Each action returns a JSON-able result with `ok`; an action that cannot run (no outbox on this
node, a network error, a refused command) is a result with ok=False, not an exception, so the
rule's other actions still run and the firing records exactly what happened.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import msgspec

from edge_node.alarms.service import AlarmService
from edge_node.commands import CommandSender
from edge_node.rules.expr import compile_template, render
from edge_node.rules.model import Action
from edge_node.rules.store import to_json
from factory_common.wire import WireError, Write


class Outbox(Protocol):
    """The CloudOutbox (edge_node/cloud): `add` may be sync or async."""

    def add(self, kind: str, payload: dict[str, Any], key: str) -> Any: ...


@dataclass
class Services:
    commands: CommandSender | None = None
    outbox: Outbox | None = None
    alarms: AlarmService | None = None
    http: httpx.AsyncClient | None = None


@dataclass(frozen=True)
class CompiledAction:
    kind: str
    spec: dict[str, Any]  # the action's fields, `=expr` strings compiled


def compile_action(action: Action) -> CompiledAction:
    return CompiledAction(action.kind, compile_template(action.spec.model_dump()))


def plain(value: Any) -> Any:
    """JSON-able builtins (master-data objects become dicts)."""
    return msgspec.json.decode(to_json(value))


async def run_action(
    action: CompiledAction, ctx: Mapping[str, Any], services: Services
) -> dict[str, Any]:
    spec = render(action.spec, ctx)
    handler = _HANDLERS[action.kind]
    return {"type": action.kind} | await handler(spec, ctx, services)


async def _command(spec: dict[str, Any], ctx: Mapping[str, Any], s: Services) -> dict[str, Any]:
    if s.commands is None:
        return {"ok": False, "detail": "no command sender on this node"}
    writes = [Write(w["device"], w["tag"], plain(w["value"])) for w in spec["writes"]]
    try:
        outcome = await s.commands.send(
            str(spec["gateway"]), writes, issued_by=f"rule:{ctx['rule']}",
            timeout=spec["timeout"], expires=spec["expires"],
        )  # fmt: skip
    except WireError as exc:  # a gateway id that cannot be a topic
        return {"ok": False, "detail": str(exc)}
    results = (outcome.ack or {}).get("results", [])
    return {
        "ok": outcome.ok, "command_id": outcome.id, "gateway": outcome.gateway,
        "status": outcome.status, "results": results, "detail": outcome.detail,
    }  # fmt: skip


async def _cloud_event(spec: dict[str, Any], _ctx: Any, s: Services) -> dict[str, Any]:
    if s.outbox is None:
        return {"ok": False, "detail": "no cloud outbox on this node (configure cloud sync)"}
    payload, key, kind = plain(spec["payload"]), str(spec["key"]), str(spec["kind"])
    if inspect.iscoroutinefunction(s.outbox.add):
        await s.outbox.add(kind, payload, key)
    else:  # CloudOutbox commits with fsync: not on the event loop
        await asyncio.to_thread(s.outbox.add, kind, payload, key)
    return {"ok": True, "kind": spec["kind"], "key": key, "payload": payload}


async def _alarm(spec: dict[str, Any], ctx: Mapping[str, Any], s: Services) -> dict[str, Any]:
    if s.alarms is None:
        return {"ok": False, "detail": "alarms are disabled on this node"}
    source, rule = str(spec["source"]), str(spec["rule"])
    if spec["clear"]:
        cleared = s.alarms.clear_active(source, rule, by=f"rule:{ctx['rule']}")
        return {"ok": True, "cleared": cleared.id if cleared else None}
    alarm = s.alarms.raise_(
        source, rule, str(spec["message"]) or f"rule {ctx['rule']}",
        severity=spec["severity"], value=plain(ctx.get("value")),
        details={"rule": ctx["rule"]},
    )  # fmt: skip
    return {"ok": True, "alarm_id": alarm.id, "count": alarm.count}


async def _webhook(spec: dict[str, Any], _ctx: Any, s: Services) -> dict[str, Any]:
    if s.http is None:
        return {"ok": False, "detail": "no HTTP client (the rule engine is not running)"}
    try:
        response = await s.http.post(
            str(spec["url"]), json=plain(spec["payload"]), headers=spec["headers"],
            timeout=spec["timeout"],
        )  # fmt: skip
    except httpx.HTTPError as exc:
        return {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
    return {"ok": response.is_success, "status_code": response.status_code}


_HANDLERS = {
    "command": _command,
    "cloud_event": _cloud_event,
    "alarm": _alarm,
    "webhook": _webhook,
}

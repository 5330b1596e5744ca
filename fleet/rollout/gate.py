"""The health gate, pure: is a gateway on the target and really working, failed, or not yet?

A gateway passes when, after it was asked, it reports the target (the release version, or for
a config push a restart after the push), is online, every connector is up, its buffer has
drained, and the edge's receipts for it have advanced past where they stood when it was asked:
its data really arrives. It fails when it cannot be reached, its update agent says it went
back to the previous slot, or the deadline passes first.
"""

from __future__ import annotations

from dataclasses import dataclass

# UpdateState phases (factory_common.wire.UpdatePhase) that end a request without the target.
RETURNED_STATES = frozenset({"rolled_back", "refused", "failed"})


@dataclass(frozen=True)
class Observation:
    """What the fleet knows about one gateway right now (MQTT status, receipts, backend)."""

    reachable: bool = True
    online: bool = False
    version: str = ""
    started_at_ns: int = 0  # when the gateway process started (from its status)
    status_ts_ns: int = 0
    connectors_total: int = 0
    connectors_up: int = 0
    buffer_depth: int = 0
    stored_seq: int = 0  # the highest seq the edge's receipt says it holds
    agent_state: str = ""  # the update agent's phase for *this* request, when it reports one
    error: str = ""


@dataclass(frozen=True)
class Verdict:
    done: bool  # False: still waiting
    ok: bool
    reason: str


WAITING = Verdict(False, False, "waiting")


@dataclass(frozen=True)
class GateSpec:
    kind: str  # "release" or "config"
    target: str
    requested_at_ns: int
    baseline_seq: int
    deadline: float
    drained_depth: int = 1000
    require_receipts: bool = True


def _unmet(spec: GateSpec, obs: Observation) -> str:
    """The first condition still unmet, or '' when the gateway is healthy on the target."""
    if not obs.online:
        return "offline"
    if spec.kind == "release" and obs.version != spec.target:
        return f"reports version {obs.version or '?'}, not {spec.target}"
    restarted = obs.started_at_ns > spec.requested_at_ns or obs.agent_state == "committed"
    if spec.kind == "config" and not restarted:
        return "has not restarted with the new config"
    if obs.connectors_up < obs.connectors_total:
        return (
            f"{obs.connectors_total - obs.connectors_up} of {obs.connectors_total} connectors down"
        )
    if obs.buffer_depth > spec.drained_depth:
        return f"buffer not drained ({obs.buffer_depth} readings queued)"
    if spec.require_receipts and obs.stored_seq <= spec.baseline_seq:
        return "the edge's receipts have not advanced"
    return ""


def evaluate(spec: GateSpec, obs: Observation | None, now: float) -> Verdict:
    if obs is not None and not obs.reachable:
        return Verdict(True, False, f"unreachable: {obs.error or 'no answer'}")
    if obs is not None and obs.agent_state in RETURNED_STATES:
        detail = f": {obs.error}" if obs.error else ""
        return Verdict(True, False, f"the update agent ended it: {obs.agent_state}{detail}")
    unmet = "no status received" if obs is None else _unmet(spec, obs)
    if not unmet:
        return Verdict(True, True, "healthy")
    if now >= spec.deadline:
        return Verdict(True, False, f"not healthy within the gate timeout: {unmet}")
    return Verdict(False, False, unmet)

"""The thin shell around the engine: persist each step, then take it; gate on what gateways report.

Order per step: apply the intent (Asking / Returning) and save it, then do the I/O, then apply
and save the outcome. A process killed anywhere restarts from the store and the engine asks
again for whatever is persisted as under way (asking twice is harmless to the agent).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from fleet.backends.base import Ask, Backend, Target, send_parallel
from fleet.inventory import Inventory
from fleet.rollout import engine
from fleet.rollout.gate import GateSpec, Observation, evaluate
from fleet.rollout.model import (
    FINAL,
    Asked,
    AskFailed,
    Asking,
    Check,
    Event,
    Gated,
    Operator,
    Phase,
    Request,
    Returned,
    Returning,
    Revert,
    Rollout,
    Wait,
)
from fleet.rollout.targets import TargetError
from fleet.status_feed import Heard, StatusFeed
from fleet.store import lease
from fleet.store.rollouts import StateStore

EventSink = Callable[[dict[str, object]], None]


def request_id(rollout: Rollout, gateway: str, revert: bool = False) -> str:
    """Stable across restarts, so the agent answers a repeated request instead of redoing it."""
    return f"{rollout.id}/{gateway}/{'revert' if revert else rollout.kind}"


def observation(heard: Heard | None, request: str, problem: str = "") -> Observation | None:
    """What the gate sees: the gateway's retained status and receipts, its agent's state for
    this request (an older request's state says nothing about this one), backend trouble."""
    if problem:
        return Observation(reachable=False, error=problem)
    if heard is None or heard.status is None:
        return None
    s = heard.status
    update = heard.update if heard.update and heard.update.request == request else None
    return Observation(
        agent_state=update.phase.value if update else "",
        error=update.detail if update else "",
        online=s.online,
        version=s.version,
        started_at_ns=s.started_at,
        status_ts_ns=s.ts,
        connectors_total=len(s.connectors),
        connectors_up=sum(c.state == "up" for c in s.connectors),
        buffer_depth=s.buffer_depth,
        stored_seq=heard.stored_seq,
    )


@dataclass
class Runner:
    store: StateStore
    inventory: Inventory
    backend: Backend
    feed: StatusFeed
    targets: Callable[[str, str, str], Target]  # (kind, value, gateway) -> what to deliver
    operator: str
    emit: EventSink = lambda _event: None
    poll_s: float = 0.5
    clock: Callable[[], float] = time.time
    _notes: list[tuple[str, str, str, str, str]] = field(default_factory=list)

    # ------------------------------------------------------------ persistence

    def _apply(self, rollout: Rollout, events: Iterable[Event]) -> Rollout:
        """Apply events and save what changed (with their audit notes) in one transaction."""
        before = rollout
        for event in events:
            rollout = engine.apply(rollout, event, self.clock())
        changed = [g for g, s in rollout.steps.items() if s is not before.steps.get(g)]
        notes = self._notes + self._outcome_notes(before, rollout, changed)
        self.store.save(rollout, changed, notes)
        self._notes = []
        for gw in changed:
            step = rollout.steps[gw]
            self.emit(
                {
                    "event": "step",
                    "rollout": rollout.id,
                    "gateway": gw,
                    "wave": step.wave,
                    "phase": step.phase.value,
                    "detail": step.detail,
                }
            )
        if rollout.state is not before.state:
            self.emit(
                {
                    "event": "rollout",
                    "rollout": rollout.id,
                    "state": rollout.state.value,
                    "wave": rollout.wave,
                }
            )
        return rollout

    def _outcome_notes(self, before: Rollout, after: Rollout, changed: list[str]):
        notes = []
        for gw in changed:
            step = after.steps[gw]
            if step.phase in (Phase.HEALTHY, Phase.FAILED, Phase.REVERTED, Phase.REVERT_FAILED):
                notes.append(
                    (
                        self.operator,
                        f"{after.kind} {step.phase.value}",
                        gw,
                        step.phase.value,
                        f"{after.id} {after.target}: {step.detail}",
                    )
                )
        if after.state is not before.state:
            notes.append(
                (
                    self.operator,
                    "rollout state",
                    after.id,
                    after.state.value,
                    f"wave {after.wave + 1}/{after.waves}",
                )
            )
        return notes

    # ------------------------------------------------------------ the loop

    def run(self, rollout: Rollout) -> Rollout:
        """Drive the rollout until it is final or waits for an operator (halted, paused...);
        raises LeaseHeld when another CLI is driving it."""
        driver = lease.driver_name(self.operator)
        lease.take(self.store.engine, rollout.id, driver)
        try:
            return self._run(rollout, driver)
        finally:
            lease.release(self.store.engine, rollout.id, driver)

    def _run(self, rollout: Rollout, driver: str) -> Rollout:
        renewed = time.monotonic()
        while True:
            if time.monotonic() - renewed > lease.LEASE_S / 3:
                lease.take(self.store.engine, rollout.id, driver)
                renewed = time.monotonic()
            rollout = self._take_command(rollout)
            actions = engine.next_actions(rollout, self.clock())
            if not actions:
                return rollout
            reverts = [a for a in actions if isinstance(a, Revert)]
            requests = [a for a in actions if isinstance(a, Request)]
            if reverts:
                rollout = self._revert(rollout, reverts)
            if requests:
                rollout = self._request(rollout, requests)
            if reverts or requests:
                continue
            checks = [a for a in actions if isinstance(a, Check)]
            looked_at = time.monotonic()
            progressed = False
            for check in checks:
                rollout, moved = self._check(rollout, check.gateways)
                progressed = progressed or moved
            if not progressed:
                waits = [a.until for a in actions if isinstance(a, Wait)]
                pause = min([self.poll_s, *(w - self.clock() for w in waits)])
                self.feed.wait_for_news(looked_at, max(pause, 0.01))

    def _take_command(self, rollout: Rollout) -> Rollout:
        command = self.store.take_command(rollout.id)
        if command is None:
            return rollout
        name, who = command
        try:
            return self._apply(rollout, [Operator(name, self.clock())])
        except engine.EngineError as exc:
            self._notes.append((who, f"rollout {name}", rollout.id, "refused", str(exc)))
            self.emit(
                {"event": "refused", "rollout": rollout.id, "command": name, "detail": str(exc)}
            )
            return rollout

    # ------------------------------------------------------------ I/O, each after its intent

    def _send(self, rollout: Rollout, wanted: list[tuple[str, str, bool]]) -> dict[str, str]:
        """Ask each (gateway, value, revert) through the backends; gateway -> error or ''."""
        asks, errors = [], {}
        for gw, value, revert in wanted:
            try:
                target = self._target(rollout, value, gw)
            except TargetError as exc:
                errors[gw] = str(exc)
                continue
            if revert:
                target = replace(target, downgrade=True)  # going back is a deliberate downgrade
            entry = self.inventory.gateways.get(gw)
            if entry is None:  # removed from the inventory while the rollout held it
                errors[gw] = f"{gw} is no longer in the inventory: `fleet devices add` it again"
                continue
            asks.append(Ask(entry, target, request_id(rollout, gw, revert)))
        workers = self.inventory.config.backends.ssh.max_parallel
        many = getattr(self.backend, "request_many", None)
        errors.update(many(asks, workers) if many else send_parallel(self.backend, asks, workers))
        return errors

    def _target(self, rollout: Rollout, value: str, gateway: str) -> Target:
        target = self.targets(rollout.kind, value, gateway)
        return replace(target, health_timeout_s=rollout.policy.gate_timeout_s)

    def _request(self, rollout: Rollout, requests: list[Request]) -> Rollout:
        gws = [r.gateway for r in requests]
        rollout = self._apply(
            rollout, [Asking(g) for g in gws if rollout.steps[g].phase is not Phase.REQUESTING]
        )
        heard = self.feed.snapshot()
        baselines = {g: heard[g].stored_seq if g in heard else 0 for g in gws}
        errors = self._send(rollout, [(g, rollout.target, False) for g in gws])
        now = self.clock()
        events: list[Event] = [
            AskFailed(g, errors[g]) if errors[g] else Asked(g, now, time.time_ns(), baselines[g])
            for g in gws
        ]
        return self._apply(rollout, events)

    def _back_on_its_own(self, rollout: Rollout, gateway: str, previous: str) -> bool:
        """The agent already returned from this very request: asking again would be noise."""
        heard = self.feed.snapshot().get(gateway)
        update = heard.update if heard else None
        if update is None or update.request != request_id(rollout, gateway):
            return False
        if update.phase.value != "rolled_back":
            return False
        status = heard.status if heard else None
        return rollout.kind == "config" or (status is not None and status.version == previous)

    def _revert(self, rollout: Rollout, reverts: list[Revert]) -> Rollout:
        alone = [r for r in reverts if self._back_on_its_own(rollout, r.gateway, r.previous)]
        if alone:
            rollout = self._apply(
                rollout, [Returned(r.gateway, True, "back on its own") for r in alone]
            )
            reverts = [r for r in reverts if r not in alone]
            if not reverts:
                return rollout
        rollout = self._apply(
            rollout,
            [
                Returning(r.gateway)
                for r in reverts
                if rollout.steps[r.gateway].phase is not Phase.REVERTING
            ],
        )
        errors = self._send(rollout, [(r.gateway, r.previous, True) for r in reverts])
        return self._apply(
            rollout,
            [Returned(r.gateway, not errors[r.gateway], errors[r.gateway]) for r in reverts],
        )

    def _check(self, rollout: Rollout, gateways: tuple[str, ...]) -> tuple[Rollout, bool]:
        heard = self.feed.snapshot()
        known = [self.inventory.gateways[g] for g in gateways if g in self.inventory.gateways]
        problems = self.backend.problems(known)
        problems.update(
            {g: "no longer in the inventory" for g in gateways if g not in self.inventory.gateways}
        )
        now = self.clock()
        policy = rollout.policy
        events: list[Event] = []
        for gw in gateways:
            step = rollout.steps[gw]
            spec = GateSpec(
                rollout.kind,
                rollout.target,
                step.requested_at_ns,
                step.baseline_seq,
                step.deadline,
                policy.drained_depth,
                policy.require_receipts,
            )
            seen = observation(heard.get(gw), request_id(rollout, gw), problems.get(gw, ""))
            verdict = evaluate(spec, seen, now)
            if verdict.done:
                events.append(Gated(gw, verdict.ok, verdict.reason))
        if not events:
            return rollout, False
        return self._apply(rollout, events), True


def is_final(rollout: Rollout) -> bool:
    return rollout.state in FINAL

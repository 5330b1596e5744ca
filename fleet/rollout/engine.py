"""The rollout engine: a pure state machine from (rollout, event) to rollout, and to next actions.

No clock, no I/O: the shell passes `now` in, performs the actions, and feeds back what
happened. Every event the shell applies is persisted before the matching I/O, so a rollout
rebuilt from the store after a crash asks for exactly what is still missing.
"""

from __future__ import annotations

from dataclasses import replace

from factory_common.errors import FleetError
from fleet.rollout.model import (
    FINAL,
    IN_FLIGHT,
    Action,
    Asked,
    AskFailed,
    Asking,
    Check,
    Event,
    Gated,
    Operator,
    Phase,
    Policy,
    Request,
    Returned,
    Returning,
    Revert,
    Rollout,
    State,
    Step,
    Wait,
)
from fleet.rollout.policy import in_window, next_window_open, plan_waves

# Rolling back returns every gateway the rollout asked, whatever its gate said.
_TOUCHED = frozenset({Phase.REQUESTING, Phase.GATING, Phase.HEALTHY, Phase.FAILED})


class EngineError(FleetError, ValueError):
    """An operator command or event that does not fit the rollout's state."""


def plan(
    rollout_id: str, kind: str, target: str, previous: dict[str, str], policy: Policy
) -> Rollout:
    """A new rollout over `previous` (gateway -> what it runs now), in canary-first waves."""
    waves = plan_waves(sorted(previous), policy.canary, policy.wave_size)
    steps = {
        gw: Step(gateway=gw, wave=index, previous=previous[gw])
        for index, wave in enumerate(waves)
        for gw in wave
    }
    return Rollout(rollout_id, kind, target, policy, len(waves), steps)


def wave_steps(rollout: Rollout, wave: int) -> list[Step]:
    return [s for s in rollout.steps.values() if s.wave == wave]


def _set(rollout: Rollout, gateway: str, **changes: object) -> Rollout:
    steps = dict(rollout.steps)
    steps[gateway] = replace(steps[gateway], **changes)  # type: ignore[arg-type]
    return replace(rollout, steps=steps)


def _step_event(rollout: Rollout, event: Event) -> Rollout:
    if isinstance(event, Asking):
        return _set(rollout, event.gateway, phase=Phase.REQUESTING)
    if isinstance(event, Asked):
        deadline = event.now + rollout.policy.gate_timeout_s
        return _set(
            rollout,
            event.gateway,
            phase=Phase.GATING,
            requested_at_ns=event.now_ns,
            baseline_seq=event.baseline_seq,
            deadline=deadline,
            detail="asked",
        )
    if isinstance(event, AskFailed):
        return _set(rollout, event.gateway, phase=Phase.FAILED, failed=True, detail=event.reason)
    if isinstance(event, Gated):
        if rollout.steps[event.gateway].phase is not Phase.GATING:
            return rollout  # a late verdict for a gateway already reverted
        if event.ok:
            return _set(rollout, event.gateway, phase=Phase.HEALTHY, detail=event.reason)
        return _set(rollout, event.gateway, phase=Phase.FAILED, failed=True, detail=event.reason)
    if isinstance(event, Returning):
        return _set(rollout, event.gateway, phase=Phase.REVERTING)
    if isinstance(event, Returned):
        step = rollout.steps[event.gateway]
        phase = Phase.REVERTED if event.ok else Phase.REVERT_FAILED
        note = f"revert failed: {event.reason}" if not event.ok else event.reason
        detail = f"{step.detail}; {note}" if note else step.detail
        return _set(rollout, event.gateway, phase=phase, reverted=True, detail=detail)
    raise EngineError(f"unknown event {event!r}")


def _skip_pending(rollout: Rollout) -> Rollout:
    steps = {
        gw: replace(s, phase=Phase.SKIPPED) if s.phase is Phase.PENDING else s
        for gw, s in rollout.steps.items()
    }
    return replace(rollout, steps=steps)


def _operator(rollout: Rollout, event: Operator) -> Rollout:
    command, state = event.command, rollout.state
    if state in FINAL and command != "rollback":
        raise EngineError(f"rollout {rollout.id} is {state}: nothing to {command}")
    if command == "pause" and state is State.RUNNING:
        return replace(rollout, state=State.PAUSED)
    if command == "resume" and state is State.PAUSED:
        return replace(rollout, state=State.RUNNING)
    if command == "resume" and state is State.HALTED:
        # The operator accepts the failed wave: the next wave starts now.
        return replace(rollout, state=State.RUNNING, wave=rollout.wave + 1, wave_done_at=event.now)
    if command == "abort" and state not in (State.ROLLING_BACK, State.ROLLED_BACK):
        return replace(_skip_pending(rollout), state=State.ABORTED)
    if command == "rollback" and state is not State.ROLLED_BACK:
        return replace(_skip_pending(rollout), state=State.ROLLING_BACK)
    raise EngineError(f"cannot {command} rollout {rollout.id} while it is {state}")


def _unfinished_work(rollout: Rollout) -> bool:
    return any(_needs_revert(rollout, s) or s.phase in IN_FLIGHT for s in rollout.steps.values())


def _advance(rollout: Rollout, now: float) -> Rollout:
    """Close the current wave when its gates are all decided; finish when nothing is left."""
    if rollout.state is State.RUNNING and rollout.wave < rollout.waves:
        steps = wave_steps(rollout, rollout.wave)
        if all(s.phase not in (Phase.PENDING, *IN_FLIGHT) for s in steps):
            failures = sum(s.failed for s in steps)
            if failures > rollout.policy.error_threshold.of(len(steps)):
                if rollout.policy.rollback_all_on_halt:
                    return _skip_pending(replace(rollout, state=State.ROLLING_BACK))
                # Halted, not ended: the operator may resume (accepting the failures) or roll back.
                return replace(rollout, state=State.HALTED)
            rollout = replace(rollout, wave=rollout.wave + 1, wave_done_at=now)
    if _unfinished_work(rollout):
        return rollout
    if rollout.state is State.RUNNING and rollout.wave >= rollout.waves:
        return replace(rollout, state=State.DONE)
    if rollout.state is State.ROLLING_BACK:
        return replace(rollout, state=State.ROLLED_BACK)
    return rollout


def apply(rollout: Rollout, event: Event, now: float = 0.0) -> Rollout:
    """The rollout after `event`; `now` (epoch seconds) dates a wave that closes because of it."""
    if isinstance(event, Operator):
        return _advance(_operator(rollout, event), event.now or now)
    if event.gateway not in rollout.steps:
        raise EngineError(f"gateway {event.gateway!r} is not part of rollout {rollout.id}")
    return _advance(_step_event(rollout, event), now)


def _needs_revert(rollout: Rollout, step: Step) -> bool:
    if step.reverted:
        return False
    if step.phase is Phase.REVERTING or (step.phase is Phase.FAILED and step.failed):
        return True
    return rollout.state is State.ROLLING_BACK and step.phase in _TOUCHED


def _new_requests(rollout: Rollout, now: float) -> list[Action]:
    if rollout.state is not State.RUNNING or rollout.wave >= rollout.waves:
        return []
    policy = rollout.policy
    if rollout.wave > 0 and now < rollout.wave_done_at + policy.pause_s:
        return [Wait(rollout.wave_done_at + policy.pause_s, "pause between waves")]
    in_flight = sum(s.phase in IN_FLIGHT for s in rollout.steps.values())
    room = policy.max_parallel - in_flight
    pending = [s for s in wave_steps(rollout, rollout.wave) if s.phase is Phase.PENDING]
    if not pending or room <= 0:
        return []
    if not in_window(policy.windows, now):
        return [Wait(next_window_open(policy.windows, now), "outside the maintenance windows")]
    return [Request(s.gateway) for s in pending[:room]]


def next_actions(rollout: Rollout, now: float) -> list[Action]:
    """What the shell should do now: reverts first, then (re-)requests, then gate checks."""
    steps = rollout.steps.values()
    actions: list[Action] = [
        Revert(s.gateway, s.previous) for s in steps if _needs_revert(rollout, s)
    ]
    if rollout.state is not State.ROLLING_BACK:
        # A step persisted as REQUESTING may or may not have been asked: asking is idempotent.
        actions += [Request(s.gateway) for s in steps if s.phase is Phase.REQUESTING]
        actions += _new_requests(rollout, now)
    gating = tuple(s.gateway for s in steps if s.phase is Phase.GATING)
    if gating and rollout.state is not State.ROLLING_BACK:
        actions.append(Check(gating))
    return actions


def summary(rollout: Rollout) -> dict[str, int]:
    """How many gateways are in each phase."""
    counts: dict[str, int] = {}
    for step in rollout.steps.values():
        counts[step.phase.value] = counts.get(step.phase.value, 0) + 1
    return counts

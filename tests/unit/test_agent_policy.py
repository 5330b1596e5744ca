"""The update agent's state machine and health judgement, without a process or a broker."""

from __future__ import annotations

import pytest

from factory_common import wire
from factory_common.wire import ConnectorHealth, GatewayStatus, UpdateAction, UpdatePhase
from gateway_image.agent import policy
from gateway_image.agent.health import assess
from gateway_image.agent.policy import AgentState, Installed, Recovery, Verdict

A = Installed("a", "1.0.0", "a", "sha-a")


def ask(action: UpdateAction, ident: str = "r1", **fields: object) -> wire.UpdateRequest:
    defaults = {
        UpdateAction.INSTALL: {"artifact": "/x", "release": "1.1.0"},
        UpdateAction.CONFIG: {"config": "gateway: {id: gw1}"},
    }.get(action, {})
    return wire.UpdateRequest(
        v=1,
        id=ident,
        gateway="gw1",
        action=action,
        **{**defaults, **fields},  # type: ignore[arg-type]
    )


def run_install(state: AgentState, request: wire.UpdateRequest) -> AgentState:
    state = policy.installing(policy.begin(state, request))
    trial = policy.trial_for(state, request)
    return policy.on_trial(policy.switching(state, trial, now=100.0, timeout=60))


def test_install_puts_the_other_slot_on_trial_and_commit_keeps_the_old_one() -> None:
    state = run_install(AgentState(committed=A), ask(UpdateAction.INSTALL))
    assert state.phase is UpdatePhase.TRIAL and state.running == Installed(
        "b", "1.1.0", "a", "sha-a"
    )
    assert policy.judge(state, True, "", now=101) == (Verdict.COMMIT, "")
    done = policy.commit(state)
    assert done.committed.slot == "b" and done.previous == A and done.trial is None


@pytest.mark.parametrize(
    ("crashes", "healthy", "now", "verdict"),
    [
        (0, False, 159.9, Verdict.WAIT),
        (0, False, 160.0, Verdict.ROLLBACK),  # deadline: 100 + 60
        (policy.CRASH_LOOP, True, 101, Verdict.ROLLBACK),  # crash loop beats a lucky report
        (policy.CRASH_LOOP - 1, True, 101, Verdict.COMMIT),
    ],
)
def test_judge(crashes: int, healthy: bool, now: float, verdict: Verdict) -> None:
    state = run_install(AgentState(committed=A), ask(UpdateAction.INSTALL))
    state = AgentState(**{**state.__dict__, "crashes": crashes})
    assert policy.judge(state, healthy, "why", now)[0] is verdict


@pytest.mark.parametrize(
    ("phase", "recovery"),
    [
        (UpdatePhase.IDLE, Recovery.NONE),
        (UpdatePhase.COMMITTED, Recovery.NONE),
        (UpdatePhase.VERIFYING, Recovery.ABANDON),
        (UpdatePhase.INSTALLING, Recovery.ABANDON),
        (UpdatePhase.SWITCHING, Recovery.ROLLBACK),
        (UpdatePhase.TRIAL, Recovery.ROLLBACK),  # a power cut mid-trial never commits
        (UpdatePhase.ROLLING_BACK, Recovery.ROLLBACK),
    ],
)
def test_recovery_at_start(phase: UpdatePhase, recovery: Recovery) -> None:
    assert policy.recover(AgentState(committed=A, phase=phase)) is recovery


def test_busy_duplicate_and_pointless_requests_are_refused() -> None:
    trial = run_install(AgentState(committed=A), ask(UpdateAction.INSTALL))
    assert "busy" in (policy.check_request(trial, ask(UpdateAction.CONFIG, "r2")) or "")
    idle = AgentState(committed=A)
    assert "already" in (
        policy.check_request(idle, ask(UpdateAction.INSTALL, release="1.0.0")) or ""
    )
    assert "nothing to return" in (policy.check_request(idle, ask(UpdateAction.ROLLBACK)) or "")
    assert "r1" in policy.begin(idle, ask(UpdateAction.CONFIG)).seen


def test_config_trial_keeps_the_release_and_rollback_returns_to_the_previous() -> None:
    committed = policy.commit(run_install(AgentState(committed=A), ask(UpdateAction.INSTALL)))
    request = ask(UpdateAction.CONFIG, "c1")
    state = policy.installing(policy.begin(committed, request))
    assert policy.trial_for(state, request, "sha-b") == Installed("b", "1.1.0", "b", "sha-b")
    back = policy.trial_for(committed, ask(UpdateAction.ROLLBACK, "r9"))
    assert back == A


def test_installing_over_the_previous_slot_forgets_it() -> None:
    committed = policy.commit(run_install(AgentState(committed=A), ask(UpdateAction.INSTALL)))
    again = policy.installing(
        policy.begin(committed, ask(UpdateAction.INSTALL, "r3", release="1.2.0"))
    )
    assert again.previous is None  # slot a is being overwritten: no way back to 1.0.0
    config = policy.installing(policy.begin(committed, ask(UpdateAction.CONFIG, "r4")))
    assert config.previous == A  # a config lands in config slot b; slot a still holds 1.0.0


def status(ts: int, version: str = "1.1.0", depth: int = 0, readings: int = 5) -> GatewayStatus:
    return GatewayStatus(
        v=1,
        gateway="gw1",
        online=True,
        ts=ts,
        started_at=ts,
        version=version,
        buffer_depth=depth,
        connectors=[ConnectorHealth(name="plc", type="modbus_tcp", state="up", readings=readings)],
    )


@pytest.mark.parametrize(
    ("statuses", "healthy", "reason"),
    [
        ([], False, "no status"),
        ([status(5)], False, "no status"),  # from the process before the switch
        ([status(20)], False, "1 healthy status report"),
        ([status(20), status(21)], True, "healthy"),
        ([status(20), status(21, version="1.0.0")], False, "reports version '1.0.0'"),
        ([status(20), status(21, readings=0)], False, "not reading: plc"),
        ([status(20, depth=5000), status(21, depth=9000)], False, "buffer growing"),
        ([status(20, depth=9000), status(21, depth=5000)], True, "healthy"),  # draining
    ],
)
def test_health(statuses: list[GatewayStatus], healthy: bool, reason: str) -> None:
    got = assess(statuses, "1.1.0", since_ns=10)
    assert got.healthy is healthy and reason in got.reason

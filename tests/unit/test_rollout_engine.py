"""The rollout engine as a pure state machine: waves, gates, thresholds, operator commands."""

from __future__ import annotations

import datetime as dt

import pytest

from fleet.rollout.engine import EngineError, apply, next_actions, plan, wave_steps
from fleet.rollout.model import (
    Asked,
    AskFailed,
    Asking,
    Check,
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
    Wait,
)
from fleet.rollout.policy import Amount, WindowSpec, plan_waves

GWS = [f"gw-{i:02d}" for i in range(1, 11)]


def new(policy: Policy | None = None, gws: list[str] = GWS) -> Rollout:
    return plan("r1", "release", "2.0", {g: "1.0" for g in gws}, policy or Policy())


def drive(rollout: Rollout, bad: set[str] = frozenset(), now: float = 1000.0) -> Rollout:
    """Run the engine to rest: every asked gateway passes its gate unless it is in `bad`."""
    for _ in range(1000):
        actions = next_actions(rollout, now)
        if not actions or all(isinstance(a, Wait) for a in actions):
            return rollout
        for action in actions:
            if isinstance(action, Request):
                rollout = apply(rollout, Asking(action.gateway), now)
                rollout = apply(rollout, Asked(action.gateway, now, int(now * 1e9), 0), now)
            elif isinstance(action, Revert):
                rollout = apply(rollout, Returning(action.gateway), now)
                rollout = apply(rollout, Returned(action.gateway, True), now)
            elif isinstance(action, Check):
                for gw in action.gateways:
                    ok = gw not in bad
                    rollout = apply(rollout, Gated(gw, ok, "healthy" if ok else "crash"), now)
        now += 1
    raise AssertionError("the engine did not come to rest")


def test_waves_canary_first_then_wave_size() -> None:
    assert plan_waves(GWS, Amount(1, False), Amount(30, True)) == [
        GWS[:1],
        GWS[1:4],
        GWS[4:7],
        GWS[7:10],
    ]
    assert plan_waves(GWS, Amount(10, True), Amount(5, False)) == [GWS[:1], GWS[1:6], GWS[6:]]
    assert plan_waves([], Amount(1, False), Amount(1, False)) == []


def test_amount_parse_errors_name_the_option() -> None:
    with pytest.raises(ValueError, match="canary: 'x' is neither"):
        Amount.parse("x", "canary")
    assert Amount.parse("5%", "t").of(40) == 2
    assert Amount.parse("0%", "t").of(3, at_least_one=True) == 1


def test_good_release_reaches_everyone_and_is_done() -> None:
    done = drive(new())
    assert done.state is State.DONE
    assert all(s.phase is Phase.HEALTHY for s in done.steps.values())


def test_only_the_canary_is_asked_first() -> None:
    rollout = new()
    assert next_actions(rollout, 0) == [Request("gw-01")]


def test_max_parallel_caps_in_flight_requests() -> None:
    rollout = new(Policy(canary=Amount(100, True), max_parallel=3))
    rollout = apply(rollout, Asking("gw-01"))
    requests = [a for a in next_actions(rollout, 0) if isinstance(a, Request)]
    # gw-01 is re-asked (persisted as requesting) and only two more fit.
    assert [r.gateway for r in requests] == ["gw-01", "gw-02", "gw-03"]


def test_failing_canary_halts_and_reverts_only_the_canary() -> None:
    halted = drive(new(), bad={"gw-01"})
    assert halted.state is State.HALTED
    assert halted.steps["gw-01"].phase is Phase.REVERTED
    assert {s.phase for g, s in halted.steps.items() if g != "gw-01"} == {Phase.PENDING}
    assert next_actions(halted, 0) == []


def test_threshold_tolerates_failures_up_to_the_limit() -> None:
    policy = Policy(wave_size=Amount(50, True), error_threshold=Amount(20, True))
    # wave 1 holds gw-02..gw-06: 20 % of 5 = 1 failure tolerated.
    done = drive(new(policy), bad={"gw-03"})
    assert done.state is State.DONE
    assert done.steps["gw-03"].phase is Phase.REVERTED
    halted = drive(new(policy), bad={"gw-03", "gw-04"})
    assert halted.state is State.HALTED
    assert [s.phase for s in wave_steps(halted, 2)] == [Phase.PENDING] * 4


def test_halt_with_rollback_all_returns_every_touched_gateway() -> None:
    policy = Policy(wave_size=Amount(50, True), rollback_all_on_halt=True)
    rolled = drive(new(policy), bad={"gw-05"})
    assert rolled.state is State.ROLLED_BACK
    touched = [s for s in rolled.steps.values() if s.wave <= 1]
    assert {s.phase for s in touched} == {Phase.REVERTED}
    assert {s.phase for s in wave_steps(rolled, 2)} == {Phase.SKIPPED}


def test_unreachable_gateway_counts_as_failed() -> None:
    rollout = apply(new(), Asking("gw-01"))
    rollout = apply(rollout, AskFailed("gw-01", "unreachable over SSH"))
    assert rollout.state is State.HALTED
    assert next_actions(rollout, 0) == [Revert("gw-01", "1.0")]
    rollout = apply(apply(rollout, Returning("gw-01")), Returned("gw-01", False, "timeout"))
    assert rollout.steps["gw-01"].phase is Phase.REVERT_FAILED
    assert next_actions(rollout, 0) == []


def test_pause_between_waves_waits_then_continues() -> None:
    rollout = new(Policy(pause_s=60))
    rollout = apply(rollout, Asking("gw-01"), 100)
    rollout = apply(rollout, Asked("gw-01", 100, 0, 0), 100)
    rollout = apply(rollout, Gated("gw-01", True, "healthy"), 110)
    assert next_actions(rollout, 120) == [Wait(170, "pause between waves")]
    assert isinstance(next_actions(rollout, 170)[0], Request)


def test_operator_pause_resume_abort() -> None:
    rollout = apply(new(), Operator("pause"))
    assert next_actions(rollout, 0) == []
    rollout = apply(rollout, Operator("resume"))
    assert next_actions(rollout, 0) == [Request("gw-01")]
    rollout = apply(rollout, Asking("gw-01"))
    rollout = apply(rollout, Asked("gw-01", 0, 0, 0))
    aborted = apply(rollout, Operator("abort"))
    assert aborted.state is State.ABORTED
    # The canary already asked still has its gate decided; nobody else is asked.
    assert next_actions(aborted, 0) == [Check(("gw-01",))]
    assert sum(s.phase is Phase.SKIPPED for s in aborted.steps.values()) == 9
    with pytest.raises(EngineError, match="cannot pause rollout r1 while it is aborted"):
        apply(aborted, Operator("pause"))


def test_resume_after_halt_goes_on_with_the_next_wave() -> None:
    policy = Policy(wave_size=Amount(50, True))
    halted = drive(new(policy), bad={"gw-01"})
    assert halted.state is State.HALTED
    resumed = apply(halted, Operator("resume", now=5))
    assert resumed.state is State.RUNNING and resumed.wave == 1
    finished = drive(resumed)
    assert finished.state is State.DONE
    assert [s.phase for s in finished.steps.values()].count(Phase.HEALTHY) == 9


def test_rollback_after_done_returns_everyone() -> None:
    done = drive(new())
    rolled = drive(apply(done, Operator("rollback")))
    assert rolled.state is State.ROLLED_BACK
    assert {s.phase for s in rolled.steps.values()} == {Phase.REVERTED}


def test_a_late_gate_verdict_after_rollback_changes_nothing() -> None:
    rollout = apply(apply(new(), Asking("gw-01")), Asked("gw-01", 0, 0, 0))
    rolled = apply(rollout, Operator("rollback"))
    assert next_actions(rolled, 0) == [Revert("gw-01", "1.0")]
    rolled = apply(rolled, Returning("gw-01"))
    assert apply(rolled, Gated("gw-01", True, "healthy")) == rolled


def test_maintenance_window_blocks_new_requests_until_it_opens() -> None:
    monday_night = dt.datetime(2026, 12, 7, 22, 0, tzinfo=dt.UTC).timestamp()
    window = WindowSpec.parse(["mon"], "23:00", "02:00")
    rollout = new(Policy(windows=(window,)))
    assert next_actions(rollout, monday_night) == [
        Wait(monday_night + 3600, "outside the maintenance windows")
    ]
    assert next_actions(rollout, monday_night + 3600 + 2 * 3600 - 60) == [Request("gw-01")]
    # Tuesday 02:00 is past the window that opened on Monday.
    assert isinstance(next_actions(rollout, monday_night + 4 * 3600)[0], Wait)


def test_unknown_gateway_event_is_refused() -> None:
    with pytest.raises(EngineError, match="not part of rollout r1"):
        apply(new(), Asking("gw-99"))

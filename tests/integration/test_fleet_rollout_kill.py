"""The rollout CLI killed with SIGKILL at three moments and started again: it resumes exactly."""

from __future__ import annotations

import json
from pathlib import Path

from fleet.rollout.model import Phase, Rollout
from fleet.store.rollouts import StateStore
from fleet.store.schema import normalise_url
from line_sim.fleet_sim import SimFleet
from tests.support.broker import Mosquitto
from tests.support.fleet import make_fleet_dir
from tests.support.processes import Child, console_script, wait_until

IDS = [f"gw-{i:02d}" for i in range(1, 7)]  # waves: canary gw-01, then gw-02..04, gw-05..06


def only_rollout(store: StateStore) -> Rollout | None:
    rows = store.rollouts()
    return store.load(rows[0].id) if rows else None


def phase_of(store: StateStore, gateway: str) -> Phase | None:
    rollout = only_rollout(store)
    return rollout.steps[gateway].phase if rollout else None


def test_sigkill_at_three_moments_then_resume_ends_right(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    layout = make_fleet_dir(tmp_path / "fleet", mosquitto.port, IDS)
    # A second per switch: long enough to catch the CLI mid-gate, short enough for a test.
    sim = SimFleet("127.0.0.1", mosquitto.port, IDS, delay_s=1.0).start()
    store = StateStore(normalise_url(None, layout.state_db))
    fleet_dir = ["--fleet-dir", str(layout.root), "--operator", "ops"]
    children: list[Child] = []

    def run(name: str, *args: str) -> Child:
        child = Child(name, console_script("fleet", *args, *fleet_dir, "--json"), tmp_path)
        children.append(child.start())
        return child

    try:
        # 1. Killed as soon as the rollout exists: claimed, the canary not yet through its gate.
        cli = run("start", "rollout", "start", "2.0", "--to", "line=anodizing")
        wait_until(lambda: only_rollout(store), 60, "the rollout row", (cli,))
        cli.kill9()
        rollout_id = store.rollouts()[0].id
        # 2. Killed mid-wave: wave 1's gateways asked and on their gate.
        cli = run("resume-1", "rollout", "resume", rollout_id)
        wait_until(lambda: phase_of(store, "gw-03") is Phase.GATING, 60, "wave 1 gating", (cli,))
        cli.kill9()
        # 3. Killed in the last wave, one gateway healthy and the other not yet.
        cli = run("resume-2", "rollout", "resume", rollout_id)
        wait_until(
            lambda: {phase_of(store, "gw-05"), phase_of(store, "gw-06")} & {Phase.GATING},
            60,
            "the last wave under way",
            (cli,),
        )
        cli.kill9()
        cli = run("resume-3", "rollout", "resume", rollout_id)
        assert cli.process is not None and cli.process.wait(120) == 0, cli.log()
    finally:
        for child in children:
            child.kill9()
        sim.stop()

    final = store.load(rollout_id)
    assert final.state.value == "done"
    assert {s.phase for s in final.steps.values()} == {Phase.HEALTHY}
    assert sim.versions() == dict.fromkeys(IDS, "2.0")
    # Each gateway carried the update out once: a repeated request id was only answered.
    assert {g: len(sim.gateways[g].requests) for g in IDS} == dict.fromkeys(IDS, 1)
    log = store.audit_log(None)
    healthy = sorted(e["subject"] for e in log if e["action"] == "release healthy")
    assert healthy == IDS
    assert [e["result"] for e in log if e["action"] == "rollout state"] == ["done"]
    assert json.loads(cli.log().splitlines()[-1])["state"] == "done"
    store.close()


def test_pause_and_rollback_from_other_clis(tmp_path: Path, mosquitto: Mosquitto) -> None:
    layout = make_fleet_dir(tmp_path / "fleet", mosquitto.port, IDS)
    sim = SimFleet("127.0.0.1", mosquitto.port, IDS).start()
    store = StateStore(normalise_url(None, layout.state_db))
    args = ["--fleet-dir", str(layout.root), "--operator", "ops", "--json"]

    def fleet(name: str, *command: str) -> Child:
        return Child(name, console_script("fleet", *command, *args), tmp_path).start()

    # A minute between waves: the operators act while the canary is done and wave 1 waits.
    cli = fleet("start", "rollout", "start", "2.0", "--to", "", "--pause", "60")
    try:
        wait_until(lambda: phase_of(store, "gw-01") is Phase.HEALTHY, 60, "the canary", (cli,))
        rollout_id = store.rollouts()[0].id
        second = fleet("resume", "rollout", "resume", rollout_id)
        assert second.process is not None and second.process.wait(60) == 3  # driven elsewhere
        assert "is being driven by ops@" in second.log()
        pause = fleet("pause", "rollout", "pause", rollout_id)
        assert pause.process is not None and pause.process.wait(60) == 0
        assert cli.process is not None and cli.process.wait(60) == 0, cli.log()  # paused
        assert store.load(rollout_id).state.value == "paused"
        back = fleet("rollback", "rollout", "rollback", rollout_id)
        assert back.process is not None and back.process.wait(120) == 1, back.log()
        wait_until(lambda: len(sim.gateways["gw-01"].requests) == 2, 30, "the canary's return")
    finally:
        cli.kill9()
        sim.stop()
    final = store.load(rollout_id)
    assert final.state.value == "rolled_back"
    assert final.steps["gw-01"].phase is Phase.REVERTED
    assert {s.phase for g, s in final.steps.items() if g != "gw-01"} == {Phase.SKIPPED}
    assert sim.gateways["gw-01"].requests == [("install", "2.0"), ("install", "1.0")]
    assert all(not sim.gateways[g].requests for g in IDS[1:])
    actions = [(e["operator"], e["action"]) for e in store.audit_log(rollout_id)]
    assert ("ops", "rollout pause") in actions and ("ops", "rollout rollback") in actions
    store.close()

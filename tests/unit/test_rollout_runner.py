"""The rollout shell with a pure in-process backend and status feed, on a real SQLite store."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from factory_common import wire
from fleet.backends.base import BackendError, Target
from fleet.inventory import FleetConfig, GatewayEntry, Inventory
from fleet.layout import FleetLayout
from fleet.rollout.engine import plan
from fleet.rollout.model import Phase, Policy, Rollout, State
from fleet.rollout.runner import Runner
from fleet.status_feed import Heard
from fleet.store.rollouts import StateStore
from fleet.store.schema import normalise_url


class MemoryFleet:
    """Backend and status feed at once: an asked gateway reports the target at once."""

    name = "memory"

    def __init__(self, ids: list[str], unreachable: frozenset[str] = frozenset()) -> None:
        self.heard = {g: self._heard(g, "1.0", 0) for g in ids}
        self.unreachable = unreachable
        self.asked: list[tuple[str, str]] = []

    @staticmethod
    def _heard(gateway: str, version: str, seq: int) -> Heard:
        status = wire.GatewayStatus(v=1, gateway=gateway, online=True, version=version)
        return Heard(status=status, stored_seq=seq)

    def request(self, gateway: GatewayEntry, target: Target, request_id: str) -> None:
        if gateway.id in self.unreachable:
            raise BackendError(f"gateway {gateway.id} unreachable")
        self.asked.append((gateway.id, target.value))
        seq = self.heard[gateway.id].stored_seq + 10
        self.heard[gateway.id] = self._heard(gateway.id, target.value, seq)

    def problems(self, gateways: list[GatewayEntry]) -> dict[str, str]:
        return {}

    def snapshot(self) -> dict[str, Heard]:
        return dict(self.heard)

    def wait_for_news(self, since: float, timeout: float) -> None:
        return None


def prepared(
    tmp_path: Path, ids: list[str], fleet: MemoryFleet, inventory_ids: list[str]
) -> tuple[Runner, StateStore, Rollout]:
    """A stored rollout of 2.0 to `ids` and a runner over the in-process fleet."""
    tmp_path.mkdir(exist_ok=True)
    layout = FleetLayout(tmp_path)
    inventory = Inventory(layout, FleetConfig(), {g: GatewayEntry(id=g) for g in inventory_ids})
    store = StateStore(normalise_url(None, tmp_path / "state.db"))
    rollout = plan("r1", "release", "2.0", dict.fromkeys(ids, "1.0"), Policy())
    store.create(rollout, "", "test")
    target = lambda kind, value, gw: Target(kind, value)  # noqa: E731
    return Runner(store, inventory, fleet, fleet, target, "test"), store, rollout  # type: ignore[arg-type]


def run(
    tmp_path: Path, ids: list[str], fleet: MemoryFleet, inventory_ids: list[str]
) -> tuple[Rollout, StateStore]:
    runner, store, rollout = prepared(tmp_path, ids, fleet, inventory_ids)
    return runner.run(rollout), store


def test_every_gateway_asked_once_and_the_store_agrees(tmp_path: Path) -> None:
    ids = [f"gw-{i}" for i in range(8)]
    fleet = MemoryFleet(ids)
    done, store = run(tmp_path, ids, fleet, ids)
    assert done.state is State.DONE
    assert sorted(fleet.asked) == [(g, "2.0") for g in ids]
    assert store.load("r1") == done


def test_unreachable_or_removed_gateways_fail_their_step_not_the_run(tmp_path: Path) -> None:
    ids = ["gw-0", "gw-1"]
    fleet = MemoryFleet(ids, unreachable=frozenset({"gw-0"}))
    halted, _ = run(tmp_path, ids, fleet, ids)
    assert halted.state is State.HALTED
    step = halted.steps["gw-0"]
    assert step.phase is Phase.REVERT_FAILED and "unreachable" in step.detail
    fleet = MemoryFleet(ids)
    halted, _ = run(tmp_path / "second", ids, fleet, ["gw-1"])  # gw-0 left the inventory
    assert "no longer in the inventory" in halted.steps["gw-0"].detail
    assert fleet.asked == []


def test_a_crash_between_intent_and_outcome_asks_again_on_resume(tmp_path: Path) -> None:
    ids = ["gw-0", "gw-1", "gw-2"]
    fleet = MemoryFleet(ids)
    runner, store, rollout = prepared(tmp_path, ids, fleet, ids)
    # The intent for the canary was saved, then the process died before asking.
    steps = dict(rollout.steps)
    steps["gw-0"] = dataclasses.replace(steps["gw-0"], phase=Phase.REQUESTING)
    store.save(dataclasses.replace(rollout, steps=steps), ["gw-0"])
    done = runner.run(store.load("r1"))
    assert done.state is State.DONE
    assert fleet.asked[0] == ("gw-0", "2.0") and len(fleet.asked) == 3

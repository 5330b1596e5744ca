"""Rollouts end to end through the CLI: real Mosquitto, real state store, simulated gateways."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleet.cli import app
from fleet.inventory import load_inventory
from fleet.layout import FleetLayout
from line_sim.fleet_sim import SimFleet
from tests.support.broker import Mosquitto
from tests.support.fleet import make_fleet_dir

IDS = [f"gw-{i:02d}" for i in range(1, 6)]


@pytest.fixture
def fleet(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[tuple[FleetLayout, SimFleet]]:
    layout = make_fleet_dir(tmp_path / "fleet", mosquitto.port, IDS)
    sim = SimFleet("127.0.0.1", mosquitto.port, IDS, bad=frozenset({"6.6"}), return_s=0.5)
    sim.start()
    yield layout, sim
    sim.stop()


def cli(layout: FleetLayout, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*args, "--fleet-dir", str(layout.root)])
    return result.exit_code, result.output


def events(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_good_release_reaches_every_gateway_in_waves(
    fleet: tuple[FleetLayout, SimFleet],
) -> None:
    layout, sim = fleet
    code, output = cli(layout, "rollout", "start", "2.0", "--to", "line=anodizing", "--json")
    assert code == 0, output
    assert sim.versions() == dict.fromkeys(IDS, "2.0")
    settled = [e for e in events(output) if e.get("phase") == "healthy"]
    # The canary settles before anyone else is asked; then 50 % waves (2, 2).
    assert next(e["wave"] for e in settled) == 0
    assert sorted(e["wave"] for e in settled) == [0, 1, 1, 2, 2]
    assert events(output)[-1]["state"] == "done"
    inventory = load_inventory(layout)
    assert {g.current_release for g in inventory.gateways.values()} == {"2.0"}
    assert {g.desired_release for g in inventory.gateways.values()} == {"2.0"}
    code, output = cli(layout, "audit", "--json")
    actions = [(e["action"], e["subject"]) for e in json.loads(output)]
    assert sum(a == "release healthy" for a, _ in actions) == 5


def test_bad_release_halts_after_the_canary_which_goes_back(
    fleet: tuple[FleetLayout, SimFleet],
) -> None:
    layout, sim = fleet
    code, output = cli(layout, "rollout", "start", "6.6", "--to", "", "--gate-timeout", "3")
    assert code == 1, output
    assert "rollback" in output and "resume" in output  # says what to do next
    assert sim.versions() == dict.fromkeys(IDS, "1.0")  # the canary went back on its own
    # ...which the fleet saw in its agent's state, so it asked nothing more of it.
    assert sim.gateways["gw-01"].requests == [("install", "6.6")]
    assert "back on its own" in output
    assert all(not sim.gateways[g].requests for g in IDS[1:])  # the others untouched
    code, output = cli(layout, "rollout", "status", "--json")
    [row] = json.loads(output)
    assert row["state"] == "halted"


def test_overlapping_start_is_refused_naming_the_holder(
    fleet: tuple[FleetLayout, SimFleet],
) -> None:
    layout, _ = fleet
    code, _ = cli(layout, "rollout", "start", "6.6", "--to", "id=gw-01", "--gate-timeout", "2")
    assert code == 1  # halted: it still holds gw-01 until rolled back or aborted
    code, output = cli(layout, "rollout", "start", "2.0", "--to", "id in (gw-01,gw-02)")
    assert code == 3, output
    assert "holds gw-01" in output

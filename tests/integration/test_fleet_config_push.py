"""`fleet config push`: refused before sending when wiring is wrong; reverted when unhealthy."""

from __future__ import annotations

import shutil
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
from tests.support.processes import wait_until

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "gateway_image" / "firmware" / "connectors" / "modbus" / "sample_tcp.yaml"
MISWIRED = ROOT / "tests" / "cases" / "wiring" / "gpio-pin-used-twice" / "config.yaml"
IDS = ["gw-01", "gw-02", "gw-03"]
BAD_HOST = "10.255.255.1"  # the simulated gateways cannot reach a PLC there


@pytest.fixture
def fleet(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[tuple[FleetLayout, SimFleet]]:
    layout = make_fleet_dir(tmp_path / "fleet", mosquitto.port, IDS)
    for gw in IDS:  # the config each gateway runs today, as provisioning left it
        shutil.copyfile(SAMPLE, layout.gateway_config(gw))
    # The agent gives a bad config far longer than the fleet's gate: the fleet reverts first.
    sim = SimFleet("127.0.0.1", mosquitto.port, IDS, bad=frozenset({BAD_HOST}), return_s=60)
    yield layout, sim.start()
    sim.stop()


def push(layout: FleetLayout, config: Path, *extra: str) -> tuple[int, str]:
    args = ["config", "push", str(config), "--to", "line=anodizing", *extra]
    result = CliRunner().invoke(app, [*args, "--fleet-dir", str(layout.root)])
    return result.exit_code, result.output


def test_a_wiring_mistake_is_refused_before_anything_is_sent(
    fleet: tuple[FleetLayout, SimFleet],
) -> None:
    layout, sim = fleet
    code, output = push(layout, MISWIRED)
    assert code == 2, output
    assert f"{MISWIRED}:11: connectors[1].outputs[0].pin: GPIO17" in output.replace("\n", "")
    assert all(not g.requests for g in sim.gateways.values())
    listed = CliRunner().invoke(app, ["rollout", "status", "--json", "-C", str(layout.root)])
    assert listed.exit_code == 0 and listed.output.strip() == "[]"  # no rollout was started
    assert not (layout.root / "configs" / "history").exists()


def test_a_good_config_reaches_everyone_and_becomes_the_last_good_one(
    fleet: tuple[FleetLayout, SimFleet], tmp_path: Path
) -> None:
    layout, sim = fleet
    changed = tmp_path / "faster.yaml"
    changed.write_text(SAMPLE.read_text().replace("status_interval: 10", "status_interval: 5"))
    code, output = push(layout, changed)
    assert code == 0, output
    for gw in IDS:
        assert "status_interval: 5" in sim.gateways[gw].config
        assert f"id: {gw}" in sim.gateways[gw].config  # each gets its own identity
        assert "status_interval: 5" in layout.gateway_config(gw).read_text()
    assert len({g.config_hash for g in load_inventory(layout).gateways.values()}) == 1


def test_an_unhealthy_config_is_reverted_on_the_canary(
    fleet: tuple[FleetLayout, SimFleet], tmp_path: Path
) -> None:
    layout, sim = fleet
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        SAMPLE.read_text().replace(
            "host: 127.0.0.1\n    port: 5020", f"host: {BAD_HOST}\n    port: 5020"
        )
    )
    code, output = push(layout, broken, "--gate-timeout", "2")
    assert code == 1, output
    canary = sim.gateways["gw-01"]
    wait_until(lambda: len(canary.requests) == 2, 30, "the canary's revert")
    # Asked for the broken config, then (its gate failed) for its last good one again.
    assert [action for action, _ in canary.requests] == ["config", "config"]
    assert BAD_HOST in canary.requests[0][1]
    assert canary.config == SAMPLE.read_text()  # the copy the fleet kept, byte for byte
    assert all(not sim.gateways[g].requests for g in IDS[1:])
    assert layout.gateway_config("gw-01").read_text() == SAMPLE.read_text()

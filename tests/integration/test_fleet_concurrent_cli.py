"""Two operators start overlapping rollouts at once against the shared PostgreSQL: one proceeds."""

from __future__ import annotations

from pathlib import Path

import yaml

from fleet.store.rollouts import StateStore
from fleet.store.schema import normalise_url
from line_sim.fleet_sim import SimFleet
from tests.support.broker import Mosquitto
from tests.support.fleet import make_fleet_dir
from tests.support.processes import Child, console_script, wait_until

IDS = [f"gw-{i:02d}" for i in range(1, 5)]


def test_two_concurrent_starts_on_postgresql_exactly_one_proceeds(
    tmp_path: Path, mosquitto: Mosquitto, postgres_url: str
) -> None:
    layouts = []
    for who in ("alice", "bob"):  # two laptops, two fleet directories, one team database
        layout = make_fleet_dir(tmp_path / who, mosquitto.port, IDS)
        config = yaml.safe_load(layout.fleet_file.read_text())
        layout.fleet_file.write_text(yaml.safe_dump({**config, "state_url": postgres_url}))
        layouts.append(layout)
    StateStore(normalise_url(postgres_url, tmp_path)).close()  # the team's schema exists
    sim = SimFleet("127.0.0.1", mosquitto.port, IDS).start()
    # A long pause between waves keeps the winner's claims while the other one tries.
    common = ["--pause", "120", "--json"]
    starts = [
        Child(
            "alice",
            console_script(
                "fleet",
                "rollout",
                "start",
                "2.0",
                "--to",
                "id in (gw-01,gw-02,gw-03)",
                "-C",
                str(layouts[0].root),
                "--operator",
                "alice",
                *common,
            ),
            tmp_path,
        ),
        Child(
            "bob",
            console_script(
                "fleet",
                "rollout",
                "start",
                "3.0",
                "--to",
                "id in (gw-03,gw-04)",
                "-C",
                str(layouts[1].root),
                "--operator",
                "bob",
                *common,
            ),
            tmp_path,
        ),
    ]
    store = StateStore(normalise_url(postgres_url, tmp_path))
    try:
        for child in starts:
            child.start()
        loser = wait_until(
            lambda: next((c for c in starts if c.process and c.process.poll() == 3), None),
            120,
            "one start to be refused",
            tuple(starts),
        )
        winner = next(c for c in starts if c is not loser)
        assert winner.alive, winner.log()
        other = "alice" if loser.name == "bob" else "bob"
        assert f"by {other} holds gw-03" in loser.log().replace("\n", " ")
        [row] = store.rollouts()
        assert row.operator == winner.name
        stop = Child(
            "abort",
            console_script("fleet", "rollout", "abort", row.id, "-C", str(layouts[0].root)),
            tmp_path,
        ).start()
        assert stop.process is not None and stop.process.wait(60) == 0
        assert winner.process is not None and winner.process.wait(60) == 1  # aborted
    finally:
        for child in starts:
            child.kill9()
        sim.stop()
    assert store.holders(IDS) == {}  # an aborted rollout frees its gateways
    store.close()

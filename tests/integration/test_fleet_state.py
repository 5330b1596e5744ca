"""The fleet's state store on SQLite, PostgreSQL and MariaDB: the same schema, claims and audit."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.rollout.engine import apply, plan
from fleet.rollout.model import Asked, Asking, Gated, Operator, Phase, Policy, State
from fleet.rollout.policy import Amount, WindowSpec
from fleet.store import lease
from fleet.store.rollouts import ClaimRefused, StateStore
from fleet.store.schema import normalise_url
from tests.support.mariadb import Database


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield normalise_url(None, tmp_path / "state.db")
    elif request.param == "postgresql":
        yield normalise_url(request.getfixturevalue("postgres_url"), tmp_path)
    else:
        db: Database = request.getfixturevalue("mariadb_db")
        yield normalise_url(db.url, tmp_path)


@pytest.fixture
def store(store_url: str) -> Iterator[StateStore]:
    state = StateStore(store_url)
    yield state
    state.close()


POLICY = Policy(
    canary=Amount(2, False),
    wave_size=Amount(50, True),
    error_threshold=Amount(10, True),
    windows=(WindowSpec(("mon", "tue"), 22 * 60, 6 * 60),),
    rollback_all_on_halt=True,
)


def rollout(rid: str, gateways: list[str]) -> object:
    return plan(rid, "release", "2.0", {g: "1.0" for g in gateways}, POLICY)


def test_a_rollout_survives_the_round_trip_step_by_step(store: StateStore) -> None:
    r = rollout("r-1", ["gw-01", "gw-02", "gw-03"])
    store.create(r, "line=a", "alice")
    assert store.load("r-1") == r
    r = apply(r, Asking("gw-01"))
    store.save(r, ["gw-01"])
    r = apply(r, Asked("gw-01", 10.5, 10_500_000_000_123, 2**40), 10.5)
    r = apply(r, Gated("gw-01", True, "healthy"), 11)
    store.save(r, ["gw-01"])
    loaded = store.load("r-1")
    assert loaded == r
    assert loaded.steps["gw-01"].phase is Phase.HEALTHY
    assert loaded.steps["gw-01"].requested_at_ns == 10_500_000_000_123
    assert [row.id for row in store.rollouts(live_only=True)] == ["r-1"]


def test_overlapping_rollouts_one_wins_the_other_is_told_who_holds_what(
    store: StateStore,
) -> None:
    store.create(rollout("r-a", ["gw-01", "gw-02"]), "", "alice")
    with pytest.raises(ClaimRefused) as refused:
        store.create(rollout("r-b", ["gw-02", "gw-03"]), "", "bob")
    assert refused.value.holders == {"gw-02": ("r-a", "alice")}
    assert "rollout r-a by alice holds gw-02" in str(refused.value)
    # Nothing of the refused rollout was kept: no claim on gw-03, no rollout row.
    assert store.holders(["gw-03"]) == {}
    assert [row.id for row in store.rollouts()] == ["r-a"]


def test_concurrent_starts_exactly_one_proceeds(store_url: str) -> None:
    StateStore(store_url).close()  # the schema exists before the race, as after `fleet init`
    gate = threading.Barrier(2)
    outcome: dict[str, str] = {}

    def start(rid: str, operator: str, gateways: list[str]) -> None:
        state = StateStore(store_url)
        gate.wait()
        try:
            state.create(rollout(rid, gateways), "", operator)
            outcome[operator] = "started"
        except ClaimRefused as exc:
            outcome[operator] = str(exc)
        finally:
            state.close()

    gws = [f"gw-{i:03d}" for i in range(200)]
    threads = [
        threading.Thread(target=start, args=("r-alice", "alice", gws[:150])),
        threading.Thread(target=start, args=("r-bob", "bob", gws[100:])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcome.values()).count("started") == 1, outcome
    loser = next(who for who, what in outcome.items() if what != "started")
    winner = "bob" if loser == "alice" else "alice"
    assert f"by {winner} holds gw-100" in outcome[loser]


def test_finished_rollout_frees_its_gateways_and_the_audit_tells_the_story(
    store: StateStore,
) -> None:
    r = rollout("r-1", ["gw-01"])
    store.create(r, "", "alice")
    store.post_command("r-1", "abort", "bob")
    command = store.take_command("r-1")
    assert command == ("abort", "bob")
    assert store.take_command("r-1") is None
    r = apply(r, Operator(command[0]))
    store.save(r, r.steps)
    assert r.state is State.ABORTED
    assert store.holders(["gw-01"]) == {}
    store.create(rollout("r-2", ["gw-01"]), "", "carol")
    log = store.audit_log()
    assert [(e["operator"], e["action"], e["subject"]) for e in log] == [
        ("alice", "release rollout start", "r-1"),
        ("bob", "rollout abort", "r-1"),
        ("carol", "release rollout start", "r-2"),
    ]
    assert log[0]["ts"] <= log[1]["ts"] <= log[2]["ts"]


def test_one_cli_drives_a_rollout_at_a_time(store: StateStore) -> None:
    store.create(rollout("r-1", ["gw-01"]), "", "alice")
    lease.take(store.engine, "r-1", "alice@elsewhere:1", now=100.0)
    lease.take(store.engine, "r-1", "alice@elsewhere:1", now=110.0)  # renewing is fine
    with pytest.raises(lease.LeaseHeld, match="being driven by alice@elsewhere:1"):
        lease.take(store.engine, "r-1", "bob@laptop:2", now=120.0)
    lease.take(store.engine, "r-1", "bob@laptop:2", now=110.0 + lease.LEASE_S + 1)  # expired
    # A holder on this machine whose process is gone frees it at once (a CLI killed -9).
    gone = subprocess.Popen(["true"])
    gone.wait()
    here = f"carol@{socket.gethostname()}:{gone.pid}"
    lease.release(store.engine, "r-1", "bob@laptop:2")
    lease.take(store.engine, "r-1", here, now=200.0)
    lease.take(store.engine, "r-1", "dave@laptop:3", now=201.0)
    with pytest.raises(lease.LeaseHeld, match="dave@laptop:3"):
        lease.take(store.engine, "r-1", "erin@laptop:4", now=202.0)

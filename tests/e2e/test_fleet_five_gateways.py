"""Five gateways over real SSH, rolled out to with the real `fleet` CLI, end to end.

Each gateway is a host of its own (tests/support/gateway_host.py): an sshd on loopback, the
update agent installed at first boot from a signed release artifact, and the gateway it runs
polling a line simulator and publishing over TLS to a Mosquitto with the shipped ACL, which a
real edge node ingests. The fleet directory lists the five with their sshd host keys. A good
release goes out canary first, then the other four; a release whose gateway dies at start
halts after the canary, whose agent returns it on its own; and the edge ends up holding every
reading of every gateway exactly once.
"""

from __future__ import annotations

import json
import queue
import ssl
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from getpass import getuser
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from factory_common import wire
from fleet.inventory import save_gateway_entry
from tests.fault.rig import (
    buffer_meta,
    down_readings_arrived,
    edge_holdings,
    first_seq_from_log,
    received_ranges,
)
from tests.support.broker import Mosquitto
from tests.support.edge_process import EdgeProcess, start_edge
from tests.support.fleet import make_fleet_dir
from tests.support.gateway_host import (
    GatewayHost,
    copy_release,
    gateway_config,
    require_mount_namespaces,
    wait_for_state,
)
from tests.support.pki import TestCA
from tests.support.ports import free_port, wait_for_port
from tests.support.processes import Child, console_script, python_module, wait_until
from tests.support.releases import Releases
from tests.support.sshd import write_keypair

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

IDS = [f"gw-{n:02d}" for n in range(1, 6)]
LINE = "anodizing"
EDGE = "edge-anodizing"  # the edge identity the shipped ACL names
# Generous: five gateways, their agents and an edge share two loaded cores.
GATE_TIMEOUT_S = 480


@dataclass
class Site:
    hosts: dict[str, GatewayHost]
    fleet_dir: Path
    edge: EdgeProcess
    simulator: Child
    broker: Mosquitto
    pki: TestCA

    def fleet(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The real `fleet` CLI, as an operator runs it."""
        command = console_script("fleet", *args, "--fleet-dir", str(self.fleet_dir))
        return subprocess.run(command, capture_output=True, text=True, timeout=900)

    def children(self, simulator: bool = True) -> tuple[Child, ...]:
        """The processes a wait watches: one exiting early fails it with its log."""
        agents = tuple(h.agent for h in self.hosts.values() if h.agent is not None)
        return (self.edge.child, *agents, *((self.simulator,) if simulator else ()))


def fleet_yaml(root: Path, pki: TestCA, broker: Mosquitto, mount: Path) -> dict[str, Any]:
    identity = pki.issue("fleet")  # the fleet's own broker identity in the shipped ACL
    tls = {"ca": str(pki.cert_path), "cert": str(identity.cert), "key": str(identity.key)}
    return {
        "broker": {"host": "127.0.0.1", "port": broker.port, "tls": tls},
        "backends": {
            "ssh": {
                "user": getuser(),
                "key": "keys/fleet_ssh",
                "connect_timeout_s": 20,
                "command_timeout_s": 120,
                "max_parallel": 4,
                "incoming_dir": str(mount / "incoming"),
                "agent_root": str(mount / "opt"),
            }
        },
        "defaults": {"gate_timeout_s": GATE_TIMEOUT_S, "drained_depth": 200},
    }


@pytest.fixture
def site(
    tmp_path: Path, secure_broker: Mosquitto, pki: TestCA, releases: Releases
) -> Iterator[Site]:
    unshare, nsenter = require_mount_namespaces()
    modbus = free_port()
    simulator = Child(
        "simulator", python_module("line_sim", "simulate", "--port", str(modbus)), tmp_path
    ).start()
    try:
        wait_for_port(modbus, timeout=30)
        edge_id = pki.issue(EDGE)
        edge_tls = {"ca": str(pki.cert_path), "cert": str(edge_id.cert), "key": str(edge_id.key)}
        edge = start_edge(tmp_path, secure_broker.port, EDGE, tls=edge_tls)
    except BaseException:
        simulator.stop()  # an edge that never came up must not leave the simulator running
        raise

    root, mount = tmp_path / "fleet", tmp_path / "mnt"
    mount.mkdir()
    (root / "keys").mkdir(parents=True)
    public = write_keypair(root / "keys" / "fleet_ssh")
    hosts = {gw: GatewayHost(gw, tmp_path / gw, mount, public) for gw in IDS}
    layout = make_fleet_dir(
        root, secure_broker.port, [], extra=fleet_yaml(root, pki, secure_broker, mount)
    )
    for release in (releases.good, releases.crashing):
        copy_release(release, layout.releases_dir)

    def first_boot(host: GatewayHost) -> None:
        host.start_sshd(unshare)
        config = host.workdir / "gateway.yaml"
        settings = gateway_config(host.gateway, secure_broker.port, modbus, pki)
        config.write_text(yaml.safe_dump(settings))
        if host is not first:
            host.flash_like(first)
        host.install_first(nsenter, releases.base, config, releases.fleet.release_pub)
        host.start_agent(nsenter)
        save_gateway_entry(layout, host.entry(LINE))

    first = hosts[IDS[0]]
    try:
        # One real install into slot A; the others boot from the same image (see flash_like),
        # which spares four installs of the same wheels on a loaded machine.
        first_boot(first)
        with ThreadPoolExecutor(len(hosts)) as pool:
            list(pool.map(first_boot, [hosts[gw] for gw in IDS[1:]]))
        yield Site(hosts, root, edge, simulator, secure_broker, pki)
    finally:
        for host in hosts.values():
            host.stop()
        edge.child.stop()
        simulator.stop()


class UpdateStates:
    """The agents' retained update states, read with the fleet's identity (as `fleet` does)."""

    def __init__(self, site: Site) -> None:
        identity = site.pki.issue("fleet")
        self.states: dict[str, wire.UpdateState] = {}
        self.arrived: queue.Queue[str] = queue.Queue()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fleet:observer")
        client.tls_set(
            ca_certs=str(site.pki.cert_path),
            certfile=str(identity.cert),
            keyfile=str(identity.key),
            cert_reqs=ssl.CERT_REQUIRED,
        )
        client.on_message = self._on_message
        client.on_connect = lambda c, *_: c.subscribe(wire.subscription(wire.TopicKind.UPDATE), 1)
        client.connect("127.0.0.1", site.broker.port)
        client.loop_start()
        self.client = client

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        if message.payload:
            state = wire.decode(message.payload, wire.UpdateState)
            self.states[state.gateway] = state

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def statuses(site: Site) -> dict[str, dict[str, Any]]:
    done = site.fleet("status", "--json")
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return {row["id"]: row for row in json.loads(done.stdout)}


def all_report(site: Site, version: str) -> dict[str, dict[str, Any]] | None:
    rows = statuses(site)
    ok = all(
        rows.get(gw, {}).get("online")
        and rows[gw]["version"] == version
        and rows[gw]["connectors"].split("/")[0] == rows[gw]["connectors"].split("/")[1]
        for gw in IDS
    )
    return rows if ok else None


def events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def rollout(site: Site, release: str) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
    """`fleet rollout start RELEASE` to the line: canary of one, then one wave of the rest."""
    done = site.fleet(
        "rollout",
        "start",
        release,
        "--to",
        f"line={LINE}",
        "--canary",
        "1",
        "--wave-size",
        str(len(IDS) - 1),
        "--max-parallel",
        "4",
        "--json",
    )
    stream = events(done.stdout)
    summary = stream[-1]
    assert summary["event"] == "summary", done.stdout + done.stderr
    shown = site.fleet("rollout", "status", summary["rollout"], "--json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    return done.returncode, stream, json.loads(shown.stdout)


def first_asked(stream: list[dict[str, Any]], gateway: str) -> int:
    """Where in the event stream the fleet first asked `gateway`."""
    return next(
        i for i, e in enumerate(stream) if e.get("event") == "step" and e.get("gateway") == gateway
    )


@pytest.mark.timeout(1800)
def test_five_gateways_two_waves_a_halted_canary_and_every_reading_once(site: Site) -> None:
    wait_until(lambda: all_report(site, "1.0.0"), 240, "all five on 1.0.0", site.children())
    observer = UpdateStates(site)
    try:
        good_release_reaches_all_five_in_two_waves(site, observer)
        failing_release_halts_after_the_canary(site, observer)
    finally:
        observer.close()
    edge_holds_every_reading_once(site)


def good_release_reaches_all_five_in_two_waves(site: Site, observer: UpdateStates) -> None:
    code, stream, shown = rollout(site, "1.1.0")
    assert code == 0, stream
    assert shown["state"] == "done" and shown["waves"] == 2, shown
    waves = {s["gateway"]: s["wave"] for s in shown["steps"]}
    [canary] = [gw for gw, wave in waves.items() if wave == 0]
    assert sorted(waves.values()) == [0, 1, 1, 1, 1]
    assert all(s["phase"] == "healthy" and s["previous"] == "1.0.0" for s in shown["steps"])
    # The canary was healthy before any gateway of the second wave was asked.
    healthy = next(
        i
        for i, e in enumerate(stream)
        if e.get("gateway") == canary and e.get("phase") == "healthy"
    )
    assert all(healthy < first_asked(stream, gw) for gw in IDS if gw != canary), stream
    # Every agent commits it (its own record and its retained update state) and every gateway
    # reports it in `fleet status`, on its desired release.
    for host in site.hosts.values():
        wait_for_state(
            host,
            lambda s: s["committed"]["release"] == "1.1.0" and s["phase"] == "committed",
            120,
            f"{host.gateway} to commit 1.1.0",
        )
    wait_until(
        lambda: all(
            (s := observer.states.get(gw))
            and s.phase is wire.UpdatePhase.COMMITTED
            and s.release == "1.1.0"
            for gw in IDS
        ),
        60,
        "every agent's retained update state to say committed 1.1.0",
    )
    rows = wait_until(lambda: all_report(site, "1.1.0"), 60, "all five to report 1.1.0")
    assert all(rows[gw]["desired"] == "1.1.0" and "behind" not in rows[gw]["flags"] for gw in IDS)  # type: ignore[index]


def failing_release_halts_after_the_canary(site: Site, observer: UpdateStates) -> None:
    before = {gw: (h.state(), h.gateway_pid()) for gw, h in site.hosts.items()}
    code, _, shown = rollout(site, "1.2.0")
    assert code == 1 and shown["state"] == "halted", shown
    steps = {s["gateway"]: s for s in shown["steps"]}
    [canary] = [gw for gw, s in steps.items() if s["wave"] == 0]
    assert steps[canary]["phase"] in ("failed", "reverted"), steps[canary]
    assert "rolled_back" in steps[canary]["detail"], steps[canary]
    # The canary's agent returned on its own: committed release unchanged, state rolled back.
    host = site.hosts[canary]
    state = wait_for_state(
        host, lambda s: s["phase"] == "rolled_back", 60, f"{canary}'s agent to return"
    )
    assert state["committed"]["release"] == "1.1.0", state
    assert "crash loop" in state["detail"], state
    assert (host.outside(host.agent_root) / "current").resolve() == (
        host.outside(host.agent_root) / "committed"
    ).resolve()
    update = observer.states[canary]
    assert update.phase is wire.UpdatePhase.ROLLED_BACK and update.release == "1.1.0", update
    # The other four were never asked: same agent record, same gateway process, no artifact.
    for gw in IDS:
        if gw == canary:
            continue
        assert steps[gw]["phase"] in ("pending", "skipped"), steps[gw]
        assert (site.hosts[gw].state(), site.hosts[gw].gateway_pid()) == before[gw], gw
        incoming = site.hosts[gw].disk / "incoming"
        assert not list(incoming.glob("*1.2.0*")), gw
    wait_until(lambda: all_report(site, "1.1.0"), 90, "all five back on 1.1.0", site.children())


def edge_holds_every_reading_once(site: Site) -> None:
    """Stop the line, let every buffer drain, then the edge's ledger holds every seq each
    gateway ever issued (from its first start to its last committed), contiguous, and its
    store one reading per seq, none twice."""
    site.simulator.stop()
    store = site.edge.data_dir / "edge.sqlite"

    def span(host: GatewayHost) -> tuple[int, int]:
        last = buffer_meta(host.buffer_path).get("next_seq", 0) - 1
        return first_seq_from_log(host.gateway_log()), last

    def drained(host: GatewayHost) -> bool:
        empty = buffer_meta(host.buffer_path).get("depth") == 0
        finished = down_readings_arrived(store, host.gateway)
        return finished and empty and received_ranges(store, host.gateway) == [span(host)]

    for host in site.hosts.values():
        wait_until(lambda h=host: drained(h), 120, f"{host.gateway} to drain", site.children(False))
    for host in site.hosts.values():
        first, last = span(host)
        holdings = edge_holdings(store, host.gateway)
        assert holdings.ranges == [(first, last)] and last > first, (host.gateway, holdings)
        assert holdings.readings == holdings.seqs and holdings.repeated == 0, (
            host.gateway,
            holdings,
        )

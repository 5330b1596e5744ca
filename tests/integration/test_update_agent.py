"""The update agent on one simulated gateway, all real processes: a Mosquitto, a Modbus
simulator, the agent, and the gateway running from venvs made from signed artifacts.

The tests share one device and run in order, as its life would: first boot into slot A,
refused artifacts, a crashing release, a power cut during a trial, a bad config, a good
release. Every reading the gateway numbered, before and after each switch, must arrive.
"""

from __future__ import annotations

import json
import queue
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from factory_common import wire
from gateway_image.agent.firstboot import install_first_slot
from gateway_image.agent.slots import AgentPaths
from tests.support.broker import Mosquitto
from tests.support.ports import free_port, wait_for_port
from tests.support.processes import Child, console_script, python_module, wait_until
from tests.support.releases import ROOT, Releases, tampered_copy, unsigned_copy
from tests.support.requirements import require_binary

GATEWAY = "gw-update"
pytestmark = pytest.mark.slow


class Recorder:
    """What the edge would see: every batch's seqs, plus the latest status and update state."""

    def __init__(self, port: int) -> None:
        self.seqs: dict[int, tuple[str, str, int]] = {}
        self.conflicts: list[int] = []
        self.status: wire.GatewayStatus | None = None
        self.states: queue.Queue[wire.UpdateState] = queue.Queue()
        self.state: wire.UpdateState | None = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="recorder")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([(f"{wire.TOPIC_ROOT}/gw/{GATEWAY}/#", 1)])
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        if not message.payload:
            return
        _, kind = wire.parse_topic(message.topic)
        if kind is wire.TopicKind.DATA:
            batch = wire.decode(message.payload, wire.Batch)
            for seq, reading in zip(batch.seqs(), batch.readings, strict=True):
                key = (reading.device, reading.tag, reading.ts)
                if self.seqs.setdefault(seq, key) != key:
                    self.conflicts.append(seq)  # one seq for two readings: the edge would drop one
        elif kind is wire.TopicKind.STATUS:
            self.status = wire.decode(message.payload, wire.GatewayStatus)
        elif kind is wire.TopicKind.UPDATE:
            self.state = wire.decode(message.payload, wire.UpdateState)
            self.states.put(self.state)

    def ask(self, request: wire.UpdateRequest) -> None:
        self.client.publish(wire.update_request_topic(GATEWAY), wire.encode(request), qos=1)

    def outcome(self, request_id: str, timeout: float = 240) -> wire.UpdateState:
        def ended() -> wire.UpdateState | None:
            s = self.state
            return s if s and s.request == request_id and s.phase in wire.TERMINAL_PHASES else None

        return wait_until(ended, timeout, f"the agent to end request {request_id}")  # type: ignore[return-value]

    def reporting(self, version: str, since_ns: int = 0) -> wire.GatewayStatus:
        def fresh() -> wire.GatewayStatus | None:
            s = self.status
            ok = s and s.online and s.version == version and s.started_at >= since_ns
            return s if ok and s.connectors and s.connectors[0].readings > 0 else None

        return wait_until(fresh, 120, f"the gateway to report {version}")  # type: ignore[return-value]


@dataclass
class Device:
    paths: AgentPaths
    agent: Child
    recorder: Recorder
    simulator: Child
    releases: Releases
    workdir: Path

    def start_agent(self) -> None:
        self.agent = Child(
            f"agent-{time.monotonic_ns()}",
            console_script(
                "gateway-agent",
                "run",
                "--root",
                str(self.paths.root),
                "--data-dir",
                str(self.paths.data_dir),
                "--log-json",
            ),
            self.workdir,
        ).start()

    def gateway_pid(self) -> int:
        return int((self.paths.run_dir / "gateway.pid").read_text())


def request(action: wire.UpdateAction, ident: str, **fields: object) -> wire.UpdateRequest:
    return wire.UpdateRequest(
        v=wire.WIRE_VERSION,
        id=ident,
        gateway=GATEWAY,
        action=action,
        issued_at=wire.now_ns(),
        issued_by="fleet",
        **fields,  # type: ignore[arg-type]
    )


def install(artifact: Path, ident: str, timeout: float = 60) -> wire.UpdateRequest:
    return request(
        wire.UpdateAction.INSTALL,
        ident,
        artifact=str(artifact),
        release=artifact.name.split("-")[2].removesuffix(".release.tar"),
        health_timeout_s=timeout,
    )


def gateway_config(mqtt_port: int, modbus_port: int) -> dict[str, object]:
    config = yaml.safe_load((ROOT / "examples" / "anodizing-gateway.yaml").read_text())
    config["gateway"]["id"] = GATEWAY
    config["mqtt"].update(port=mqtt_port, status_interval=1, confirm="broker")
    config["connectors"][0].update(port=modbus_port, poll_interval=0.2)
    return config


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory, releases: Releases) -> Iterator[Device]:
    binary = require_binary("mosquitto", "run `sudo apt-get install mosquitto`")
    workdir = tmp_path_factory.mktemp("device")
    broker = Mosquitto(binary, workdir / "broker", persistent=True)
    broker.start()
    modbus = free_port()
    simulator = Child(
        "simulator",
        python_module("line_sim", "simulate", "--port", str(modbus), "--seed", "3"),
        workdir,
    ).start()
    wait_for_port(modbus)
    config = workdir / "gateway.yaml"
    config.write_text(yaml.safe_dump(gateway_config(broker.port, modbus), allow_unicode=True))
    paths = AgentPaths(
        root=workdir / "opt", data_dir=workdir / "data", keys_dir=workdir / "opt" / "keys"
    )
    recorder = Recorder(broker.port)
    # First boot, as the image's first-boot script does it.
    state = install_first_slot(paths, releases.base, config, [releases.fleet.release_pub])
    assert state.committed == state.committed.__class__(
        "a", "1.0.0", "a", state.committed.config_sha256
    )
    dev = Device(paths, None, recorder, simulator, releases, workdir)  # type: ignore[arg-type]
    dev.start_agent()
    yield dev
    dev.agent.stop(30)
    if (paths.run_dir / "gateway.pid").exists():
        subprocess.run(["kill", str(dev.gateway_pid())], check=False)
    simulator.stop()
    recorder.client.loop_stop()
    broker.stop()


def test_first_boot_release_runs_and_the_agent_reports_it(device: Device) -> None:
    device.recorder.reporting("1.0.0")
    state = wait_until(lambda: device.recorder.state, 30, "the agent's first state")
    assert state.phase is wire.UpdatePhase.IDLE and state.release == "1.0.0"  # type: ignore[union-attr]


@pytest.mark.parametrize("how", ["tampered", "unsigned"])
def test_tampered_and_unsigned_artifacts_are_refused_and_the_gateway_keeps_running(
    device: Device, how: str
) -> None:
    before = device.recorder.reporting("1.0.0")
    make = tampered_copy if how == "tampered" else unsigned_copy
    bad = make(device.releases.good, device.workdir / f"{how}-factory-edge-1.1.0.release.tar")
    device.recorder.ask(install(bad, f"bad-{how}"))
    state = device.recorder.outcome(f"bad-{how}")
    assert state.phase is wire.UpdatePhase.REFUSED, state
    assert ("tampered" if how == "tampered" else "unsigned") in state.detail
    assert state.release == "1.0.0"
    after = device.recorder.reporting("1.0.0")
    assert after.started_at == before.started_at  # never restarted


def test_a_release_that_crashes_at_start_is_returned_by_the_agent(device: Device) -> None:
    since = wire.now_ns()
    ask = subprocess.run(
        console_script(
            "gateway-agent",
            "update",
            str(device.releases.crashing),
            "--root",
            str(device.paths.root),
            "--wait",
            "--health-timeout",
            "120",
        ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ask.returncode == 1, ask.stdout + ask.stderr
    request_id = ask.stdout.split()[1]  # "request <id> queued"
    state = device.recorder.outcome(request_id)
    assert state.phase is wire.UpdatePhase.ROLLED_BACK, state
    assert "crash loop" in state.detail and state.release == "1.0.0"
    device.recorder.reporting("1.0.0", since_ns=since)


def test_power_cut_between_switch_and_commit_ends_on_the_previous_release(device: Device) -> None:
    # The simulator is frozen so the trial cannot turn healthy before the power cut.
    device.simulator.process.send_signal(19)  # type: ignore[union-attr]  SIGSTOP
    try:
        device.recorder.ask(install(device.releases.good, "cut", timeout=600))
        wait_until(
            lambda: json.loads(device.paths.state_file.read_bytes())["phase"] == "trial",
            300,
            "the trial to start",
            (device.agent,),
        )
        gateway = device.gateway_pid()
        device.agent.kill9()
        subprocess.run(["kill", "-9", str(gateway)], check=True)
    finally:
        device.simulator.process.send_signal(18)  # type: ignore[union-attr]  SIGCONT
    since = wire.now_ns()
    device.start_agent()
    state = device.recorder.outcome("cut", timeout=120)
    assert state.phase is wire.UpdatePhase.ROLLED_BACK and state.release == "1.0.0", state
    assert "restarted during the trial" in state.detail
    device.recorder.reporting("1.0.0", since_ns=since)


def test_a_config_that_leaves_the_gateway_unhealthy_is_returned(device: Device) -> None:
    config = yaml.safe_load((device.workdir / "gateway.yaml").read_text())
    config["connectors"][0]["port"] = free_port()  # no device answers there
    device.recorder.ask(
        request(
            wire.UpdateAction.CONFIG,
            "bad-config",
            config=yaml.safe_dump(config),
            health_timeout_s=8,
        )
    )
    state = device.recorder.outcome("bad-config")
    assert state.phase is wire.UpdatePhase.ROLLED_BACK, state
    assert "not reading" in state.detail
    device.recorder.reporting("1.0.0")


def test_a_good_release_commits_and_no_reading_is_lost_or_numbered_twice(device: Device) -> None:
    device.recorder.ask(install(device.releases.good, "good", timeout=120))
    state = device.recorder.outcome("good")
    assert state.phase is wire.UpdatePhase.COMMITTED and state.release == "1.1.0", state
    assert state.slot == "b"
    status = device.recorder.reporting("1.1.0")
    # Across the first boot, restarts and switches: every seq from the first the gateway ever
    # numbered to the last it reports arrived, and no seq named two readings.
    last, seqs = status.last_seq, device.recorder.seqs
    first = min(seqs)
    wait_until(
        lambda: sum(1 for s in list(seqs) if first <= s <= last) == last - first + 1,
        60,
        "every seq up to the last one",
    )
    assert device.recorder.conflicts == []
    committed = json.loads(device.paths.state_file.read_bytes())["committed"]
    assert committed["release"] == "1.1.0"
    assert (device.paths.root / "committed").resolve() == device.paths.slot("b")

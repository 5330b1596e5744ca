"""Each extra alone, installed from uv.lock into a clean venv, runs its tier's entry points
and imports nothing outside the extra (what a Pi, an edge container or a laptop installs)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.broker import Mosquitto
from tests.support.extras import ROOT, TIERS, import_failures, install_extra
from tests.support.ports import free_port, wait_for_port
from tests.support.processes import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def venv_for(
    project_wheel: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Path]:
    """extra -> a clean venv holding only it; each built once per module."""
    built: dict[str, Path] = {}

    def get(extra: str) -> Path:
        if extra not in built:
            built[extra] = install_extra(extra, project_wheel, tmp_path_factory.mktemp(extra))
        return built[extra]

    return get


@pytest.fixture(params=sorted(TIERS))
def tier(request: pytest.FixtureRequest, venv_for: Callable[[str], Path]) -> tuple[str, Path]:
    return request.param, venv_for(request.param)


def test_each_tier_imports_nothing_outside_its_extra(tier: tuple[str, Path]) -> None:
    extra, venv = tier
    assert import_failures(venv, extra) == []


def test_each_tier_installs_only_its_own_libraries(tier: tuple[str, Path]) -> None:
    extra, venv = tier
    others = {"gateway": "asyncua", "edge": "fastapi", "fleet": "fabric", "sim": "amqtt"}
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe, *others.values()],
        capture_output=True,
        text=True,
        check=True,
        cwd=venv,
    )
    assert done.stdout.strip() == repr([others[extra]])


def test_each_tier_command_answers_help(tier: tuple[str, Path]) -> None:
    extra, venv = tier
    command = {"gateway": "gateway", "edge": "edge-node", "fleet": "fleet", "sim": "factory-line"}
    done = subprocess.run(
        [str(venv / "bin" / command[extra]), "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Usage" in done.stdout


@pytest.fixture
def process_log(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def _start(
    argv: list[str], log: Path, started: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)
    started.append(process)
    return process


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.terminate()
    return process.wait(30)


def test_gateway_extra_checks_and_runs_a_modbus_gateway(
    venv_for: Callable[[str], Path],
    tmp_path: Path,
    mosquitto: Mosquitto,
    process_log: list[subprocess.Popen[bytes]],
) -> None:
    venv = venv_for("gateway")
    modbus = free_port()
    # The simulator is another tier: it runs from the development venv.
    simulator = [sys.executable, "-m", "line_sim", "simulate", "--port", str(modbus)]
    _start([*simulator, "--seed", "1"], tmp_path / "sim.log", process_log)
    wait_for_port(modbus, timeout=60)
    config = yaml.safe_load((ROOT / "examples" / "anodizing-gateway.yaml").read_text())
    config["mqtt"]["port"] = mosquitto.port
    config["connectors"][0]["port"] = modbus
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    gateway = str(venv / "bin" / "gateway")
    check = subprocess.run([gateway, "check", str(path), "--probe"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    data = tmp_path / "data"
    log = tmp_path / "gateway.log"
    process = _start([gateway, "run", str(path), "--data-dir", str(data)], log, process_log)
    heartbeat = [str(venv / "bin" / "python"), "-m", "gateway_image.firmware.heartbeat"]

    def beating() -> bool:
        assert process.poll() is None, log.read_text()
        return subprocess.run([*heartbeat, str(data), "60"], capture_output=True).returncode == 0

    wait_until(beating, 60, "the gateway's first heartbeat")
    assert _stop(process) == 0, log.read_text()
    assert any(data.glob("*.sqlite*"))


def test_edge_extra_runs_until_it_answers_http(
    venv_for: Callable[[str], Path],
    tmp_path: Path,
    mosquitto: Mosquitto,
    process_log: list[subprocess.Popen[bytes]],
) -> None:
    venv = venv_for("edge")
    port = free_port()
    config = yaml.safe_load((ROOT / "examples" / "anodizing-edge.yaml").read_text())
    config["mqtt"]["port"] = mosquitto.port
    config["http"].update(host="127.0.0.1", port=port)
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(config))
    log = tmp_path / "edge.log"
    argv = [str(venv / "bin" / "edge-node"), "run", str(path), "--data-dir", str(tmp_path / "d")]
    process = _start(argv, log, process_log)
    health = "import urllib.request as r, sys; r.urlopen(sys.argv[1], timeout=4)"
    url = f"http://127.0.0.1:{port}/api/health"

    def answers() -> bool:
        assert process.poll() is None, log.read_text()
        probe = [str(venv / "bin" / "python"), "-c", health, url]
        return subprocess.run(probe, capture_output=True).returncode == 0

    wait_until(answers, 90, "the edge node's HTTP answer")
    assert _stop(process) == 0, log.read_text()


def test_sim_extra_serves_modbus(
    venv_for: Callable[[str], Path], tmp_path: Path, process_log: list[subprocess.Popen[bytes]]
) -> None:
    venv = venv_for("sim")
    port = free_port()
    argv = [str(venv / "bin" / "factory-line"), "simulate", "--port", str(port), "--seed", "1"]
    process = _start(argv, tmp_path / "sim.log", process_log)
    wait_for_port(port, timeout=60)
    assert process.poll() is None

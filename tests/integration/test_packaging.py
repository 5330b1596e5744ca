"""Packaging: lint the Dockerfile and scripts, check the wheel, and run what each container
runs (its ENTRYPOINT + CMD and its HEALTHCHECK) as plain processes, since no Docker engine
runs here."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
import yaml

from tests.support.broker import Mosquitto
from tests.support.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} missing: pip install -e '.[dev]' (./scripts/bootstrap.sh)"
    return str(path)


def dockerfile_targets() -> dict[str, dict[str, list[str]]]:
    """Per stage: the exec-form ENTRYPOINT, CMD and HEALTHCHECK CMD arrays."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    stages: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in text.splitlines():
        if m := re.match(r"FROM \S+ AS (\S+)", line):
            current = stages.setdefault(m[1], {})
        elif m := re.match(r"(ENTRYPOINT|CMD) (\[.*\])\s*$", line):
            current[m[1]] = json.loads(m[2])
        elif m := re.match(r"HEALTHCHECK .*CMD (\[.*\])\s*$", line):
            current["HEALTHCHECK"] = json.loads(m[1])
    return stages


def test_hadolint_passes_on_the_dockerfile() -> None:
    result = subprocess.run([tool("hadolint"), "Dockerfile"], cwd=ROOT, capture_output=True)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_shellcheck_passes_on_every_script() -> None:
    scripts = [*sorted(str(p) for p in (ROOT / "scripts").glob("*.sh")), str(ROOT / ".ci/run")]
    assert len(scripts) >= 4
    result = subprocess.run([tool("shellcheck"), *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_tier_image_has_a_non_root_entrypoint_and_a_healthcheck() -> None:
    stages = dockerfile_targets()
    assert {"builder", "gateway", "edge"} <= set(stages)
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("USER 10001:10001") == 2
    assert stages["gateway"]["ENTRYPOINT"] == ["gateway"]
    assert stages["gateway"]["CMD"][:2] == ["run", "/etc/factory/gateway.yaml"]
    assert stages["edge"]["ENTRYPOINT"] == ["edge-node"]
    assert "[gateway]" in text and "[edge]" in text
    # No per-architecture downloads: multi-arch base images and pip only.
    assert not re.search(r"amd64|x86_64|aarch64|arm64", text.split("\nFROM", 1)[1])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(out), "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("factory_edge-*.whl")
    return path


def test_wheel_holds_every_package_the_web_assets_and_the_tier_extras(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        meta = Parser().parsestr(zf.read(next(n for n in names if n.endswith("METADATA"))).decode())
        scripts = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    for package in ("factory_common", "gateway_image/firmware", "edge_node", "line_sim"):
        assert f"{package}/__init__.py" in names, package
    web = {"index.html", "login.html", "login.js", "style.css", "js/main.js", "js/history.js"}
    assert {f"edge_node/web/{name}" for name in web} <= names
    assert any(n.startswith("edge_node/web/vendor/") for n in names)
    assert {"gateway", "edge", "sim", "dev"} <= set(meta.get_all("Provides-Extra"))
    requires = meta.get_all("Requires-Dist")
    gateway_reqs = [r for r in requires if 'extra == "gateway"' in r]
    assert any(r.startswith("pymodbus") for r in gateway_reqs)
    assert not any(r.startswith(("fastapi", "numpy", "amqtt")) for r in gateway_reqs)
    for script in ("gateway =", "edge-node =", "factory-line ="):
        assert script in scripts


@pytest.mark.slow
def test_gateway_extra_alone_installs_and_runs_like_the_container(
    wheel: Path, tmp_path: Path
) -> None:
    target = tmp_path / "gw"
    venv.create(target, with_pip=True)
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, f"{wheel}[gateway]"], check=True, capture_output=True, timeout=300)
    gateway = str(target / "bin" / "gateway")
    assert "run" in subprocess.run([gateway, "--help"], capture_output=True, text=True).stdout
    check = subprocess.run(
        [gateway, "check", str(ROOT / "examples" / "anodizing-gateway.yaml")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # The Pi image must not carry the edge tier's dependencies.
    edge_only = ("fastapi", "numpy", "amqtt")
    probe = f"import importlib.util as u; print([m for m in {edge_only!r} if u.find_spec(m)])"
    out = subprocess.run([str(target / "bin" / "python"), "-c", probe], capture_output=True)
    assert out.stdout.decode().strip() == "[]"


def _container_argv(target: str, swap: dict[str, str]) -> tuple[list[str], list[str]]:
    stage = dockerfile_targets()[target]

    def sub(args: list[str]) -> list[str]:
        out = []
        for arg in args:
            for old, new in swap.items():
                arg = arg.replace(old, new)
            out.append(arg)
        return out

    main = sub(stage["ENTRYPOINT"] + stage["CMD"])
    main[0] = str(BIN / main[0])
    return main, sub(stage["HEALTHCHECK"])


def _healthy(check: list[str]) -> bool:
    return subprocess.run(check, capture_output=True, timeout=10).returncode == 0


def _wait_healthy(check: list[str], process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while not _healthy(check):
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"never healthy\n{log.read_text()}"
        time.sleep(0.5)


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.terminate()
    try:
        return process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


@pytest.mark.slow
def test_edge_container_command_runs_and_its_healthcheck_tracks_it(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    port = free_port()
    config = yaml.safe_load((ROOT / "examples" / "anodizing-edge.yaml").read_text())
    config["mqtt"]["port"] = mosquitto.port
    config["http"].update(host="127.0.0.1", port=port)
    (tmp_path / "edge.yaml").write_text(yaml.safe_dump(config))
    swap = {
        "/etc/factory": str(tmp_path),
        "/var/lib/factory": str(tmp_path / "data"),
        "8080": str(port),
    }
    main, check = _container_argv("edge", swap)
    assert not _healthy(check)
    log = tmp_path / "edge.log"
    with log.open("wb") as out:
        process = subprocess.Popen(main, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(check, process, log)
    finally:
        assert _stop(process) == 0, log.read_text()
    assert not _healthy(check)


@pytest.mark.slow
def test_gateway_container_command_runs_and_its_healthcheck_tracks_it(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    modbus = free_port()
    simulator = subprocess.Popen(
        [sys.executable, "-m", "line_sim", "simulate", "--port", str(modbus), "--seed", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(modbus)
    config = yaml.safe_load((ROOT / "examples" / "anodizing-gateway.yaml").read_text())
    config["mqtt"]["port"] = mosquitto.port
    config["connectors"][0]["port"] = modbus
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    data = tmp_path / "data"
    data.mkdir()
    main, check = _container_argv(
        "gateway", {"/etc/factory": str(tmp_path), "/var/lib/factory": str(data)}
    )
    assert not _healthy(check)
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen(main, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(check, process, log)
    finally:
        code = _stop(process)
        _stop(simulator)
    assert code == 0, log.read_text()
    assert any(data.glob("*.sqlite*"))

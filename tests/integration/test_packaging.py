"""Packaging: lint the Dockerfile and scripts, check the wheel, and run what each container
runs (its ENTRYPOINT + CMD and its HEALTHCHECK) as plain processes, since no Docker engine
runs here."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import tomllib
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


def test_hadolint_passes_on_every_dockerfile() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "*Dockerfile"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    dockerfiles = tracked or ["Dockerfile"]  # an exported tree without git still has the main one
    assert "Dockerfile" in dockerfiles
    result = subprocess.run([tool("hadolint"), *dockerfiles], cwd=ROOT, capture_output=True)
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
    # Each tier installs its extra's locked, hashed requirements, then the wheel alone.
    assert "COPY pyproject.toml uv.lock" in text and "for tier in gateway edge" in text
    assert text.count("--require-hashes -r /wheels/") == 2
    assert text.count('--no-deps "$(ls /wheels/factory_edge-*.whl)"') == 2
    # No per-architecture downloads: multi-arch base images and pip only.
    assert not re.search(r"amd64|x86_64|aarch64|arm64", text.split("\nFROM", 1)[1])


def test_wheel_holds_every_package_the_web_assets_and_the_tier_extras(
    project_wheel: Path,
) -> None:
    with zipfile.ZipFile(project_wheel) as zf:
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


def uv_lock_check(project: Path) -> subprocess.CompletedProcess[str]:
    # --offline: deciding whether the lock still satisfies pyproject.toml needs no index.
    return subprocess.run(
        [tool("uv"), "lock", "--check", "--offline"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_lock_matches_pyproject() -> None:
    done = uv_lock_check(ROOT)
    assert done.returncode == 0, f"run `make lock`:\n{done.stderr}"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('    "rich>=13",\n', '    "rich>=13",\n    "six>=1.16",\n'),  # a dependency added
        ('"fastapi>=0.110"', '"fastapi>=0.200"'),  # a range the locked version leaves
    ],
)
def test_a_pyproject_edit_without_make_lock_is_caught(tmp_path: Path, old: str, new: str) -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert old in text
    (tmp_path / "pyproject.toml").write_text(text.replace(old, new))
    (tmp_path / "uv.lock").write_bytes((ROOT / "uv.lock").read_bytes())
    assert uv_lock_check(tmp_path).returncode != 0


def locked(name: str) -> dict[str, object]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (package,) = [p for p in lock["package"] if p["name"] == name]
    return package


def test_the_lock_pins_what_the_tiers_rely_on() -> None:
    # The edge overrides an undocumented uvicorn internal (edge_node/app.py): one exact version.
    assert locked("uvicorn")["version"]
    # The Dockerfile installs the uv the lock pins, so `uv export` reads the lock format.
    assert f"ARG UV_VERSION={locked('uv')['version']}\n" in (ROOT / "Dockerfile").read_text()
    # A Raspberry Pi (64-bit Raspberry Pi OS) gets lgpio, gpiozero's pin factory there.
    gateway = locked("factory-edge")["optional-dependencies"]["gateway"]  # type: ignore[index]
    (lgpio,) = [d for d in gateway if d["name"] == "lgpio"]
    assert "platform_machine == 'aarch64'" in lgpio["marker"]
    assert "sys_platform == 'linux'" in lgpio["marker"]

"""What gateway_image/ ships for the OS and containers: compose file, entrypoint, units."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COMPOSE = ROOT / "gateway_image" / "docker-compose.yml"


def check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
    )


def test_compose_file_validates_against_the_compose_spec(tmp_path: Path) -> None:
    done = check_compose(COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = yaml.safe_load(COMPOSE.read_text())
    broken["services"]["plc"]["restart"] = ["always"]
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    assert check_compose(tmp_path / "broken.yml").returncode != 0


def gateway_config(tmp_path: Path) -> bytes:
    config = yaml.safe_load((ROOT / "examples" / "anodizing-gateway.yaml").read_text())
    config["mqtt"]["port"] = 9  # nothing listens: the gateway buffers and keeps trying
    config["connectors"] = config["connectors"][:1]
    config["connectors"][0]["port"] = 9
    return yaml.safe_dump(config, allow_unicode=True).encode()


def run_entrypoint(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["sh", str(ROOT / "gateway_image/os/container-entrypoint.sh"), *args],
        env={"PATH": f"{BIN}:/usr/bin:/bin", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_entrypoint_without_a_config_says_what_to_set(tmp_path: Path) -> None:
    process = run_entrypoint({"FACTORY_IDENTITY_DIR": str(tmp_path / "id")})
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 2
    assert b"set FACTORY_GATEWAY_CONFIG_B64" in out


def test_entrypoint_runs_the_gateway_with_identity_from_device_variables(tmp_path: Path) -> None:
    identity = tmp_path / "identity"
    data = tmp_path / "data"
    data.mkdir()
    env = {
        "FACTORY_IDENTITY_DIR": str(identity),
        "FACTORY_GATEWAY_CONFIG_B64": base64.b64encode(gateway_config(tmp_path)).decode(),
        "FACTORY_GATEWAY_CERT": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        "FACTORY_GATEWAY_KEY": "-----BEGIN PRIVATE KEY-----\nMC4C\n-----END PRIVATE KEY-----",
    }
    process = run_entrypoint(env, "--data-dir", str(data))
    try:
        deadline = time.monotonic() + 60
        healthy = False
        while time.monotonic() < deadline and process.poll() is None and not healthy:
            check = subprocess.run(
                [sys.executable, "-m", "gateway_image.firmware.heartbeat", str(data), "60"]
            )
            healthy = check.returncode == 0
            time.sleep(0.5)
        assert healthy, "the gateway never touched its heartbeat"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert (identity / "gateway.key").read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert (identity / "gateway.key").stat().st_mode & 0o777 == 0o600
    assert not (identity / "ca.crt").exists()  # unset variable: no file
    assert (identity / "gateway.yaml").read_bytes() == gateway_config(tmp_path)


@pytest.mark.parametrize("script", ["firstboot.sh", "container-entrypoint.sh"])
def test_os_scripts_pass_shellcheck(script: str) -> None:
    done = subprocess.run(
        [str(BIN / "shellcheck"), str(ROOT / "gateway_image" / "os" / script)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout
    assert os.access(ROOT / "gateway_image" / "os" / script, os.X_OK)

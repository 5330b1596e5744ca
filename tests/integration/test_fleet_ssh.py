"""The SSH backend against real sshd instances on loopback: uploads, host keys, deadlines."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from factory_common import wire
from fleet.backends.base import BackendError, Target
from fleet.backends.ssh import SshBackend, _Remote
from fleet.backends.ssh_upload import upload
from fleet.cli import app
from fleet.inventory import GatewayEntry, Inventory, load_inventory, save_gateway_entry
from tests.support.fleet import make_fleet_dir
from tests.support.ports import free_port
from tests.support.sshd import Sshd, write_keypair

IDS = ["gw-01", "gw-02"]


@pytest.fixture
def sshd_fleet(tmp_path: Path) -> Iterator[tuple[Inventory, dict[str, Sshd]]]:
    key = tmp_path / "fleet" / "keys" / "fleet_ssh"
    key.parent.mkdir(parents=True)
    public = write_keypair(key)
    servers = {gw: Sshd(tmp_path / gw, public).start() for gw in IDS}
    root = tmp_path / "fleet"
    ssh = {
        "user": os.environ.get("USER") or __import__("getpass").getuser(),
        "key": "keys/fleet_ssh",
        "connect_timeout_s": 3,
        "command_timeout_s": 5,
        "incoming_dir": str(tmp_path / "remote" / "incoming"),
        "agent_root": str(tmp_path / "remote" / "agent"),
        "logs_command": f"tail -n {{lines}} {tmp_path / 'remote' / 'gateway.log'}",
    }
    layout = make_fleet_dir(root, 1883, [], extra={"backends": {"ssh": ssh}})
    for gw, server in servers.items():
        save_gateway_entry(
            layout,
            GatewayEntry(
                id=gw, line="anodizing", address=server.address, host_key=server.host_public
            ),
        )
    (tmp_path / "remote").mkdir()
    yield load_inventory(layout), servers
    for server in servers.values():
        server.stop()


def artifact(inventory: Inventory, size: int = 1 << 20) -> Target:
    path = inventory.layout.releases_dir / "factory-edge-2.0.release.tar"
    path.write_bytes(os.urandom(size))
    return Target("release", "2.0", path, hashlib.sha256(path.read_bytes()).hexdigest())


def test_request_uploads_verifies_and_drops_the_request_for_the_agent(
    sshd_fleet: tuple[Inventory, dict[str, Sshd]], tmp_path: Path
) -> None:
    inventory, _ = sshd_fleet
    target = artifact(inventory)
    backend = SshBackend(inventory, "alice")
    backend.request(inventory.get("gw-01"), target, "r1/gw-01/release")
    uploaded = tmp_path / "remote" / "incoming" / target.path.name  # type: ignore[union-attr]
    assert hashlib.sha256(uploaded.read_bytes()).hexdigest() == target.sha256
    [spooled] = (tmp_path / "remote" / "agent" / "requests").glob("*.request.json")
    request = wire.decode(spooled.read_bytes(), wire.UpdateRequest)
    assert (request.id, request.release, request.artifact) == (
        "r1/gw-01/release",
        "2.0",
        str(uploaded),
    )
    assert request.sha256 == target.sha256 and request.issued_by == "alice"


def test_upload_resumes_a_partial_file_and_restarts_a_wrong_one(
    sshd_fleet: tuple[Inventory, dict[str, Sshd]], tmp_path: Path
) -> None:
    inventory, _ = sshd_fleet
    target = artifact(inventory)
    assert target.path is not None
    incoming = tmp_path / "remote" / "incoming"
    incoming.mkdir(parents=True)
    part = incoming / f"{target.path.name}.part"
    data = target.path.read_bytes()
    backend = SshBackend(inventory, "alice")
    conn = backend.connection(inventory.get("gw-01"))
    remote = _Remote(conn, 10)
    part.write_bytes(data[:300_000])  # a transfer broken after 300 kB
    assert upload(remote, target.path, str(incoming), target.sha256)[1] == len(data) - 300_000
    assert upload(remote, target.path, str(incoming), target.sha256)[1] == 0  # already there
    (incoming / target.path.name).unlink()
    part.write_bytes(b"x" * 1000)  # not a prefix of this file: start over
    assert upload(remote, target.path, str(incoming), target.sha256)[1] == len(data)
    assert (incoming / target.path.name).read_bytes() == data
    conn.close()


def test_a_wrong_or_missing_host_key_is_refused(
    sshd_fleet: tuple[Inventory, dict[str, Sshd]], tmp_path: Path
) -> None:
    inventory, servers = sshd_fleet
    impostor = inventory.get("gw-01").model_copy(update={"host_key": servers["gw-02"].host_public})
    backend = SshBackend(inventory, "alice")
    with pytest.raises(BackendError, match="host key does not match the inventory"):
        backend.run(impostor, "true")
    with pytest.raises(BackendError, match="never trusts a key on first use"):
        backend.run(impostor.model_copy(update={"host_key": None}), "true")


def test_exec_runs_everywhere_and_a_hung_gateway_fails_without_holding_the_wave(
    sshd_fleet: tuple[Inventory, dict[str, Sshd]],
) -> None:
    inventory, _ = sshd_fleet
    # A host that accepts the TCP connection and then says nothing (no SSH banner).
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    hung = GatewayEntry(
        id="gw-09",
        line="anodizing",
        address=f"127.0.0.1:{silent.getsockname()[1]}",
        host_key=inventory.get("gw-01").host_key,
    )
    closed = GatewayEntry(
        id="gw-08",
        line="anodizing",
        address=f"127.0.0.1:{free_port()}",
        host_key=inventory.get("gw-01").host_key,
    )
    save_gateway_entry(inventory.layout, hung)
    save_gateway_entry(inventory.layout, closed)
    result = CliRunner().invoke(
        app,
        [
            "exec",
            "line=anodizing",
            "--fleet-dir",
            str(inventory.layout.root),
            "--json",
            "--",
            "echo",
            "hello from $(hostname)",
        ],
    )
    silent.close()
    assert result.exit_code == 4, result.output  # every failure was a gateway out of reach
    rows = {r["gateway"]: r for r in map(json.loads, result.output.splitlines())}
    assert rows["gw-01"]["exit"] == 0 and rows["gw-01"]["stdout"].startswith("hello from")
    assert rows["gw-02"]["exit"] == 0
    assert rows["gw-09"]["exit"] is None
    assert "gateway gw-09 unreachable over SSH" in rows["gw-09"]["stderr"]
    assert rows["gw-08"]["exit"] is None and "unreachable over SSH" in rows["gw-08"]["stderr"]
    assert "fleet devices show gw-08" in rows["gw-08"]["stderr"]


def test_logs_and_ssh_commands(
    sshd_fleet: tuple[Inventory, dict[str, Sshd]], tmp_path: Path
) -> None:
    inventory, _ = sshd_fleet
    (tmp_path / "remote" / "gateway.log").write_text("".join(f"line {i}\n" for i in range(50)))
    root = str(inventory.layout.root)
    result = CliRunner().invoke(app, ["logs", "gw-02", "-n", "3", "--fleet-dir", root])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["line 47", "line 48", "line 49"]
    # `fleet ssh` hands over to OpenSSH with the inventory's key as the only known host.
    marker = tmp_path / "remote" / "via-openssh"
    ssh = ["ssh", "gw-01", "--fleet-dir", root, "--", "touch", str(marker)]
    assert CliRunner().invoke(app, ssh).exit_code == 0
    assert marker.exists()
    entry = yaml.safe_load(inventory.layout.gateway_file("gw-02").read_text())
    entry["host_key"] = inventory.get("gw-01").host_key
    inventory.layout.gateway_file("gw-02").write_text(yaml.safe_dump(entry))
    marker.unlink()
    refused = CliRunner().invoke(app, ["ssh", "gw-02", *ssh[2:]])
    assert refused.exit_code == 255  # OpenSSH: host key verification failed
    assert not marker.exists()

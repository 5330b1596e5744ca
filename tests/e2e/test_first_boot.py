"""A card made by `fleet image build` boots into an enrolled gateway whose readings reach an edge.

Everything a Pi would do on first boot runs here as processes against the card's own files:
the boot partition is read back from the image with mtools into a scratch root, its
`factory/firstboot.sh` runs there with the system Python (as on Raspberry Pi OS): it checks the
release's signature with openssl, installs the gateway offline into the update agent's slot A
and puts the identity in place. The installed gateway then runs as its systemd unit says,
against Mosquitto with the shipped TLS + ACL config and the fleet's CA, an edge node stores
its readings, and the fleet sees it as new until an operator accepts it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fleet.cli import app as fleet_app
from fleet.inventory import init_fleet_dir
from fleet.layout import FleetLayout
from provisioning.ca import Ca, init_ca, issue, write_cert, write_private
from provisioning.identity import NetworkSettings, provision
from provisioning.image.build import build
from provisioning.image.fat import FatPartition
from provisioning.image.mbr import read_partitions
from provisioning.image.payload import gateway_payload
from tests.fault.rig import gateway_yaml, received_ranges
from tests.support.broker import Mosquitto, secured_broker
from tests.support.pi_images import make_base_image
from tests.support.ports import free_port, wait_for_port
from tests.support.processes import console_script
from tests.support.releases import Releases
from tests.support.requirements import require_binary

# Two offline pip installs (the agent's, then slot A) on a loaded two-core machine.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

GW = "gw-fb"
PASSPHRASE = "first-boot-ca-passphrase"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHkFleetOpsKeyForTestsOnly0000000000000 ops@fleet"


def identity(ca: Ca, name: str, folder: Path, server: bool = False) -> tuple[Path, Path]:
    names = ["localhost", "127.0.0.1"] if server else None
    cert, key = issue(ca, name, 30, server_names=names) if server else issue(ca, name, 30)
    write_cert(folder / f"{name}.crt", cert)
    write_private(folder / f"{name}.key", key, None)
    return folder / f"{name}.crt", folder / f"{name}.key"


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for child in started:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()


def start(children: list[subprocess.Popen[bytes]], args: list[str], log: Path) -> None:
    with log.open("wb") as out:
        children.append(subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT))


def exec_start(unit: Path, root: Path) -> list[str]:
    """The unit's ExecStart, with its absolute paths moved into the scratch root."""
    lines = unit.read_text().splitlines()
    line = next(text for text in lines if text.startswith("ExecStart="))
    words = shlex.split(line.removeprefix("ExecStart="))
    return [f"{root}{w}" if w.startswith(("/opt/", "/var/", "/etc/")) else w for w in words]


def wait_until(check: object, what: str, within: float = 180.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_card_boots_into_an_enrolled_reporting_gateway(
    tmp_path: Path,
    releases: Releases,
    children: list[subprocess.Popen[bytes]],
    clientid_plugin: Path,
) -> None:
    require_binary("openssl", "apt-get install openssl")
    mosquitto = require_binary("mosquitto", "apt-get install mosquitto")
    scratch = tmp_path / "pi"  # the Pi's root file system
    device_pki = scratch / "etc" / "factory-gateway" / "pki"

    # The fleet: CA, broker identity, the fleet's and the edge's identities, a release.
    layout = FleetLayout(tmp_path / "fleet")
    init_fleet_dir(layout, "plant2")
    ca = init_ca(layout, PASSPHRASE)
    ids = tmp_path / "identities"
    ids.mkdir()
    broker_cert, broker_key = identity(ca, "localhost", ids, server=True)
    broker: Mosquitto = secured_broker(
        mosquitto,
        tmp_path / "broker",
        layout.ca_cert,
        broker_cert,
        broker_key,
        plugin=clientid_plugin,
    )
    broker.start()
    children.append(broker.process)  # type: ignore[arg-type]
    fleet_cert, fleet_key = identity(ca, "fleet", ids)
    tls = {"ca": str(layout.ca_cert), "cert": str(fleet_cert), "key": str(fleet_key)}
    layout.fleet_file.write_text(
        yaml.safe_dump({"name": "plant2", "broker": {"port": broker.port, "tls": tls}})
    )
    layout.releases_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(releases.base, layout.releases_dir / releases.base.name)
    layout.release_pub.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(releases.fleet.release_pub, layout.release_pub)
    layout.image_settings.write_text(yaml.safe_dump({"defaults": {"ssh_authorized_keys": [KEY]}}))

    # The line's engineer: the gateway's config (the simulated line, TLS to the broker).
    modbus = free_port()
    start(
        children,
        console_script("factory-line", "simulate", "--port", str(modbus), "--seed", "3"),
        tmp_path / "simulator.log",
    )
    wait_for_port(modbus, timeout=30)
    config = yaml.safe_load(gateway_yaml(broker.port, modbus, poll=0.2))
    config["gateway"].update(id=GW, board="rpi4")
    config["mqtt"]["tls"] = {
        "ca": str(device_pki / "ca.crt"),
        "cert": str(device_pki / "gateway.crt"),
        "key": str(device_pki / "gateway.key"),
    }
    config["buffer"]["path"] = "buffer.sqlite"
    layout.configs_dir.mkdir(parents=True, exist_ok=True)
    layout.gateway_config(GW).write_text(yaml.safe_dump(config, sort_keys=False))
    provision(layout, ca, GW, NetworkSettings(hostname=GW), broker=("127.0.0.1", broker.port))

    # The technician: the card, then first boot from the card's own files.
    base = make_base_image(tmp_path / "base.img", "cloud-init", 8)
    card = tmp_path / f"{GW}.img"
    build(base, card, gateway_payload(layout, GW))
    with card.open("rb") as image:
        boot = read_partitions(image.read(512))[0]
    FatPartition(card, boot.start).extract_all(scratch / "boot" / "firmware")
    payload = scratch / "boot" / "firmware" / "factory"
    log = tmp_path / "firstboot.log"
    with log.open("wb") as out:
        first_boot = subprocess.run(
            ["bash", str(payload / "firstboot.sh")],
            env={
                **os.environ,
                "FACTORY_ROOT": str(scratch),
                "FACTORY_PAYLOAD": str(payload),
                "FACTORY_PYTHON": "/usr/bin/python3",  # the system Python, as on the Pi
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    assert first_boot.returncode == 0, log.read_text()

    opt = scratch / "opt" / "factory-gateway"
    assert (opt / "current" / "bin" / "gateway").exists()
    assert (device_pki / "gateway.key").stat().st_mode & 0o777 == 0o600
    assert not (payload / "gateway.key").exists()  # the key left the card's FAT partition
    units = scratch / "etc" / "systemd" / "system"
    assert sorted(p.name for p in units.glob("factory-*.service")) == [
        "factory-gateway-agent.service",
        "factory-gateway.service",
    ]
    analyze = shutil.which("systemd-analyze")
    if analyze:
        shutil.copytree("/usr/lib/systemd/system", scratch / "usr/lib/systemd/system")
        verify = subprocess.run(
            [
                analyze,
                "verify",
                f"--root={scratch}",
                "--man=no",
                *(str(u) for u in sorted(units.glob("factory-*.service"))),
            ],
            capture_output=True,
            text=True,
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr

    # The edge node, then the gateway started as its unit says.
    edge_cert, edge_key = identity(ca, "edge-anodizing", ids)
    edge_dir = tmp_path / "edge"
    edge_dir.mkdir()
    edge_tls = {"ca": str(layout.ca_cert), "cert": str(edge_cert), "key": str(edge_key)}
    (edge_dir / "edge.yaml").write_text(
        yaml.safe_dump(
            {
                "edge": {"id": "edge-anodizing"},
                "mqtt": {"port": broker.port, "client_id": "edge-anodizing", "tls": edge_tls},
                "store": {"path": "edge.sqlite", "flush_interval": 0.1},
                "http": {"host": "127.0.0.1", "port": free_port()},
                "auth": {"enabled": False},
            }
        )
    )
    start(
        children,
        console_script(
            "edge-node", "run", str(edge_dir / "edge.yaml"), "--data-dir", str(edge_dir)
        ),
        tmp_path / "edge.log",
    )
    (scratch / "var" / "lib" / "factory-gateway").mkdir(parents=True, exist_ok=True)
    start(children, exec_start(units / "factory-gateway.service", scratch), tmp_path / "gw.log")

    def readings_arrived() -> bool:
        return any(hi - lo >= 50 for lo, hi in received_ranges(edge_dir / "edge.sqlite", GW))

    wait_until(readings_arrived, "the gateway's readings at the edge")

    # Enrollment: heard on the broker, new until accepted, then a fleet member.
    runner = CliRunner()
    listed = runner.invoke(fleet_app, ["status", "--json", "-C", str(layout.root)])
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    assert rows[GW]["flags"] == ["new"] and not rows[GW]["known"], listed.output
    accepted = runner.invoke(fleet_app, ["devices", "accept", GW, "-C", str(layout.root)])
    assert accepted.exit_code == 0, accepted.output
    listed = runner.invoke(fleet_app, ["status", "--json", "-C", str(layout.root)])
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    assert rows[GW]["known"] and "new" not in rows[GW]["flags"], listed.output
    assert rows[GW]["version"] == "1.0.0"  # the release the card installed

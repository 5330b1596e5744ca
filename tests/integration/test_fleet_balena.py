"""The balena backend against a stand-in of balenaCloud's API, with statuses over real Mosquitto."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from factory_common import wire
from fleet.backends.balena import CONFIG_ENV, CONFIG_TEXT_ENV, BalenaBackend
from fleet.backends.base import Ask, Target
from fleet.cli import app
from fleet.inventory import GatewayEntry, load_inventory, save_gateway_entry
from fleet.layout import FleetLayout
from fleet.rollout.targets import history_file
from tests.support.balena_standin import BalenaStandIn, Row
from tests.support.broker import Mosquitto
from tests.support.fleet import make_fleet_dir

IDS = [f"gw-{i:02d}" for i in range(1, 6)]
BAD = "6.6"  # a release whose containers start but never read their devices


class Devices:
    """What balena's supervisors and the gateways on those devices would do and say."""

    def __init__(self, standin: BalenaStandIn, port: int) -> None:
        self.standin = standin
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="balena-devices")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.seq: dict[str, int] = {}
        self.lock = threading.Lock()

    def report(self, device: Row) -> None:
        release = next(
            r
            for r in self.standin.tables["release"]
            if r["id"] == device["is_running__release"]["__id"]
        )
        gw, version = device["device_name"], release["raw_version"]
        with self.lock:
            self.seq[gw] = self.seq.get(gw, 0) + (0 if version == BAD else 10)
        state = "down" if version == BAD else "up"
        status = wire.GatewayStatus(
            v=wire.WIRE_VERSION,
            gateway=gw,
            online=True,
            ts=wire.now_ns(),
            version=version,
            connectors=[wire.ConnectorHealth("press", "modbus_tcp", state)],
        )
        stored = wire.Stored(
            v=wire.WIRE_VERSION,
            gateway=gw,
            edge="e1",
            ts=wire.now_ns(),
            ranges=[(1, self.seq[gw] or 1)],
        )
        for topic, payload in (
            (wire.status_topic(gw), wire.encode(status)),
            (wire.stored_topic(gw), wire.encode(stored)),
        ):
            self.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)

    def on_patch(self, table: str, rows: list[Row], body: Row) -> None:
        # The supervisor downloads and starts the pinned release.
        for device in rows:
            if "is_pinned_on__release" in body:
                device["is_running__release"] = {"__id": body["is_pinned_on__release"]}
                self.report(device)


@pytest.fixture
def balena(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FleetLayout, BalenaStandIn]]:
    standin = BalenaStandIn().start()
    standin.add("application", slug="acme/anodizing")
    for version in ("1.0", "2.0", BAD):
        standin.add(
            "release",
            commit=f"{version.replace('.', '')}" * 10,
            raw_version=version,
            status="success",
            belongs_to__application={"__id": 1},
        )
    data = tmp_path / "balena-data"
    standin.write_settings(data)
    layout = make_fleet_dir(
        tmp_path / "fleet",
        mosquitto.port,
        [],
        extra={"backends": {"balena": {"fleet": "acme/anodizing", "data_directory": str(data)}}},
    )
    devices = Devices(standin, mosquitto.port)
    for i, gw in enumerate(IDS):
        uuid = f"{i + 1:032x}"
        row = standin.add(
            "device",
            uuid=uuid,
            device_name=gw,
            is_online=True,
            belongs_to__application={"__id": 1},
            is_pinned_on__release={"__id": 1},
            is_running__release={"__id": 1},
        )
        save_gateway_entry(
            layout,
            GatewayEntry(
                id=gw, line="anodizing", backend="balena", address=uuid, current_release="1.0"
            ),
        )
        devices.report(row)
    standin.on_patch = devices.on_patch
    monkeypatch.setenv("BALENA_API_KEY", "test-api-key")
    yield layout, standin
    devices.client.loop_stop()
    standin.stop()


def start(layout: FleetLayout, release: str, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        [
            "rollout",
            "start",
            release,
            "--to",
            "line=anodizing",
            "--wave-size",
            "2",
            *extra,
            "-C",
            str(layout.root),
        ],
    )
    return result.exit_code, result.output


def pins(standin: BalenaStandIn) -> list[tuple[list[int], int]]:
    return [
        (ids, body["is_pinned_on__release"])
        for table, ids, body in standin.patches
        if table == "device"
    ]


def test_waves_pin_the_right_devices_in_order(balena: tuple[FleetLayout, BalenaStandIn]) -> None:
    layout, standin = balena
    code, output = start(layout, "2.0")
    assert code == 0, output
    # Canary alone, then waves of two, each one batched call; release 2 is "2.0".
    assert pins(standin) == [([1], 2), ([2, 3], 2), ([4, 5], 2)]
    assert all(d["is_pinned_on__release"] == {"__id": 2} for d in standin.tables["device"])


def test_a_failing_wave_repins_the_last_good_release(
    balena: tuple[FleetLayout, BalenaStandIn],
) -> None:
    layout, standin = balena
    assert start(layout, "2.0")[0] == 0
    code, output = start(layout, BAD, "--canary", "1", "--gate-timeout", "2")
    assert code == 1, output
    # 6.6 (release 3) on the canary, then back to the last good release, 2.0 (release 2).
    assert pins(standin)[3:] == [([1], 3), ([1], 2)]
    assert standin.device(f"{1:032x}")["is_pinned_on__release"] == {"__id": 2}
    assert all(d["is_pinned_on__release"] == {"__id": 2} for d in standin.tables["device"][1:])


def test_an_unknown_release_fails_the_canary_with_advice(
    balena: tuple[FleetLayout, BalenaStandIn],
) -> None:
    layout, standin = balena
    code, output = start(layout, "9.9")
    assert code == 1
    assert "has no successful release 9.9" in output.replace("\n", " ")
    # Nothing was pinned to it; the canary is pinned again to what it ran (harmless, certain).
    assert pins(standin) == [([1], 1)]


def test_status_probe_merges_what_balena_knows(balena: tuple[FleetLayout, BalenaStandIn]) -> None:
    layout, standin = balena
    standin.device(f"{3:032x}")["is_online"] = False
    result = CliRunner().invoke(app, ["status", "--probe", "--json", "-C", str(layout.root)])
    rows = {r["id"]: r for r in json.loads(result.stdout)}
    assert rows["gw-03"]["flags"] == ["backend: balena reports the device offline"]
    assert rows["gw-01"]["flags"] == []


def test_device_tags_become_labels(balena: tuple[FleetLayout, BalenaStandIn]) -> None:
    layout, standin = balena
    standin.add(
        "device",
        uuid=f"{9:032x}",
        device_name="gw-09",
        is_online=True,
        belongs_to__application={"__id": 1},
        is_running__release={"__id": 1},
    )
    standin.add(
        "device",
        uuid=f"{10:032x}",
        device_name="not a gateway id",
        belongs_to__application={"__id": 1},
        is_running__release={"__id": 1},
    )
    for device, key, value in ((6, "role", "oven"), (6, "line", "anodizing"), (1, "role", "press")):
        standin.add("device_tag", device={"__id": device}, tag_key=key, value=value)
    root = ["-C", str(layout.root)]
    result = CliRunner().invoke(app, ["devices", "sync-balena", *root])
    assert result.exit_code == 0, result.output
    assert "skipped not a gateway id: Value error, invalid gateway id" in result.output
    listed = CliRunner().invoke(app, ["devices", "list", "role", "--json", *root])
    rows = {r["id"]: r for r in json.loads(listed.stdout)}
    assert rows["gw-01"]["labels"] == {"role": "press"}
    assert rows["gw-01"]["current_release"] == "1.0"  # what the inventory knew stays
    assert (rows["gw-09"]["labels"], rows["gw-09"]["line"]) == ({"role": "oven"}, "anodizing")
    assert rows["gw-09"]["address"] == f"{9:032x}" and rows["gw-09"]["backend"] == "balena"


def test_a_config_push_reaches_the_container_through_device_variables(
    balena: tuple[FleetLayout, BalenaStandIn], tmp_path: Path
) -> None:
    """balena carries the config as device variables; the gateway container's entrypoint
    turns them back into the file the gateway runs with."""
    layout, standin = balena
    inventory = load_inventory(layout)
    entry = inventory.get(IDS[0])
    config = f"gateway: {{id: {entry.id}, board: rpi4}}\nmqtt: {{host: 127.0.0.1}}\n"
    history_file(layout, entry.id, "ab12").parent.mkdir(parents=True, exist_ok=True)
    history_file(layout, entry.id, "ab12").write_text(config)
    errors = BalenaBackend(inventory).request_many([Ask(entry, Target("config", "ab12"), "r1")])
    assert errors == {entry.id: ""}

    device_id = standin.device(entry.address)["id"]
    variables = {
        row["name"]: row["value"]
        for row in standin.tables["device_environment_variable"]
        if row["device"] == {"__id": device_id}
    }
    assert variables[CONFIG_ENV] == "ab12"
    assert base64.b64decode(variables[CONFIG_TEXT_ENV]).decode() == config

    identity = tmp_path / "identity"
    entrypoint = Path(__file__).resolve().parents[2] / "gateway_image/os/container-entrypoint.sh"
    done = subprocess.run(
        ["sh", str(entrypoint), "--help"],  # the gateway prints its usage and exits
        env={
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "FACTORY_IDENTITY_DIR": str(identity),
            CONFIG_TEXT_ENV: variables[CONFIG_TEXT_ENV],
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (identity / "gateway.yaml").read_text() == config

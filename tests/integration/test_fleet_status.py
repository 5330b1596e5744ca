"""`fleet status` over real Mosquitto: retained statuses, flags, enrollment of new gateways."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml
from cryptography import x509
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from factory_common import wire
from fleet.cli import app
from fleet.inventory import load_inventory, save_gateway_entry
from fleet.layout import FleetLayout
from tests.support.broker import Mosquitto
from tests.support.fleet import make_fleet_dir
from tests.support.pki import TestCA


def publish_retained(port: int, messages: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher")
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(t, p, qos=1, retain=True) for t, p in messages]
    for info in infos:
        info.wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def status(gw: str, **fields: object) -> tuple[str, bytes]:
    values: dict[str, object] = {"online": True, "version": "2.0", **fields}
    message = wire.GatewayStatus(v=wire.WIRE_VERSION, gateway=gw, ts=wire.now_ns(), **values)  # type: ignore[arg-type]
    return wire.status_topic(gw), wire.encode(message)


def expiry(cert: Path) -> str:
    return f"{x509.load_pem_x509_certificate(cert.read_bytes()).not_valid_after_utc:%Y-%m-%d}"


def fleet_status(layout: FleetLayout, *args: str) -> tuple[int, dict[str, dict]]:
    result = CliRunner().invoke(app, ["status", *args, "--json", "-C", str(layout.root)])
    assert result.stdout.startswith("["), result.output  # nothing but JSON on stdout
    return result.exit_code, {r["id"]: r for r in json.loads(result.stdout)}


def test_status_flags_what_needs_a_look_and_shows_new_gateways(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    layout = make_fleet_dir(
        tmp_path / "fleet", mosquitto.port, ["gw-01", "gw-02", "gw-03", "gw-04"]
    )
    inventory = load_inventory(layout)
    for gw in ("gw-01", "gw-02"):
        save_gateway_entry(layout, inventory.get(gw).model_copy(update={"desired_release": "2.0"}))
    down = wire.ConnectorHealth("press", "modbus_tcp", "down")
    publish_retained(
        mosquitto.port,
        [
            status("gw-01", connectors=[wire.ConnectorHealth("press", "modbus_tcp", "up")]),
            status("gw-02", online=False, version="1.0"),  # its last will, on the old release
            status("gw-03", dropped={"disk_budget": 12}, buffer_depth=5000, connectors=[down]),
            status("gw-99"),  # announces itself; nobody has accepted it yet
            (
                wire.stored_topic("gw-01"),
                wire.encode(
                    wire.Stored(
                        v=wire.WIRE_VERSION, gateway="gw-01", edge="e1", ts=1, ranges=[(1, 500)]
                    )
                ),
            ),
        ],
    )
    code, rows = fleet_status(layout)
    assert code == 1  # something is offline or losing data
    assert rows["gw-01"]["flags"] == [] and rows["gw-01"]["stored_seq"] == 500
    assert rows["gw-01"]["connectors"] == "1/1"
    assert rows["gw-02"]["flags"] == ["offline", "behind"]
    assert rows["gw-03"]["flags"] == ["losing data", "backlog", "connector down"]
    assert rows["gw-04"]["flags"] == ["no status"]
    assert rows["gw-99"]["flags"] == ["new"] and not rows["gw-99"]["known"]
    # A selector narrows to inventory gateways that match.
    _, rows = fleet_status(layout, "id in (gw-01,gw-03)")
    assert sorted(rows) == ["gw-01", "gw-03"]


def test_a_new_gateway_is_accepted_by_hand_or_automatically(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    layout = make_fleet_dir(tmp_path / "fleet", mosquitto.port, ["gw-01"])
    publish_retained(mosquitto.port, [status("gw-01"), status("gw-50"), status("gw-51")])
    root = ["-C", str(layout.root)]
    refused = CliRunner().invoke(app, ["devices", "accept", "gw-50", *root])
    assert refused.exit_code == 3 and "no certificate on file" in refused.output
    # The fleet's CA signed gw-51's certificate: with auto_accept, status enrolls it.
    ca = TestCA(tmp_path / "ca")
    layout.pki_dir.joinpath("gateways").mkdir(parents=True)
    shutil.copyfile(ca.cert_path, layout.ca_cert)
    shutil.copyfile(ca.issue("gw-51").cert, layout.gateway_cert("gw-51"))
    shutil.copyfile(ca.issue("other").cert, layout.gateway_cert("gw-50"))  # wrong CN
    config = yaml.safe_load(layout.fleet_file.read_text())
    layout.fleet_file.write_text(yaml.safe_dump({**config, "enrollment": {"auto_accept": True}}))
    _, rows = fleet_status(layout)
    # ...and, its certificate (a one-day test certificate) running out, says so.
    assert rows["gw-51"]["known"]
    assert rows["gw-51"]["flags"] == [f"certificate expires {expiry(layout.gateway_cert('gw-51'))}"]
    assert rows["gw-50"]["flags"] == ["new"]
    assert load_inventory(layout).get("gw-51").labels == {"enrolled": "auto"}
    accepted = CliRunner().invoke(
        app, ["devices", "accept", "gw-50", "--force", "--line", "anodizing", *root]
    )
    assert accepted.exit_code == 0, accepted.output
    assert load_inventory(layout).get("gw-50").line == "anodizing"
    audit = CliRunner().invoke(app, ["audit", "gw-50", "--json", *root])
    assert [e["action"] for e in json.loads(audit.output)] == ["device accept"]

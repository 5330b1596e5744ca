"""Gateway identities against the shipped Mosquitto config: the fleet CA's certificates get in;
another CA's, an expired and a revoked one do not. Also the CLI path and expiry warnings."""

from __future__ import annotations

import datetime as dt
import queue
import ssl
import subprocess
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from factory_common import wire
from fleet.layout import FleetLayout
from provisioning import ca as pki
from provisioning.expiry import expiry_warnings
from provisioning.identity import NetworkSettings, ProvisionError, provision, revoke
from provisioning.retained import clear_retained
from tests.support.broker import Mosquitto, secured_broker
from tests.support.pki import Identity, TestCA
from tests.support.processes import console_script
from tests.support.requirements import require_binary

PASSPHRASE = "ca-passphrase-for-tests"


@pytest.fixture
def fleet(tmp_path: Path) -> tuple[FleetLayout, pki.Ca]:
    layout = FleetLayout(tmp_path / "fleet")
    return layout, pki.init_ca(layout, PASSPHRASE)


def broker_for(layout: FleetLayout, authority: pki.Ca, workdir: Path, plugin: Path) -> Mosquitto:
    binary = require_binary("mosquitto", "run `sudo apt-get install mosquitto`")
    cert, key = pki.issue(authority, "localhost", 30, server_names=["localhost", "127.0.0.1"])
    pki.write_cert(workdir / "broker.crt", cert)
    pki.write_private(workdir / "broker.key", key, None)
    return secured_broker(
        binary,
        workdir / "broker",
        layout.ca_cert,
        workdir / "broker.crt",
        workdir / "broker.key",
        plugin=plugin,
        crl=layout.crl,
    )


def try_connect(port: int, ca: Path, cert: Path, key: Path, client_id: str) -> bool:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.tls_set(
        ca_certs=str(ca), certfile=str(cert), keyfile=str(key), cert_reqs=ssl.CERT_REQUIRED
    )
    result: queue.Queue[bool] = queue.Queue()
    client.on_connect = lambda _c, _u, _f, rc, _p: result.put(not rc.is_failure)
    client.on_connect_fail = lambda _c, _u: result.put(False)
    client.on_disconnect = lambda _c, _u, _f, _rc, _p: result.put(False)
    try:
        client.connect("127.0.0.1", port, keepalive=10)
    except (ssl.SSLError, OSError):
        return False
    client.loop_start()
    try:
        return result.get(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_the_shipped_broker_admits_only_valid_fleet_identities(
    fleet: tuple[FleetLayout, pki.Ca], tmp_path: Path, clientid_plugin: Path
) -> None:
    layout, authority = fleet
    net = NetworkSettings(hostname="gw")
    provision(layout, authority, "gw-good", net)
    provision(layout, authority, "gw-gone", net)
    revoke(layout, authority, "gw-gone")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    expired, expired_key = pki.issue(authority, "gw-old", days=1, not_before=past)
    pki.write_cert(tmp_path / "old.crt", expired)
    pki.write_private(tmp_path / "old.key", expired_key, None)
    stranger = TestCA(tmp_path / "stranger").issue("gw-good")
    broker = broker_for(layout, authority, tmp_path, clientid_plugin)
    broker.start()
    try:

        def admits(cert: Path, key: Path, who: str) -> bool:
            return try_connect(broker.port, layout.ca_cert, cert, key, who)

        gateway = Identity(layout.gateway_cert("gw-good"), layout.gateway_key("gw-good"))
        assert admits(gateway.cert, gateway.key, "gw-good")
        assert not admits(stranger.cert, stranger.key, "gw-stranger")
        assert not admits(tmp_path / "old.crt", tmp_path / "old.key", "gw-old")
        gone = Identity(layout.gateway_cert("gw-gone"), layout.gateway_key("gw-gone"))
        assert not admits(gone.cert, gone.key, "gw-gone")
    finally:
        broker.stop()


def test_revoke_clears_the_gateways_retained_messages(
    fleet: tuple[FleetLayout, pki.Ca], tmp_path: Path, clientid_plugin: Path
) -> None:
    layout, authority = fleet
    provision(layout, authority, "gw-1", NetworkSettings(hostname="gw-1"))
    broker = broker_for(layout, authority, tmp_path, clientid_plugin)
    broker.start()
    try:
        cert, key = layout.gateway_cert("gw-1"), layout.gateway_key("gw-1")
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-1", protocol=mqtt.MQTTv5)
        client.tls_set(ca_certs=str(layout.ca_cert), certfile=str(cert), keyfile=str(key))
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        client.publish(wire.status_topic("gw-1"), b'{"v":1}', qos=1, retain=True).wait_for_publish(
            10
        )
        client.disconnect()
        client.loop_stop()
        assert retained(broker, layout, authority, wire.status_topic("gw-1")) == b'{"v":1}'
        clear_retained(authority, "127.0.0.1", broker.port, "gw-1")
        assert retained(broker, layout, authority, wire.status_topic("gw-1")) is None
    finally:
        broker.stop()


def retained(broker: Mosquitto, layout: FleetLayout, authority: pki.Ca, topic: str) -> bytes | None:
    """What a fresh subscriber with the edge's identity gets for the topic (None: nothing)."""
    cert, key = pki.issue(authority, "edge-anodizing", 1)
    folder = broker.workdir
    pki.write_cert(folder / "edge.crt", cert)
    pki.write_private(folder / "edge.key", key, None)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="edge-anodizing", protocol=mqtt.MQTTv5
    )
    client.tls_set(
        ca_certs=str(layout.ca_cert),
        certfile=str(folder / "edge.crt"),
        keyfile=str(folder / "edge.key"),
    )
    got: queue.Queue[bytes] = queue.Queue()
    granted: queue.Queue[list[ReasonCode]] = queue.Queue()
    client.on_message = lambda _c, _u, m: got.put(m.payload)
    client.on_subscribe = lambda _c, _u, _m, codes, _p: granted.put(codes)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    client.subscribe(topic, qos=1)
    granted.get(timeout=10)
    # Mosquitto sends a subscription's retained message right after its SUBACK, in order on
    # this connection: once a second SUBACK is back, "nothing arrived" is a real answer.
    client.subscribe(f"{topic}/none", qos=1)
    granted.get(timeout=10)
    try:
        return got.get_nowait() or None
    except queue.Empty:
        return None
    finally:
        client.disconnect()
        client.loop_stop()


def test_provision_refuses_a_config_with_a_wiring_mistake(
    fleet: tuple[FleetLayout, pki.Ca],
) -> None:
    layout, authority = fleet
    layout.configs_dir.mkdir(parents=True)
    config = {"gateway": {"id": "gw-2", "board": "no-such-board"}}
    layout.gateway_config("gw-2").write_text(yaml.safe_dump(config))
    with pytest.raises(ProvisionError, match=r"gw-2\.yaml"):
        provision(layout, authority, "gw-2", NetworkSettings(hostname="gw-2"))
    assert not layout.gateway_cert("gw-2").exists()


def test_expiry_warnings_name_what_to_do(fleet: tuple[FleetLayout, pki.Ca]) -> None:
    layout, authority = fleet
    provision(layout, authority, "gw-soon", NetworkSettings(hostname="x"), days=10)
    provision(layout, authority, "gw-later", NetworkSettings(hostname="y"), days=400)
    warnings = expiry_warnings(layout)
    assert [w.gateway for w in warnings] == ["gw-soon"]
    assert "fleet provision gw-soon --renew" in warnings[0].message()
    late = dt.datetime.now(dt.UTC) + dt.timedelta(days=380)
    assert {w.what for w in expiry_warnings(layout, now=late)} >= {
        "CRL",
        "gateway gw-soon certificate",
    }


def test_cli_ca_init_provision_and_revoke(tmp_path: Path) -> None:
    env_file = tmp_path / "pass"
    env_file.write_text(PASSPHRASE)
    fleet_dir = str(tmp_path / "fleet")

    def fleet_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            console_script(
                "fleet", *args, "--fleet-dir", fleet_dir, "--passphrase-file", str(env_file)
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert fleet_cli("ca", "init").returncode == 0
    made = fleet_cli(
        "provision", "gw-9", "--broker", "10.0.0.5:8883", "--timezone", "Europe/Berlin"
    )
    assert made.returncode == 0, made.stdout + made.stderr
    again = fleet_cli("provision", "gw-9")
    assert again.returncode == 3 and "--renew" in again.stderr  # refused
    config = yaml.safe_load((tmp_path / "fleet" / "configs" / "gw-9.yaml").read_text())
    assert config["mqtt"]["host"] == "10.0.0.5"
    network = yaml.safe_load((tmp_path / "fleet" / "configs" / "gw-9.network.yaml").read_text())
    assert network["timezone"] == "Europe/Berlin"
    gone = fleet_cli("revoke", "gw-9")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    crl = pki.read_crl(FleetLayout(Path(fleet_dir)))
    assert len(crl) == 1

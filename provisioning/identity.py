"""One identity per gateway: `provision` makes its key, certificate and checked config; `revoke`
puts its certificate on the CRL.

The certificate's CN is the gateway id: the broker takes it as the MQTT username and admits
it only under the client ids `<id>` and `<id>:<suffix>` (deploy/mosquitto/clientid-binding), so
the ACL, the sessions, the topics and the inventory all key on the same id.
The gateway's config is validated with the gateway's own models and wiring checks before
anything is issued, and its network settings are recorded for the image build.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml
from cryptography import x509
from pydantic import Field

from factory_common.config import ConfigError, StrictModel, load_yaml_model
from factory_common.errors import FleetError
from factory_common.wire import WireError, check_id
from fleet.layout import FleetLayout
from gateway_image.firmware.config import GatewayConfig, load_gateway_config
from provisioning.ca import Ca, issue, now, read_crl, write_cert, write_crl, write_private

GATEWAY_DAYS = 825  # the longest leaf lifetime browsers ever accepted; renew well before
# Where the image build puts the identity on the gateway (the config's mqtt.tls points here).
DEVICE_PKI = Path("/etc/factory-gateway/pki")


class ProvisionError(FleetError, ValueError):
    """A gateway that cannot be provisioned as asked; the message says what to fix."""


class Wifi(StrictModel):
    ssid: str = Field(min_length=1, max_length=32)
    psk: str = Field(min_length=8, max_length=63)  # WPA2 passphrase length limits
    country: str = Field(default="DE", pattern=r"^[A-Z]{2}$")  # regulatory domain


class NetworkSettings(StrictModel):
    """What the image build writes for first boot (hostname, Wi-Fi, NTP, time zone)."""

    hostname: str
    timezone: str = "UTC"
    ntp: list[str] = ["pool.ntp.org"]
    wifi: Wifi | None = None
    # Static address in CIDR form on eth0 (e.g. 10.0.4.21/24); DHCP when empty.
    address: str = ""
    gateway4: str = ""
    dns: list[str] = []


def network_file(layout: FleetLayout, gateway_id: str) -> Path:
    return layout.configs_dir / f"{gateway_id}.network.yaml"


def starter_config(gateway_id: str, broker_host: str, broker_port: int) -> dict[str, object]:
    """A config for a gateway nobody has described yet: identity and broker, no connectors."""
    return {
        "gateway": {"id": gateway_id},
        "mqtt": {
            "host": broker_host,
            "port": broker_port,
            "tls": {
                "ca": str(DEVICE_PKI / "ca.crt"),
                "cert": str(DEVICE_PKI / "gateway.crt"),
                "key": str(DEVICE_PKI / "gateway.key"),
            },
        },
    }


def provision(
    layout: FleetLayout,
    ca: Ca,
    gateway_id: str,
    network: NetworkSettings,
    *,
    days: int = GATEWAY_DAYS,
    broker: tuple[str, int] = ("edge.local", 8883),
    renew: bool = False,
) -> x509.Certificate:
    """Issue the gateway's key and certificate after its config passes the gateway's checks."""
    try:
        check_id(gateway_id)
    except WireError as exc:
        raise ProvisionError(str(exc)) from None
    if layout.gateway_cert(gateway_id).exists() and not renew:
        raise ProvisionError(
            f"{gateway_id} is already provisioned ({layout.gateway_cert(gateway_id)}): pass "
            "--renew for a new certificate (then revoke the old one if it was exposed)"
        )
    config = _checked_config(layout, gateway_id, broker)
    if config.gateway.id != gateway_id:
        raise ProvisionError(
            f"{layout.gateway_config(gateway_id)}: gateway.id is {config.gateway.id!r}, "
            f"expected {gateway_id!r}: the certificate's CN must be the gateway id"
        )
    cert, key = issue(ca, gateway_id, days)
    write_private(layout.gateway_key(gateway_id), key, None)
    write_cert(layout.gateway_cert(gateway_id), cert)
    path = network_file(layout, gateway_id)
    path.write_text(yaml.safe_dump(network.model_dump(mode="json"), sort_keys=False))
    return cert


def _checked_config(layout: FleetLayout, gateway_id: str, broker: tuple[str, int]) -> GatewayConfig:
    path = layout.gateway_config(gateway_id)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(starter_config(gateway_id, *broker), sort_keys=False))
    try:
        return load_gateway_config(path)
    except ConfigError as exc:
        raise ProvisionError(f"{exc}\nfix the config, then run `fleet provision` again") from None


def load_network(layout: FleetLayout, gateway_id: str) -> NetworkSettings:
    return load_yaml_model(network_file(layout, gateway_id), NetworkSettings)


def revoke(layout: FleetLayout, ca: Ca, gateway_id: str) -> x509.Certificate:
    """Add the gateway's certificate to the CRL (the broker refuses it once it reloads)."""
    path = layout.gateway_cert(gateway_id)
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise ProvisionError(
            f"no certificate for {gateway_id} at {path}: nothing to revoke"
        ) from None
    revoked = read_crl(layout)
    if all(entry.serial_number != cert.serial_number for entry in revoked):
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(now())
            .build()
        )
        revoked.append(entry)
    write_crl(layout, ca, revoked)
    return cert


def revoked_serials(layout: FleetLayout) -> set[int]:
    return {entry.serial_number for entry in read_crl(layout)}


def expires(cert: x509.Certificate) -> dt.datetime:
    return cert.not_valid_after_utc

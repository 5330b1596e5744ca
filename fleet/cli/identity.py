"""`fleet ca init|crl`, `fleet provision ID`, `fleet revoke ID`: one identity per gateway."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from factory_common.config import ConfigError
from fleet.cli.common import Exit, FleetDir, fail, layout_of
from fleet.layout import FleetLayout
from provisioning import ca as pki
from provisioning.identity import NetworkSettings, ProvisionError, Wifi, provision, revoke
from provisioning.retained import clear_retained

ca_app = typer.Typer(help="The fleet's certificate authority.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)
PASSPHRASE_ENV = "FLEET_CA_PASSPHRASE"

PassFile = Annotated[
    Path | None,
    typer.Option("--passphrase-file", help=f"CA passphrase (else ${PASSPHRASE_ENV}, else asked)."),
]


def _passphrase(file: Path | None, confirm: bool = False) -> str:
    if file is not None:
        return file.read_text().strip()
    if os.environ.get(PASSPHRASE_ENV):
        return os.environ[PASSPHRASE_ENV]
    return str(typer.prompt("CA passphrase", hide_input=True, confirmation_prompt=confirm))


def _ca(layout: FleetLayout, passphrase_file: Path | None) -> pki.Ca:
    try:
        return pki.load_ca(layout, _passphrase(passphrase_file))
    except pki.CaError as exc:
        fail(str(exc), Exit.REFUSED)


@ca_app.command("init")
def ca_init(
    fleet_dir: FleetDir = None,
    name: Annotated[str, typer.Option(help="The CA's common name.")] = "factory-edge-fleet-ca",
    passphrase_file: PassFile = None,
) -> None:
    """Create the CA (key encrypted with a passphrase; keep it on this machine) and its CRL."""
    layout = layout_of(fleet_dir)
    try:
        made = pki.init_ca(layout, _passphrase(passphrase_file, confirm=True), name)
    except pki.CaError as exc:
        fail(str(exc), Exit.REFUSED)
    console.print(f"CA {name} until {made.cert.not_valid_after_utc:%Y-%m-%d}: {layout.ca_cert}")
    console.print(f"the broker loads {layout.crl} as its crlfile")


@ca_app.command("crl")
def ca_crl(fleet_dir: FleetDir = None, passphrase_file: PassFile = None) -> None:
    """Re-sign the CRL (it is valid for a year) with the same revocations."""
    layout = layout_of(fleet_dir)
    authority = _ca(layout, passphrase_file)
    pki.write_crl(layout, authority, pki.read_crl(layout))
    console.print(f"{layout.crl} re-signed: copy it to the broker and reload it")


def provision_command(
    gateway_id: str,
    hostname: Annotated[str | None, typer.Option(help="Default: the gateway id.")] = None,
    wifi_ssid: Annotated[str | None, typer.Option(help="Wi-Fi network (else wired only).")] = None,
    wifi_psk_file: Annotated[
        Path | None, typer.Option(help="File with the Wi-Fi passphrase.")
    ] = None,
    wifi_country: Annotated[str, typer.Option(help="Wi-Fi regulatory country.")] = "DE",
    timezone: Annotated[str, typer.Option()] = "UTC",
    ntp: Annotated[list[str], typer.Option(help="NTP servers.")] = ["pool.ntp.org"],  # noqa: B006
    address: Annotated[str, typer.Option(help="Static eth0 address (CIDR); else DHCP.")] = "",
    broker: Annotated[str, typer.Option(help="HOST:PORT for a new config.")] = "edge.local:8883",
    days: Annotated[int, typer.Option(help="Certificate lifetime in days.")] = 825,
    renew: Annotated[
        bool, typer.Option(help="Issue a new certificate for a known gateway.")
    ] = False,
    fleet_dir: FleetDir = None,
    passphrase_file: PassFile = None,
) -> None:
    """Issue GATEWAY_ID's key and certificate (CN = id) once its config passes the checks."""
    layout = layout_of(fleet_dir)
    try:
        wifi = None
        if wifi_ssid:
            if wifi_psk_file is None:
                raise ProvisionError("--wifi-ssid needs --wifi-psk-file")
            wifi = Wifi(ssid=wifi_ssid, psk=wifi_psk_file.read_text().strip(), country=wifi_country)
        network = NetworkSettings(
            hostname=hostname or gateway_id, timezone=timezone, ntp=ntp, wifi=wifi, address=address
        )
        host, _, port = broker.rpartition(":")
        authority = _ca(layout, passphrase_file)
        cert = provision(
            layout, authority, gateway_id, network, days=days, broker=(host, int(port)), renew=renew
        )
    except ProvisionError as exc:
        fail(str(exc), Exit.REFUSED if "already provisioned" in str(exc) else Exit.INPUT)
    except (ConfigError, ValueError) as exc:
        fail(str(exc), Exit.INPUT)
    console.print(
        f"{gateway_id}: certificate until {cert.not_valid_after_utc:%Y-%m-%d}, "
        f"config {layout.gateway_config(gateway_id)}"
    )


def revoke_command(
    gateway_id: str,
    broker_host: Annotated[
        str | None, typer.Option(help="Clear its retained messages here.")
    ] = None,
    broker_port: Annotated[int, typer.Option()] = 8883,
    fleet_dir: FleetDir = None,
    passphrase_file: PassFile = None,
) -> None:
    """Put GATEWAY_ID's certificate on the CRL and clear its retained status and receipt."""
    layout = layout_of(fleet_dir)
    authority = _ca(layout, passphrase_file)
    try:
        revoke(layout, authority, gateway_id)
    except ProvisionError as exc:
        fail(str(exc), Exit.INPUT)
    console.print(f"{gateway_id} revoked in {layout.crl}: copy it to the broker and reload it")
    if broker_host is None:
        errors.print("retained messages not cleared: pass --broker-host to clear them")
        return
    try:
        clear_retained(authority, broker_host, broker_port, gateway_id)
    except (OSError, ConnectionError) as exc:
        fail(f"revoked, but clearing its retained messages failed: {exc}", Exit.UNREACHABLE)
    console.print(f"retained status, receipt and update state of {gateway_id} cleared")

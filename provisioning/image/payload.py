"""Gather one gateway's card payload from a fleet directory, checking each piece first.

Nothing reaches a card that the gateway itself would refuse: the config is validated with
the gateway's own models and wiring checks, the identity must exist, and the release must be
a signed artifact.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from factory_common.errors import FleetError
from fleet.layout import FleetLayout
from gateway_image.firmware.config import GatewayConfig, load_gateway_config
from provisioning.image.customise import GatewayPayload
from provisioning.image.settings_file import settings_for

# UARTs on the Pi's header (and their aliases): a console there would talk onto the bus.
PI_UARTS = ("/dev/serial0", "/dev/serial1", "/dev/ttyS0", "/dev/ttyAMA")
RELEASE_SUFFIX = ".release.tar"


class PayloadError(FleetError, ValueError):
    """Something the card needs is missing; the message names the command that makes it."""


def firstboot_script() -> bytes:
    return resources.files("gateway_image").joinpath("os/firstboot.sh").read_bytes()


def gateway_config(layout: FleetLayout, gateway_id: str) -> GatewayConfig:
    path = layout.gateway_config(gateway_id)
    if not path.exists():
        raise PayloadError(
            f"{path}: no config for {gateway_id}: write it, then `fleet image build` again"
        )
    config = load_gateway_config(path)  # the gateway's own models, wiring checks included
    if config.gateway.id != gateway_id:
        raise PayloadError(f"{path}: gateway.id is {config.gateway.id!r}, expected {gateway_id!r}")
    return config


def newest_release(layout: FleetLayout) -> Path:
    found = sorted(layout.releases_dir.glob(f"*{RELEASE_SUFFIX}"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise PayloadError(
            f"no release artifact in {layout.releases_dir}: run `fleet release build` first "
            "(the card installs the gateway software from it, offline)"
        )
    return found[-1]


def uses_pi_uart(config: GatewayConfig) -> bool:
    """Whether a connector opens one of the header's UARTs (then no console may sit on it)."""
    claims = [connector.serial_port() for connector in config.connectors]
    return any(claim is not None and claim.port.startswith(PI_UARTS) for claim in claims)


def _required(path: Path, what: str, how: str) -> Path:
    if not path.exists():
        raise PayloadError(f"{path}: no {what}: {how}")
    return path


def gateway_payload(
    layout: FleetLayout, gateway_id: str, release: Path | None = None
) -> GatewayPayload:
    config = gateway_config(layout, gateway_id)
    provision = f"run `fleet provision {gateway_id}` first"
    release = release or newest_release(layout)
    files: dict[str, Path | bytes] = {
        "gateway.yaml": layout.gateway_config(gateway_id),
        "gateway.crt": _required(layout.gateway_cert(gateway_id), "certificate", provision),
        "gateway.key": _required(layout.gateway_key(gateway_id), "private key", provision),
        "ca.crt": _required(layout.ca_cert, "fleet CA certificate", "run `fleet ca init` first"),
        "release.pub": _required(
            layout.release_pub, "release public key", "run `fleet release build` first"
        ),
        release.name: _required(release, "release artifact", "run `fleet release build` first"),
        "firstboot.sh": firstboot_script(),
    }
    return GatewayPayload(
        gateway_id=gateway_id,
        settings=settings_for(layout.image_settings, gateway_id),
        files=files,
        serial_bus_on_uart=uses_pi_uart(config),
    )

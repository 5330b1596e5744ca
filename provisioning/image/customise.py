"""Write one gateway's first-boot files into a boot partition (the only partition touched)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from factory_common.errors import FleetError
from provisioning.image import firstboot
from provisioning.image.boot_set import BootFiles
from provisioning.image.flavour import Flavour
from provisioning.image.settings import ImageSettings


class CustomiseError(FleetError, ValueError):
    """The payload does not fit this image."""


@dataclass
class GatewayPayload:
    """Everything one gateway's card carries: settings, and files for `factory/` on the boot
    partition (name -> local file or bytes): certificate, key, CA, config, release artifact,
    release public key, firstboot.sh."""

    gateway_id: str
    settings: ImageSettings
    files: dict[str, Path | bytes] = field(default_factory=dict)
    serial_bus_on_uart: bool = False
    balena_config: dict[str, object] | None = None


def customise(fat: BootFiles, flavour: Flavour, payload: GatewayPayload) -> list[str]:
    """Write the payload for `flavour`; returns the boot-partition paths written."""
    if flavour is Flavour.BALENA_OS:
        return _customise_balena(fat, payload)
    written = _copy_payload(fat, payload)
    cmdline = fat.read("cmdline.txt")
    if payload.serial_bus_on_uart:
        cmdline = firstboot.without_serial_console(cmdline)
    if flavour is Flavour.RPIOS_CLOUD_INIT:
        instance = firstboot.new_instance_id(payload.gateway_id)
        files = {
            "user-data": firstboot.user_data(payload.settings, payload.gateway_id),
            "network-config": firstboot.network_config(payload.settings),
            "meta-data": firstboot.meta_data(instance),
        }
        cmdline = firstboot.cmdline_with(cmdline, f" ds=nocloud;i={instance}")
    else:
        files = {"firstrun.sh": firstboot.firstrun_script(payload.settings, payload.gateway_id)}
        cmdline = firstboot.cmdline_with(cmdline, firstboot.FIRSTRUN_CMDLINE)
    files["cmdline.txt"] = cmdline
    for name, data in files.items():
        fat.write(name, data)
    return written + list(files)


def _copy_payload(fat: BootFiles, payload: GatewayPayload) -> list[str]:
    if "firstboot.sh" not in payload.files:
        raise CustomiseError("the payload has no firstboot.sh: nothing would install the gateway")
    written = []
    files = {
        **payload.files,
        "settings.env": firstboot.settings_env(payload.settings, payload.gateway_id),
    }
    for name, content in sorted(files.items()):
        path = f"{firstboot.PAYLOAD_DIR}/{name}"
        if isinstance(content, Path):
            fat.copy_in(content, path)
        else:
            fat.write(path, content)
        written.append(path)
    return written


def _customise_balena(fat: BootFiles, payload: GatewayPayload) -> list[str]:
    """balenaOS reads config.json from its boot partition; the fleet's part comes from balena
    (`balena config generate`, or the balena backend), ours adds host name and SSH keys."""
    if payload.balena_config is None:
        raise CustomiseError(
            "a balenaOS image needs its fleet's config.json: generate it with `balena config "
            "generate --fleet FLEET --version OS_VERSION` and pass --balena-config FILE"
        )
    config = dict(payload.balena_config)
    config["hostname"] = payload.settings.host(payload.gateway_id)
    os_section = dict(config.get("os") or {})  # type: ignore[call-overload]
    os_section["sshKeys"] = list(payload.settings.ssh_authorized_keys)
    config["os"] = os_section
    fat.write("config.json", json.dumps(config, indent=2).encode())
    return ["config.json"]

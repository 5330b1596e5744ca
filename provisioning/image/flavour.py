"""Which operating system a base image is, told from the files on its boot partition (pure).

- balenaOS: its boot partition (`resin-boot`) carries `balena-image` or `balenaos.fingerprint`,
  and `config.json` / `device-type.json` (docs.balena.io, "Configuring balenaOS").
- Raspberry Pi OS with cloud-init (releases from 2 October 2025 on): `user-data`,
  `meta-data` and `network-config` ship on the boot partition (Raspberry Pi news, "Cloud-init
  on Raspberry Pi OS"); Raspberry Pi Imager customises these with its "cloudinit-rpi" format.
- Older Raspberry Pi OS (Bookworm and before): no cloud-init files; Imager's "systemd" format,
  `firstrun.sh` started from `cmdline.txt`, applies.
"""

from __future__ import annotations

import enum

from factory_common.errors import FleetError

PI_FIRMWARE_MARKERS = {"start.elf", "start4.elf", "bootcode.bin", "issue.txt"}
PI_BOOT_FILES = {"config.txt", "cmdline.txt"}
CLOUD_INIT_FILES = {"user-data", "meta-data", "network-config"}
BALENA_MARKERS = {"balena-image", "balenaos.fingerprint", "device-type.json"}


class Flavour(enum.Enum):
    RPIOS_CLOUD_INIT = "Raspberry Pi OS (cloud-init)"
    RPIOS_FIRSTRUN = "Raspberry Pi OS (firstrun.sh)"
    BALENA_OS = "balenaOS"


class UnknownImageError(FleetError, ValueError):
    """The boot partition is not one of a Raspberry Pi OS or balenaOS image."""


def detect(names: set[str]) -> Flavour:
    """The flavour of an image whose boot partition holds `names` (lower-cased file names)."""
    if names & BALENA_MARKERS and "config.json" in names:
        return Flavour.BALENA_OS
    has_pi_firmware = bool(names & PI_FIRMWARE_MARKERS) or any(
        name.startswith("bcm27") and name.endswith(".dtb") for name in names
    )
    if names >= PI_BOOT_FILES and has_pi_firmware:
        return Flavour.RPIOS_CLOUD_INIT if CLOUD_INIT_FILES & names else Flavour.RPIOS_FIRSTRUN
    shown = ", ".join(sorted(names)[:12]) or "no files"
    raise UnknownImageError(
        "the first FAT partition is neither a Raspberry Pi OS boot partition (config.txt, "
        "cmdline.txt and the Pi firmware) nor a balenaOS one (config.json, balena-image); "
        f"found: {shown}. Use an image from raspberrypi.com or balena.io as --base"
    )

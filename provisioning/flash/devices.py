"""Whether a block device may be flashed, decided from `lsblk --json` data (pure).

Never overridable: the system disk (it or a partition holds /, /boot, /usr, /var or swap),
a mounted device (writing under a mounted file system corrupts both), a partition instead
of the whole card, a write-protected card, a card smaller than the image. Overridable with
--force: a device the kernel does not report as removable (some USB readers claim to be
fixed disks), which otherwise protects the internal disks of the operator's machine.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from typing import Any

from factory_common.errors import FleetError

SYSTEM_MOUNTS = ("/", "/boot", "/boot/efi", "/boot/firmware", "/usr", "/var", "[SWAP]")
REMOVABLE_TRANSPORTS = {"usb", "mmc", "sdio"}
LSBLK_COLUMNS = "NAME,PATH,SIZE,MODEL,VENDOR,TRAN,RM,HOTPLUG,RO,TYPE,MOUNTPOINTS"


class RefusedDevice(FleetError, ValueError):
    """The device must not be written; the message says why and what to do instead."""


@dataclass(frozen=True)
class BlockDevice:
    path: str
    size: int
    model: str
    transport: str | None
    removable: bool
    read_only: bool
    kind: str
    mounts: list[str] = field(default_factory=list)  # of it and every partition on it

    def describe(self) -> str:
        size_gb = self.size / 1e9
        via = f" via {self.transport}" if self.transport else ""
        return f"{self.path}: {self.model or 'unknown model'}, {size_gb:.1f} GB{via}"


def lsblk(path: str) -> dict[str, Any]:
    """Ask the kernel (through lsblk) about `path` and everything on it."""
    done = subprocess.run(
        ["lsblk", "--json", "--bytes", "--output", LSBLK_COLUMNS, path],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RefusedDevice(f"{path} is not a block device lsblk knows: {done.stderr.strip()}")
    return json.loads(done.stdout)


def _mounts(node: dict[str, Any]) -> list[str]:
    found = [m for m in node.get("mountpoints") or [node.get("mountpoint")] if m]
    for child in node.get("children") or []:
        found += _mounts(child)
    return found


def describe(report: dict[str, Any]) -> BlockDevice:
    node = report["blockdevices"][0]
    return BlockDevice(
        path=node.get("path") or f"/dev/{node['name']}",
        size=int(node.get("size") or 0),
        model=" ".join(
            filter(None, [(node.get("vendor") or "").strip(), (node.get("model") or "").strip()])
        ),
        transport=node.get("tran"),
        removable=bool(node.get("rm"))
        or bool(node.get("hotplug"))
        or node.get("tran") in REMOVABLE_TRANSPORTS,
        read_only=bool(node.get("ro")),
        kind=str(node.get("type")),
        mounts=_mounts(node),
    )


def check(device: BlockDevice, image_size: int, force: bool = False) -> None:
    """Raise RefusedDevice unless `device` may take an image of `image_size` bytes."""
    system = [m for m in device.mounts if m in SYSTEM_MOUNTS]
    if system:
        raise RefusedDevice(
            f"{device.describe()} holds this machine's system ({', '.join(system)}): never "
            "written. Pick the SD card's device (lsblk shows it appear when you plug it in)"
        )
    if device.kind == "part":
        raise RefusedDevice(
            f"{device.path} is a partition: flash the whole card (e.g. /dev/sdb, not /dev/sdb1)"
        )
    if device.mounts:
        raise RefusedDevice(
            f"{device.describe()} is mounted at {', '.join(device.mounts)}: unmount it first "
            f"(udisksctl unmount -b PARTITION, or umount), then flash again"
        )
    if device.read_only:
        raise RefusedDevice(
            f"{device.describe()} is write-protected: slide the lock switch on the SD adapter"
        )
    if device.size < image_size:
        raise RefusedDevice(
            f"{device.describe()} is smaller than the image ({image_size / 1e9:.1f} GB): use a "
            "larger card"
        )
    if not device.removable and not force:
        raise RefusedDevice(
            f"{device.describe()} is not a removable device, so it may be one of this machine's "
            "own disks. If it really is the card reader, add --force"
        )

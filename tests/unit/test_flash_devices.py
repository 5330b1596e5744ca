"""Which devices `fleet image flash` refuses, from `lsblk --json` reports."""

from __future__ import annotations

from typing import Any

import pytest

from provisioning.flash.devices import RefusedDevice, check, describe

GB = 10**9


def report(**node: Any) -> dict[str, Any]:
    base = {
        "name": "sdb",
        "path": "/dev/sdb",
        "size": 32 * GB,
        "model": "SD/MMC CRW",
        "vendor": "Generic",
        "tran": "usb",
        "rm": True,
        "hotplug": True,
        "ro": False,
        "type": "disk",
        "mountpoints": [None],
        "children": [],
    }
    base.update(node)
    return {"blockdevices": [base]}


def part(mount: str | None) -> dict[str, Any]:
    return {"name": "sdb1", "type": "part", "mountpoints": [mount]}


def test_a_removable_card_is_accepted() -> None:
    card = describe(report())
    check(card, 4 * GB)
    assert card.describe() == "/dev/sdb: Generic SD/MMC CRW, 32.0 GB via usb"


@pytest.mark.parametrize(
    ("node", "image", "force", "message"),
    [
        ({"children": [part("/")]}, GB, True, "this machine's system"),
        ({"mountpoints": ["[SWAP]"]}, GB, True, "this machine's system"),
        ({"children": [part("/boot/firmware")]}, GB, True, "this machine's system"),
        ({"children": [part("/media/ops/bootfs")]}, GB, True, "unmount it first"),
        ({"type": "part"}, GB, True, "flash the whole card"),
        ({"ro": True}, GB, True, "write-protected"),
        ({}, 64 * GB, True, "smaller than the image"),
        ({"rm": False, "hotplug": False, "tran": "sata"}, GB, False, "add --force"),
        ({"rm": False, "hotplug": False, "tran": None, "type": "loop"}, GB, False, "add --force"),
    ],
)
def test_refusals(node: dict[str, Any], image: int, force: bool, message: str) -> None:
    with pytest.raises(RefusedDevice, match=message):
        check(describe(report(**node)), image, force=force)


def test_force_admits_only_a_non_removable_device() -> None:
    check(describe(report(rm=False, hotplug=False, tran="sata")), GB, force=True)


def test_mmc_slot_counts_as_removable() -> None:
    check(describe(report(rm=False, hotplug=False, tran="mmc", path="/dev/mmcblk0")), GB)


def test_the_system_disk_of_this_machine_is_refused() -> None:
    """The real lsblk report of whatever holds / here."""
    import subprocess

    root = subprocess.run(
        ["findmnt", "-n", "-o", "SOURCE", "/"], capture_output=True, text=True
    ).stdout.strip()
    if not root.startswith("/dev/"):
        pytest.skip(f"/ is on {root!r}, not a block device (container overlay)")
    from provisioning.flash.devices import lsblk

    disk = subprocess.run(
        ["lsblk", "-n", "-o", "PKNAME", root], capture_output=True, text=True
    ).stdout.strip()
    with pytest.raises(RefusedDevice, match="system"):
        check(describe(lsblk(f"/dev/{disk}" if disk else root)), 1, force=True)

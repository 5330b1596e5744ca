"""Base images shaped like the published ones, made with sfdisk, mkfs.vfat and mkfs.ext4.

Layouts follow the real releases: an MBR, a FAT32 boot partition at 4 MiB (older Raspberry
Pi OS) or 8 MiB (current), an ext4 root after it. The boot partition carries what each
flavour ships there (see provisioning/image/flavour.py), small stand-ins for the firmware
blobs; the root partition is populated from a folder so its checksum is meaningful.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from provisioning.image.fat import FatPartition
from provisioning.image.mbr import read_partitions
from tests.support.requirements import require_binary

MIB = 1 << 20
BOOT_MIB = 64  # FAT32 needs at least ~33 MiB with 512-byte sectors
ROOT_MIB = 48
CMDLINE = (
    b"console=serial0,115200 console=tty1 root=PARTUUID=6c586e13-02 rootfstype=ext4 "
    b"fsck.repair=yes rootwait\n"
)

PI_BOOT = {
    "config.txt": b"[all]\ndtparam=audio=on\nauto_initramfs=1\n",
    "cmdline.txt": CMDLINE,
    "start4.elf": b"\x7fELF-firmware-stand-in",
    "bcm2711-rpi-4-b.dtb": b"\xd0\x0d\xfe\xed-dtb-stand-in",
    "issue.txt": b"Raspberry Pi reference 2025-10-01\n",
}
CLOUD_INIT_DEFAULTS = {
    "user-data": b"#cloud-config\n",
    "meta-data": b"instance-id: rpios-image\n",
    "network-config": b"network:\n  version: 2\n",
}
BALENA_BOOT = {
    "config.json": b'{"deviceType": "raspberrypi4-64", "persistentLogging": false}',
    "balena-image": b"balena-image-raspberrypi4-64\n",
    "device-type.json": b'{"slug": "raspberrypi4-64"}',
    "config.txt": b"[all]\n",
    "cmdline.txt": b"dwc_otg.lpm_enable=0 rootwait\n",
}


def make_base_image(
    path: Path, flavour: str = "cloud-init", boot_start_mib: int = 8, xz: bool = False
) -> Path:
    """Write a base image; `flavour` is 'cloud-init', 'firstrun', 'balena' or 'not-a-pi'."""
    for tool in ("sfdisk", "mkfs.vfat", "mkfs.ext4", "mcopy"):
        require_binary(tool, "apt-get install fdisk dosfstools e2fsprogs mtools")
    total_mib = boot_start_mib + BOOT_MIB + ROOT_MIB
    with path.open("wb") as out:
        out.truncate(total_mib * MIB)
    boot_start = boot_start_mib * MIB // 512
    root_start = (boot_start_mib + BOOT_MIB) * MIB // 512
    table = (
        "label: dos\nunit: sectors\n\n"
        f"start={boot_start}, size={BOOT_MIB * MIB // 512}, type=c\n"
        f"start={root_start}, size={ROOT_MIB * MIB // 512}, type=83\n"
    )
    subprocess.run(["sfdisk", "-q", str(path)], input=table.encode(), check=True)
    label = "resin-boot" if flavour == "balena" else "bootfs"
    subprocess.run(
        [
            "mkfs.vfat",
            "-F",
            "32",
            "-n",
            label.upper()[:11],
            "--offset",
            str(boot_start),
            str(path),
            str(BOOT_MIB * 1024),
        ],
        check=True,
        capture_output=True,
    )
    rootdir = path.parent / f"{path.name}.rootfs"
    (rootdir / "etc").mkdir(parents=True, exist_ok=True)
    (rootdir / "etc" / "os-release").write_text('PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\n')
    subprocess.run(
        [
            "mkfs.ext4",
            "-q",
            "-F",
            "-L",
            "rootfs",
            "-d",
            str(rootdir),
            "-E",
            f"offset={root_start * 512}",
            str(path),
            f"{ROOT_MIB * 1024}k",
        ],
        check=True,
        capture_output=True,
    )
    fat = FatPartition(path, boot_start * 512)
    for name, data in _boot_files(flavour).items():
        fat.write(name, data)
    if xz:
        subprocess.run(["xz", "-T1", "-1", "-f", "-k", str(path)], check=True)
        return path.with_name(path.name + ".xz")
    return path


def _boot_files(flavour: str) -> dict[str, bytes]:
    if flavour == "balena":
        return BALENA_BOOT
    if flavour == "not-a-pi":
        return {"autoexec.bat": b"@echo off\r\n", "readme.txt": b"hello\n"}
    files = dict(PI_BOOT)
    if flavour == "cloud-init":
        files.update(CLOUD_INIT_DEFAULTS)
    return files


def partition_sha256(image: Path, number: int) -> str:
    """SHA-256 of one partition's bytes, located through the image's own MBR."""
    with image.open("rb") as src:
        part = next(p for p in read_partitions(src.read(512)) if p.number == number)
        src.seek(part.start)
        digest = hashlib.sha256()
        remaining = part.size
        while remaining:
            chunk = src.read(min(remaining, 4 * MIB))
            digest.update(chunk)
            remaining -= len(chunk)
        return digest.hexdigest()


def extract_partition(image: Path, number: int, out: Path) -> Path:
    """Copy one partition to its own file (fsck.vfat has no offset option)."""
    with image.open("rb") as src, out.open("wb") as dst:
        part = next(p for p in read_partitions(src.read(512)) if p.number == number)
        src.seek(part.start)
        remaining = part.size
        while remaining:
            chunk = src.read(min(remaining, 4 * MIB))
            dst.write(chunk)
            remaining -= len(chunk)
    return out

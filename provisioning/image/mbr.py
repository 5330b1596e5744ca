"""The partition table of a disk image, read from its MBR (pure: bytes in, partitions out).

Raspberry Pi OS and balenaOS images for the Pi use an MBR ("dos") label; the first
partition is the FAT boot partition. Current Raspberry Pi OS releases start it at 8 MiB,
older ones at 4 MiB, so its place is always read, never assumed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from factory_common.errors import FleetError

SECTOR = 512
MBR_SIGNATURE = b"\x55\xaa"
PROTECTIVE_GPT = 0xEE
FAT_TYPES = {0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E}
LINUX_TYPE = 0x83


class PartitionTableError(FleetError, ValueError):
    """The first sector is not an MBR this tool can read."""


@dataclass(frozen=True)
class Partition:
    """One primary partition: its number (1-4), MBR type byte, and extent in bytes."""

    number: int
    type_id: int
    start: int
    size: int

    @property
    def end(self) -> int:
        return self.start + self.size

    @property
    def is_fat(self) -> bool:
        return self.type_id in FAT_TYPES


def read_partitions(first_sector: bytes) -> list[Partition]:
    """The used primary partitions of an MBR, in table order."""
    if len(first_sector) < SECTOR:
        raise PartitionTableError(
            f"the image is {len(first_sector)} bytes long: too short to hold a partition table"
        )
    if first_sector[510:512] != MBR_SIGNATURE:
        raise PartitionTableError(
            "no MBR signature (55 AA) in the first sector: this is not a disk image"
        )
    partitions = []
    for index in range(4):
        entry = first_sector[446 + 16 * index : 446 + 16 * (index + 1)]
        type_id = entry[4]
        start_lba, sectors = struct.unpack_from("<II", entry, 8)
        if type_id == 0 or sectors == 0:
            continue
        if type_id == PROTECTIVE_GPT:
            raise PartitionTableError(
                "the image has a GPT partition table; Raspberry Pi OS and balenaOS images for "
                "the Pi use MBR: check that this is the right image"
            )
        partitions.append(Partition(index + 1, type_id, start_lba * SECTOR, sectors * SECTOR))
    if not partitions:
        raise PartitionTableError("the partition table is empty")
    return partitions


def encode_entry(partition: Partition) -> bytes:
    """A 16-byte MBR entry for `partition` (CHS fields set to the LBA-only marker)."""
    chs_unused = b"\xfe\xff\xff"
    return (
        b"\x00"
        + chs_unused
        + bytes([partition.type_id])
        + chs_unused
        + struct.pack("<II", partition.start // SECTOR, partition.size // SECTOR)
    )


def with_partition(first_sector: bytes, partition: Partition) -> bytes:
    """`first_sector` with `partition` written into its table slot."""
    if partition.start % SECTOR or partition.size % SECTOR:
        raise PartitionTableError("partitions must start and end on a 512-byte sector")
    offset = 446 + 16 * (partition.number - 1)
    return first_sector[:offset] + encode_entry(partition) + first_sector[offset + 16 :]

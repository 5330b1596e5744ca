"""Build one gateway's image: stream the base image, customise its boot partition, write it out.

The head of the image (MBR up to the end of the boot partition) is staged in a sparse
temporary file and customised there with mtools; everything after it streams straight from
the base image to the target. So a `.img.xz` never needs decompressing to disk, and the same
pass writes an image file (`fleet image build`) or a card (`fleet image flash --gateway`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from provisioning.image import boot_set
from provisioning.image.customise import CustomiseError, GatewayPayload, customise
from provisioning.image.fat import FatPartition
from provisioning.image.flavour import Flavour, detect
from provisioning.image.mbr import (
    LINUX_TYPE,
    Partition,
    PartitionTableError,
    read_partitions,
    with_partition,
)
from provisioning.image.sink import CHUNK, ImageSink, Progress
from provisioning.image.source import ImageSource, open_source

ALIGN = 4 << 20  # partitions start on 4 MiB boundaries, as Raspberry Pi OS's do
DATA_LABEL = "gwdata"


@dataclass(frozen=True)
class BuildResult:
    flavour: Flavour
    length: int
    sha256: str
    partitions: list[Partition]
    written: list[str]


SinkFactory = Callable[[Path, "Progress | None"], ImageSink]


def build(
    base: Path,
    target: Path,
    payload: GatewayPayload | None,
    progress: Progress | None = None,
    sink_factory: SinkFactory = ImageSink,
    flash_set: Path | None = None,
) -> BuildResult:
    """Write `base` to `target`, customised for `payload` or with `flash_set` laid over its
    boot partition (unchanged when neither is given)."""
    with open_source(base) as source, tempfile.TemporaryDirectory(prefix="fleet-image-") as tmp:
        partitions, head, fat = _stage(source, Path(tmp))
        flavour = detect(fat.names())
        written: list[str] = []
        if payload is not None:
            written = customise(fat, flavour, payload)
        elif flash_set is not None:
            written = boot_set.apply(fat, flash_set, flavour.value)
        data = None
        if payload and payload.settings.data_partition_mib:
            data = _add_data_partition(head, partitions, payload.settings.data_partition_mib, tmp)
            partitions = read_partitions(head.read_bytes()[:512])
        sink = sink_factory(target, progress)
        try:
            _copy_file(head, sink)
            _copy_stream(source, sink)
            if data is not None:
                start, image = data
                _pad_to(sink, start)
                _copy_file(image, sink)
        finally:
            digest = sink.close()
        return BuildResult(flavour, sink.length, digest, partitions, written)


def make_flash_set(base: Path, payload: GatewayPayload, folder: Path) -> list[str]:
    """Write into `folder` the boot-partition files `payload` gives a card made from `base`."""
    if payload.settings.data_partition_mib:
        raise CustomiseError(
            "a data partition changes the partition table, which a flash set cannot carry: "
            "build whole images (without --flash-sets) for read-only-root gateways"
        )
    with open_source(base) as source, tempfile.TemporaryDirectory(prefix="fleet-image-") as tmp:
        _partitions, _head, fat = _stage(source, Path(tmp))
        flavour = detect(fat.names())
        folder.mkdir(parents=True, exist_ok=True)
        files = boot_set.FolderBootFiles(folder)
        if "cmdline.txt" in fat.names():
            files.write("cmdline.txt", fat.read("cmdline.txt"))  # customising edits the base's
        written = customise(files, flavour, payload)
        boot_set.write_manifest(folder, payload.gateway_id, flavour.value, written)
        return written


def _stage(source: ImageSource, tmp: Path) -> tuple[list[Partition], Path, FatPartition]:
    """Read the MBR and the boot partition into a sparse temporary file."""
    first = source.read_exactly(512)
    partitions = read_partitions(first)
    boot = _boot_partition(partitions)
    head = tmp / "head.img"
    _stage_head(source, first, boot.end, head)
    return partitions, head, FatPartition(head, boot.start)


def _boot_partition(partitions: list[Partition]) -> Partition:
    boot = partitions[0]
    if not boot.is_fat:
        found = ", ".join(f"#{p.number} type 0x{p.type_id:02x}" for p in partitions)
        raise PartitionTableError(
            f"the first partition is not FAT (found {found}): a Raspberry Pi boots from a "
            "FAT first partition, so this is not a Pi image"
        )
    return boot


def _stage_head(source: ImageSource, first: bytes, end: int, head: Path) -> None:
    with head.open("wb") as out:
        out.write(first)
        remaining = end - len(first)
        while remaining:
            chunk = source.read_exactly(min(CHUNK, remaining))
            if chunk.count(0) == len(chunk):
                out.seek(len(chunk), os.SEEK_CUR)
            else:
                out.write(chunk)
            remaining -= len(chunk)
        out.truncate(end)


def _copy_file(path: Path, sink: ImageSink) -> None:
    with path.open("rb") as src:
        while chunk := src.read(CHUNK):
            sink.write(chunk)


def _copy_stream(source: ImageSource, sink: ImageSink) -> None:
    while chunk := source.stream.read(CHUNK):
        sink.write(chunk)


def _pad_to(sink: ImageSink, offset: int) -> None:
    while sink.length < offset:
        sink.write(bytes(min(CHUNK, offset - sink.length)))


def _add_data_partition(
    head: Path, partitions: list[Partition], size_mib: int, tmp: str
) -> tuple[int, Path]:
    """A writable ext4 partition after the last one, for the buffer when the root is read-only.

    Raspberry Pi OS grows its root partition on first boot only while it is the last one, so
    with this partition the root keeps its image size and the data partition is the room.
    """
    used = {p.number for p in partitions}
    free = [n for n in range(1, 5) if n not in used]
    if not free:
        raise PartitionTableError("all four MBR slots are used: no room for a data partition")
    last_end = max(p.end for p in partitions)
    start = -(-last_end // ALIGN) * ALIGN
    size = size_mib << 20
    if shutil.which("mkfs.ext4") is None:
        raise PartitionTableError(
            "mkfs.ext4 is needed for a data partition: apt-get install e2fsprogs"
        )
    image = Path(tmp) / "data.img"
    with image.open("wb") as out:
        out.truncate(size)
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-L", DATA_LABEL, "-m", "0", str(image)],
        check=True,
        capture_output=True,
    )
    entry = Partition(free[0], LINUX_TYPE, start, size)
    with head.open("r+b") as out:
        sector = out.read(512)
        out.seek(0)
        out.write(with_partition(sector, entry))
    return start, image

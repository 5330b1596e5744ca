"""A flash set: the exact files one gateway's card gets on its boot partition, kept in a folder.

`fleet image batch --flash-sets` writes one per gateway instead of a multi-gigabyte image
each; `fleet image flash BASE DEVICE --set DIR` writes the base image and lays the set over
its boot partition in the same pass. A technician's laptop then needs neither the fleet's
CA nor its config repository, only the base image and the sets.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path, PurePosixPath
from typing import Protocol

from factory_common.errors import FleetError

MANIFEST = "flash-set.json"


class BootFiles(Protocol):
    """What customising a boot partition needs: a FAT partition or a flash-set folder."""

    def names(self, folder: str = "") -> set[str]: ...

    def read(self, path: str) -> bytes: ...

    def write(self, path: str, data: bytes) -> None: ...

    def copy_in(self, source: Path, path: str) -> None: ...


class SetError(FleetError, ValueError):
    """A flash set that does not fit the base image it is flashed with."""


class FolderBootFiles:
    """A folder standing in for a boot partition (names compared case-insensitively, as FAT)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, path: str) -> Path:
        return self.root / PurePosixPath(path)

    def names(self, folder: str = "") -> set[str]:
        where = self._path(folder)
        return {p.name.lower() for p in where.iterdir()} if where.is_dir() else set()

    def read(self, path: str) -> bytes:
        return self._path(path).read_bytes()

    def write(self, path: str, data: bytes) -> None:
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def copy_in(self, source: Path, path: str) -> None:
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def write_manifest(root: Path, gateway_id: str, flavour: str, written: list[str]) -> None:
    record = {"gateway": gateway_id, "flavour": flavour, "files": sorted(written)}
    (root / MANIFEST).write_text(json.dumps(record, indent=2) + "\n")


def read_manifest(root: Path) -> dict[str, object]:
    path = root / MANIFEST
    if not path.is_file():
        raise SetError(
            f"{root} is not a flash set (no {MANIFEST}): make one with fleet image batch"
        )
    return dict(json.loads(path.read_text()))


def apply(boot: BootFiles, root: Path, flavour: str) -> list[str]:
    """Lay the set at `root` over `boot`; the set must have been made for this flavour."""
    manifest = read_manifest(root)
    if manifest["flavour"] != flavour:
        raise SetError(
            f"{root} was made for a {manifest['flavour']} image, the base is {flavour}: "
            "make the sets with the base image you flash"
        )
    files = [str(f) for f in manifest["files"]]  # type: ignore[attr-defined]
    for name in files:
        boot.copy_in(root / PurePosixPath(name), name)
    return files

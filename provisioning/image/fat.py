"""Files inside a FAT partition of an image file, through mtools: no mount, no root.

mtools addresses a partition inside an image as `IMAGE@@OFFSET`. FAT names are
case-insensitive, so every lookup here compares names folded to lower case.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path, PurePosixPath

from factory_common.errors import FleetError

INSTALL_HINT = "install mtools (Debian/Ubuntu: sudo apt-get install mtools)"


class FatError(FleetError, RuntimeError):
    """An mtools command failed on the image."""


class FatPartition:
    """The FAT file system that starts `offset` bytes into `image`."""

    def __init__(self, image: Path, offset: int) -> None:
        self.image = image
        self.offset = offset
        if shutil.which("mcopy") is None:
            raise FatError(f"mtools is not installed: {INSTALL_HINT}")

    def _run(self, *args: str) -> str:
        env = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "MTOOLS_NO_VFAT": "0"}
        command = [args[0], "-i", f"{self.image}@@{self.offset}", *args[1:]]
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise FatError(
                f"{args[0]} failed on the FAT partition at byte {self.offset} of {self.image}: "
                f"{detail[-1] if detail else 'no message'}"
            )
        return done.stdout

    def names(self, folder: str = "") -> set[str]:
        """Lower-cased names in `folder` (the partition's root by default)."""
        try:
            listing = self._run("mdir", "-b", f"::/{folder}")
        except FatError:
            return set()
        return {PurePosixPath(line.strip()).name.lower() for line in listing.splitlines() if line}

    def read(self, path: str) -> bytes:
        with tempfile.TemporaryDirectory() as scratch:
            local = Path(scratch) / "file"
            self._run("mcopy", "-n", f"::/{path}", str(local))
            return local.read_bytes()

    def write(self, path: str, data: bytes) -> None:
        """Create or replace `path`, making its folders as needed."""
        self.make_dirs(str(PurePosixPath(path).parent))
        with tempfile.TemporaryDirectory() as scratch:
            local = Path(scratch) / PurePosixPath(path).name
            local.write_bytes(data)
            self._run("mcopy", "-o", "-n", str(local), f"::/{path}")

    def copy_in(self, source: Path, path: str) -> None:
        """Copy a (possibly large) local file to `path` without reading it into memory."""
        self.make_dirs(str(PurePosixPath(path).parent))
        self._run("mcopy", "-o", "-n", str(source), f"::/{path}")

    def extract_all(self, destination: Path) -> None:
        """Copy the whole file system into `destination` (what a mounted boot partition shows)."""
        destination.mkdir(parents=True, exist_ok=True)
        self._run("mcopy", "-s", "-n", "-m", "::/*", str(destination))

    def make_dirs(self, folder: str) -> None:
        made = PurePosixPath()
        for part in PurePosixPath(folder).parts:
            if part in ("", ".", "/"):
                continue
            if part.lower() not in self.names(str(made)):
                self._run("mmd", f"::/{made / part}")
            made = made / part

"""A published base image as a forward-only stream: `.img`, or `.img.xz` decompressed on the fly.

Raspberry Pi OS ships `.img.xz`; decompressing to a temporary `.img` first would need the
full size (several GB) on disk, so the image is read as a stream and never held whole.
"""

from __future__ import annotations

import lzma
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from factory_common.errors import FleetError

XZ_MAGIC = b"\xfd7zXZ\x00"


class SourceError(FleetError, ValueError):
    """The base image cannot be read."""


@dataclass
class ImageSource:
    """An open base image: its stream and, when known, its decompressed size in bytes."""

    path: Path
    stream: BinaryIO
    size: int | None

    def read_exactly(self, count: int) -> bytes:
        """Read `count` bytes or fail saying the image ended early."""
        chunks = []
        remaining = count
        while remaining:
            chunk = self.stream.read(min(remaining, 4 << 20))
            if not chunk:
                raise SourceError(
                    f"{self.path} ends {remaining} bytes before its partition table says: "
                    "the download is probably truncated; fetch it again"
                )
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)


def _xz_size(path: Path) -> int | None:
    """The decompressed size from the xz index (`xz --robot --list`), when xz is installed."""
    if shutil.which("xz") is None:
        return None
    done = subprocess.run(
        ["xz", "--robot", "--list", str(path)], capture_output=True, text=True, check=False
    )
    for line in done.stdout.splitlines():
        fields = line.split("\t")
        if fields[0] == "totals" and len(fields) > 4 and fields[4].isdigit():
            return int(fields[4])
    return None


@contextmanager
def open_source(path: Path) -> Iterator[ImageSource]:
    """Open `path` as a stream, decompressing xz by its magic bytes (not its name)."""
    if not path.is_file():
        raise SourceError(f"{path}: no such base image file")
    with path.open("rb") as raw:
        magic = raw.read(len(XZ_MAGIC))
        raw.seek(0)
        if magic == XZ_MAGIC:
            with lzma.open(raw) as stream:
                yield ImageSource(path, stream, _xz_size(path))  # type: ignore[arg-type]
        else:
            yield ImageSource(path, raw, path.stat().st_size)

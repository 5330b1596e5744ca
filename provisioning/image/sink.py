"""Where an image is written: a sparse image file or a block device, hashed as it is written.

Both are written front to back in one pass; the SHA-256 of every byte written is kept so the
target can be read back and compared (a card or reader that corrupts data is caught before
the card goes into a gateway).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

from factory_common.errors import FleetError

CHUNK = 4 << 20
ZERO_CHUNK = bytes(CHUNK)

Progress = Callable[[int], None]


class VerifyError(FleetError, RuntimeError):
    """What was read back differs from what was written."""


class ImageSink:
    """Sequential writer. Zero chunks become holes in a regular file; a device gets every byte
    (its old contents are not known to be zero)."""

    def __init__(self, target: Path, progress: Progress | None = None) -> None:
        self.target = target
        self.progress = progress or (lambda _n: None)
        self.digest = hashlib.sha256()
        self.length = 0
        exists = target.exists()
        self.is_device = exists and stat.S_ISBLK(target.stat().st_mode)
        flags = os.O_WRONLY | (0 if self.is_device else os.O_CREAT | os.O_TRUNC)
        self._fd = os.open(target, flags, 0o644)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(view), CHUNK):
            piece = view[start : start + CHUNK]
            self.digest.update(piece)
            if not self.is_device and piece == ZERO_CHUNK[: len(piece)]:
                os.lseek(self._fd, len(piece), os.SEEK_CUR)
            else:
                self._write_all(piece)
            self.length += len(piece)
            self.progress(len(piece))

    def _write_all(self, piece: memoryview) -> None:
        while piece:
            written = os.write(self._fd, piece)
            piece = piece[written:]

    def close(self) -> str:
        """Flush to stable storage; returns the SHA-256 of everything written."""
        if not self.is_device:
            os.ftruncate(self._fd, self.length)  # a trailing hole still counts as length
        os.fsync(self._fd)
        os.close(self._fd)
        return self.digest.hexdigest()


def hash_prefix(path: Path, length: int, progress: Progress | None = None) -> str:
    """SHA-256 of the first `length` bytes of `path`, read back from the device or file."""
    digest = hashlib.sha256()
    remaining = length
    fd = os.open(path, os.O_RDONLY)
    try:
        if hasattr(os, "posix_fadvise"):
            # Read from the medium, not from the page cache the write just filled.
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        while remaining:
            chunk = os.read(fd, min(CHUNK, remaining))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
            if progress:
                progress(len(chunk))
    finally:
        os.close(fd)
    if remaining:
        raise VerifyError(f"{path} is {length - remaining} bytes long, {length} were written")
    return digest.hexdigest()

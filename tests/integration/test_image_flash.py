"""`fleet image flash` to a file and to a loop device, with read-back verification."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioning.flash.devices import check, describe, lsblk
from provisioning.flash.writer import flash
from provisioning.image.sink import ImageSink, Progress, VerifyError
from tests.integration.test_image_build import boot_of, payload
from tests.support.pi_images import make_base_image, partition_sha256
from tests.support.requirements import require_binary


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[Path]:
    """A real block device backed by a file (losetup with an explicit offset, as works here)."""
    losetup = require_binary("losetup", "apt-get install mount")
    if os.geteuid() != 0:
        pytest.skip("loop devices need root: run the tests as root (CI does)")
    backing = tmp_path / "card.bin"
    with backing.open("wb") as out:
        out.truncate(256 << 20)
    done = subprocess.run(
        [losetup, "--find", "--show", "--offset", "0", str(backing)], capture_output=True, text=True
    )
    if done.returncode != 0:
        message = f"losetup failed: {done.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    device = Path(done.stdout.strip())
    try:
        yield device
    finally:
        subprocess.run([losetup, "--detach", str(device)], check=False)


def test_flash_a_base_image_customised_on_the_fly_to_a_loop_device(
    tmp_path: Path, loop_device: Path
) -> None:
    base = make_base_image(tmp_path / "base.img", "cloud-init", 8, xz=True)
    card = describe(lsblk(str(loop_device)))
    check(card, 200 << 20, force=True)  # a loop device is not removable: --force

    written: list[int] = []
    verified: list[int] = []
    result = flash(base, loop_device, payload(), written.append, verified.append)

    assert sum(written) == sum(verified) == result.build.length
    assert result.verified_sha256 == result.build.sha256
    assert boot_of(loop_device).read("factory/gateway.yaml") == b"gateway:\n  id: gw-07\n"
    assert partition_sha256(loop_device, 2) == partition_sha256(tmp_path / "base.img", 2)


def test_flash_to_a_file(tmp_path: Path) -> None:
    base = make_base_image(tmp_path / "base.img", "firstrun", 4)
    result = flash(base, tmp_path / "card.img")
    assert result.build.written == []  # no --gateway: the image goes on unchanged
    assert partition_sha256(tmp_path / "card.img", 1) == partition_sha256(base, 1)


class FlippingSink(ImageSink):
    """A card that stores one bit wrong in its third chunk: what a failing reader does."""

    def __init__(self, target: Path, progress: Progress | None) -> None:
        super().__init__(target, progress)
        self.chunks = 0

    def _write_all(self, piece: memoryview) -> None:
        self.chunks += 1
        if self.chunks == 3:
            damaged = bytearray(piece)
            damaged[100] ^= 0x01
            piece = memoryview(bytes(damaged))
        super()._write_all(piece)


def test_a_write_corrupted_in_flight_is_detected(tmp_path: Path) -> None:
    base = make_base_image(tmp_path / "base.img", "cloud-init", 8)
    with pytest.raises(VerifyError, match="the card or the reader is faulty"):
        flash(base, tmp_path / "card.img", payload(), sink_factory=FlippingSink)

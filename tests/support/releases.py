"""Release artifacts for tests: built once per session from this checkout with the real builder."""

from __future__ import annotations

import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fleet.layout import FleetLayout
from fleet.release_build import NOT_SOURCE, build_release
from fleet.release_keys import generate, load

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "release-passphrase-for-tests"
# What a release that crashes at start looks like: `gateway check` still passes, but
# `gateway run` dies before its event loop, every time.
CRASH_AT = "    logs.configure(json=log_json)\n"
CRASH = '    raise RuntimeError("this release is broken on purpose: it crashes at start")\n'


@dataclass(frozen=True)
class Releases:
    fleet: FleetLayout
    key: Ed25519PrivateKey
    base: Path  # 1.0.0, every platform
    good: Path  # 1.1.0, this machine only
    crashing: Path  # 1.2.0 whose gateway exits at start, this machine only


def build_releases(workdir: Path) -> Releases:
    fleet = FleetLayout(workdir / "fleet")
    generate(fleet, PASSPHRASE)
    key = load(fleet, PASSPHRASE)
    base = build_release(ROOT, fleet.releases_dir, key, version="1.0.0")
    good = build_release(ROOT, fleet.releases_dir, key, version="1.1.0", platforms=["linux_x86_64"])
    broken = workdir / "broken-source"
    shutil.copytree(ROOT, broken, ignore=NOT_SOURCE)
    firmware = broken / "gateway_image" / "firmware"
    entries = [p for p in firmware.rglob("*.py") if CRASH_AT in p.read_text()]
    assert len(entries) == 1, f"put the crash where `gateway run` starts (found {entries})"
    entries[0].write_text(entries[0].read_text().replace(CRASH_AT, CRASH + CRASH_AT, 1))
    crashing = build_release(
        broken, fleet.releases_dir, key, version="1.2.0", platforms=["linux_x86_64"]
    )
    return Releases(fleet, key, base, good, crashing)


def tampered_copy(artifact: Path, out: Path) -> Path:
    """The same artifact with one byte of its first wheel changed (manifest and signature kept)."""
    data = bytearray(artifact.read_bytes())
    with tarfile.open(artifact) as tar:
        wheel = next(m for m in tar.getmembers() if m.name.endswith(".whl"))
    data[wheel.offset_data + wheel.size // 2] ^= 0xFF
    out.write_bytes(bytes(data))
    return out


def unsigned_copy(artifact: Path, out: Path) -> Path:
    """The same artifact without its detached signature."""
    with tarfile.open(artifact) as source, tarfile.open(out, "w") as target:
        for member in source.getmembers():
            if member.name != "manifest.sig":
                target.addfile(member, source.extractfile(member))
    return out

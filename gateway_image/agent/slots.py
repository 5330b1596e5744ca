"""The agent's disk: two release slots (venvs), two config slots, and the links that choose.

```
ROOT/                       e.g. /opt/factory-gateway
  slots/a/  slots/b/        one virtual environment per release
  current -> slots/a        what the gateway service runs (switched by rename: atomic)
  committed -> slots/a      the last release proven healthy: the agent itself runs from here,
                            so a broken release on trial can never break the way back
  config/a.yaml  b.yaml     two gateway configs; config/active.yaml -> a.yaml
  state.json                the agent's state machine, written before every step
  requests/                 update requests waiting (from MQTT or the local CLI)
DATA_DIR/                   e.g. /var/lib/factory-gateway: the buffer and its sequence
                            numbers, outside every slot, so they survive every switch
```
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from factory_common.errors import GatewayError
from gateway_image.agent.artifact import (
    ArtifactError,
    Manifest,
    check_not_downgrade,
    sha256_file,
    verify_and_extract,
)

SLOTS = ("a", "b")
# Written into a slot once its release is wholly installed: the manifest's digest.
INSTALLED = ".installed-release"


class InstallError(GatewayError, RuntimeError):
    """A verified artifact that could not be installed (pip failed, config refused)."""


@dataclass(frozen=True)
class AgentPaths:
    root: Path
    data_dir: Path
    keys_dir: Path
    # The interpreter each slot's venv is made from (the Pi's /usr/bin/python3).
    python: str = getattr(sys, "_base_executable", sys.executable)

    def slot(self, name: str) -> Path:
        return self.root / "slots" / name

    @property
    def current(self) -> Path:
        return self.root / "current"

    @property
    def committed(self) -> Path:
        return self.root / "committed"

    def config_slot(self, name: str) -> Path:
        return self.root / "config" / f"{name}.yaml"

    @property
    def active_config(self) -> Path:
        return self.root / "config" / "active.yaml"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def requests(self) -> Path:
        return self.root / "requests"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    def trusted_keys(self) -> list[Path]:
        return sorted(self.keys_dir.glob("*.pub"))


def switch_link(link: Path, target: Path) -> None:
    """Point `link` at `target` by renaming a new link over it: never absent, never half-made."""
    link.parent.mkdir(parents=True, exist_ok=True)
    relative = os.path.relpath(target, link.parent)
    if link.is_symlink() and os.readlink(link) == relative:
        return
    temporary = link.with_name(f".{link.name}.{os.getpid()}.new")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(relative)
    os.replace(temporary, link)
    _fsync_dir(link.parent)


def link_target(link: Path) -> str:
    """The slot name a link points at ('' when absent)."""
    return Path(os.readlink(link)).stem if link.is_symlink() else ""


def _fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.new")
    with temporary.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    _fsync_dir(path.parent)


def verify(
    artifact: Path, keys: Sequence[Ed25519PublicKey], wheels: Path, sha256: str = ""
) -> Manifest:
    """The request's hash first (names a swapped file), then signature and every wheel."""
    if sha256 and sha256_file(artifact) != sha256:
        raise ArtifactError(f"{artifact}: sha256 differs from the one the request names")
    return verify_and_extract(artifact, keys, wheels)


def install_release(
    paths: AgentPaths,
    slot: str,
    artifact: Path,
    keys: Sequence[Ed25519PublicKey],
    *,
    running: str = "",
    downgrade: bool = False,
    sha256: str = "",
) -> Manifest:
    """Verify the artifact, then make `slot` a fresh venv with the release installed offline."""
    with tempfile.TemporaryDirectory(dir=paths.root, prefix=".wheels-") as scratch:
        wheels = Path(scratch)
        manifest = verify(artifact, keys, wheels, sha256)
        check_not_downgrade(manifest, running, downgrade)
        target = paths.slot(slot)
        marker = target / INSTALLED
        digest = hashlib.sha256(manifest.to_bytes()).hexdigest()
        if marker.exists() and marker.read_text() == digest:
            return manifest  # this very release is already whole in the slot (a retry)
        shutil.rmtree(target, ignore_errors=True)
        _run([paths.python, "-m", "venv", str(target)], "creating the slot's venv")
        pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--no-index", "-q"]
        pip.append("--disable-pip-version-check")
        _run([*pip, "--find-links", str(wheels), manifest.requirement], "pip install")
        write_atomic(marker, digest.encode())  # last: a slot without it is incomplete
    return manifest


def check_config(slot_dir: Path, config: Path) -> None:
    """Validate a gateway config with the models and wiring checks of the release in a slot."""
    _run([str(slot_dir / "bin" / "gateway"), "check", str(config)], f"checking {config.name}")


def write_config(paths: AgentPaths, slot: str, text: str, release_dir: Path) -> str:
    """Store a config in a config slot after the release that will run it accepts it."""
    with tempfile.TemporaryDirectory(dir=paths.root, prefix=".config-") as scratch:
        candidate = Path(scratch) / "gateway.yaml"
        candidate.write_text(text)
        check_config(release_dir, candidate)
    write_atomic(paths.config_slot(slot), text.encode())
    return hashlib.sha256(text.encode()).hexdigest()


def _run(command: list[str], what: str) -> None:
    # An empty config: pip must not reach an index or pick up a developer's find-links.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-2000:]
        raise InstallError(f"{what} failed (exit {result.returncode}): {output}")

"""The release artifact: one tar file holding a signed manifest and every wheel the gateway needs.

Layout (an uncompressed tar: wheels are already zip-compressed):

    manifest.json   what the release is (see `Manifest`), with the sha256 and size of each file
    manifest.sig    detached Ed25519 signature of manifest.json's exact bytes by the release key
    wheels/*.whl    the gateway package and every dependency, for every platform listed

Verification order matters: the signature is checked over the manifest bytes before anything
in them is trusted, then each wheel is checked against the manifest while it is extracted, so
a tampered, truncated, added or missing file is refused before anything is installed. This one
module is the format and the verifier for the fleet's builder, the update agent and first boot;
it needs only `cryptography` and `packaging`, both in the gateway extra.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from packaging.version import InvalidVersion, Version

from factory_common.errors import GatewayError

FORMAT = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
WHEELS = "wheels"
SUFFIX = ".release.tar"
# A manifest larger than this is not one we wrote: refuse it before parsing.
MAX_MANIFEST_BYTES = 1024 * 1024


class ArtifactError(GatewayError, ValueError):
    """An artifact that must not be installed; the message says which file and why."""


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


@dataclass(frozen=True)
class Platform:
    """One target the wheels cover: e.g. linux_aarch64 for CPython 3.11."""

    name: str
    python: str
    pip_platforms: list[str]
    machine: str = ""  # platform_machine for environment markers (aarch64, x86_64)


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    # What to install from the wheels, e.g. "factory-edge[gateway]==1.2.0".
    requirement: str
    platforms: list[Platform]
    # The lock the dependency set was resolved from (path in the repo and its sha256).
    lock: dict[str, str]
    # The oldest gateway config schema this release still loads.
    min_config_schema: int
    created_at: str
    key_id: str
    files: dict[str, FileEntry] = field(default_factory=dict)
    format: int = FORMAT

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        try:
            raw = json.loads(data)
            if raw.get("format") != FORMAT:
                raise ArtifactError(f"{MANIFEST}: format {raw.get('format')!r}, expected {FORMAT}")
            raw["platforms"] = [Platform(**p) for p in raw["platforms"]]
            raw["files"] = {n: FileEntry(**e) for n, e in raw["files"].items()}
            manifest = cls(**raw)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            if isinstance(exc, ArtifactError):
                raise
            raise ArtifactError(f"{MANIFEST}: malformed: {exc}") from None
        parse_version(manifest.version)
        for name in manifest.files:
            _check_member_name(name)
        return manifest

    @property
    def wheel_names(self) -> list[str]:
        return sorted(PurePosixPath(n).name for n in self.files if n.startswith(f"{WHEELS}/"))


def parse_version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise ArtifactError(f"{MANIFEST}: version {text!r} is not a PEP 440 version") from None


def key_id(public: Ed25519PublicKey) -> str:
    """A short fingerprint that names the key in manifests and error messages."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_keys(paths: Iterable[Path]) -> list[Ed25519PublicKey]:
    """PEM public keys (a file each); the gateway trusts every one given (key rotation)."""
    keys = []
    for path in paths:
        key = serialization.load_pem_public_key(path.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ArtifactError(f"{path}: not an Ed25519 public key")
        keys.append(key)
    return keys


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_artifact(
    out: Path, manifest: Manifest, wheels: Sequence[Path], key: Ed25519PrivateKey
) -> Path:
    """Hash every wheel into the manifest, sign it, and write the one-file artifact."""
    files = {f"{WHEELS}/{w.name}": FileEntry(sha256_file(w), w.stat().st_size) for w in wheels}
    signed = Manifest(**{**asdict(manifest), "files": files, "platforms": manifest.platforms})
    data = signed.to_bytes()
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, MANIFEST, data)
        _add_bytes(tar, SIGNATURE, key.sign(data))
        for wheel in sorted(wheels, key=lambda w: w.name):
            tar.add(wheel, arcname=f"{WHEELS}/{wheel.name}", recursive=False)
    partial.replace(out)  # never a half-written artifact under the final name
    return out


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def read_manifest(path: Path, keys: Sequence[Ed25519PublicKey]) -> Manifest:
    """The manifest of an artifact whose signature one of `keys` made; nothing else is read."""
    if not keys:
        raise ArtifactError("no trusted release key: install the fleet's release.pub first")
    try:
        with tarfile.open(path, "r:") as tar:
            data = _member_bytes(tar, path, MANIFEST, MAX_MANIFEST_BYTES)
            signature = _member_bytes(tar, path, SIGNATURE, 1024)
    except (tarfile.TarError, OSError) as exc:
        raise ArtifactError(f"{path}: not a release artifact: {exc}") from None
    for key in keys:
        try:
            key.verify(signature, data)
        except InvalidSignature:
            continue
        return Manifest.from_bytes(data)
    names = ", ".join(key_id(k) for k in keys)
    raise ArtifactError(
        f"{path}: {MANIFEST} is not signed by a trusted release key ({names}): "
        "tampered, or built with another fleet's key"
    )


def _member_bytes(tar: tarfile.TarFile, path: Path, name: str, limit: int) -> bytes:
    try:
        info = tar.getmember(name)
    except KeyError:
        what = "unsigned (no manifest.sig)" if name == SIGNATURE else f"no {name}"
        raise ArtifactError(f"{path}: {what}: refusing it") from None
    if not info.isfile() or info.size > limit:
        raise ArtifactError(f"{path}: {name} is not a regular file of at most {limit} bytes")
    stream = tar.extractfile(info)
    assert stream is not None  # a regular file always has a stream
    return stream.read()


def _check_member_name(name: str) -> None:
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or len(pure.parts) != 2 or pure.parts[0] != WHEELS:
        raise ArtifactError(f"{MANIFEST}: file {name!r} is not wheels/<name>")


def verify_and_extract(path: Path, keys: Sequence[Ed25519PublicKey], dest: Path) -> Manifest:
    """Check the signature, then extract each wheel into `dest` checking its hash and size.

    Anything the manifest does not list, or lists but is missing or different, is refused;
    `dest` then holds no wheel from this artifact.
    """
    manifest = read_manifest(path, keys)
    dest.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    try:
        with tarfile.open(path, "r:") as tar:
            for info in tar:
                if info.name in (MANIFEST, SIGNATURE):
                    continue
                _extract_checked(tar, info, manifest, dest, path)
                seen.add(info.name)
    except (tarfile.TarError, OSError) as exc:
        _clear(dest, manifest)
        raise ArtifactError(f"{path}: unreadable: {exc}") from None
    except ArtifactError:
        _clear(dest, manifest)
        raise
    missing = sorted(set(manifest.files) - seen)
    if missing:
        _clear(dest, manifest)
        raise ArtifactError(f"{path}: missing {', '.join(missing)} listed in {MANIFEST}")
    return manifest


def _extract_checked(
    tar: tarfile.TarFile, info: tarfile.TarInfo, manifest: Manifest, dest: Path, path: Path
) -> None:
    entry = manifest.files.get(info.name)
    if entry is None or not info.isfile():
        raise ArtifactError(f"{path}: {info.name} is not listed in the signed {MANIFEST}")
    if info.size != entry.size:
        raise ArtifactError(f"{path}: {info.name} is {info.size} bytes, signed as {entry.size}")
    stream = tar.extractfile(info)
    assert stream is not None
    target = dest / PurePosixPath(info.name).name
    digest = hashlib.sha256()
    with target.open("wb") as out:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
            out.write(block)
    if digest.hexdigest() != entry.sha256:
        target.unlink()
        raise ArtifactError(f"{path}: {info.name} does not match its signed sha256: tampered")


def _clear(dest: Path, manifest: Manifest) -> None:
    for name in manifest.wheel_names:
        (dest / name).unlink(missing_ok=True)


def check_not_downgrade(manifest: Manifest, running: str, downgrade: bool) -> None:
    """A lower version than the one running is refused unless the request says it is meant."""
    try:
        current = Version(running)
    except InvalidVersion:  # nothing (or an unversioned dev build) installed: no order to keep
        return
    if not downgrade and parse_version(manifest.version) < current:
        raise ArtifactError(
            f"release {manifest.version} is older than the running {running}: refused as a "
            "downgrade (ask again with downgrade set if that is what you mean)"
        )

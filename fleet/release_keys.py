"""The fleet's Ed25519 release key: made once, kept passphrase-encrypted in keys/release.key."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from factory_common.errors import FleetError
from fleet.layout import FleetLayout
from gateway_image.agent.artifact import key_id

PASSPHRASE_ENV = "FLEET_RELEASE_PASSPHRASE"
MIN_PASSPHRASE = 8


class ReleaseKeyError(FleetError, ValueError):
    """The release key is missing, unreadable, or the passphrase is wrong."""


def generate(layout: FleetLayout, passphrase: str) -> str:
    """Write keys/release.key (encrypted) and keys/release.pub; returns the key id."""
    if layout.release_key.exists():
        raise ReleaseKeyError(
            f"{layout.release_key} already exists: a new key would orphan every gateway "
            "that trusts the old one; delete it yourself if you really mean to rotate"
        )
    if len(passphrase) < MIN_PASSPHRASE:
        raise ReleaseKeyError(f"the passphrase needs at least {MIN_PASSPHRASE} characters")
    key = Ed25519PrivateKey.generate()
    layout.release_key.parent.mkdir(parents=True, exist_ok=True)
    secret = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    )
    _write_private(layout.release_key, secret)
    layout.release_pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key_id(key.public_key())


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)


def load(layout: FleetLayout, passphrase: str) -> Ed25519PrivateKey:
    try:
        data = layout.release_key.read_bytes()
    except FileNotFoundError:
        raise ReleaseKeyError(
            f"no release key at {layout.release_key}: run `fleet release keygen` first"
        ) from None
    try:
        key = serialization.load_pem_private_key(data, passphrase.encode())
    except (ValueError, TypeError):
        raise ReleaseKeyError(
            f"cannot decrypt {layout.release_key}: wrong passphrase (or not a PEM key)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ReleaseKeyError(f"{layout.release_key} is not an Ed25519 key")
    return key

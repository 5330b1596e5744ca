"""Resumable, hash-verified uploads over SFTP: a broken transfer continues where it stopped.

The file grows as `<name>.part` beside its final name; a retry appends only when the part
already on the gateway hashes like the same prefix of the local file (anything else starts
over), and the rename to the final name happens only after the whole file's sha256 matches.
"""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path
from typing import Protocol

from factory_common.errors import FleetError

CHUNK = 256 * 1024


class UploadError(FleetError, RuntimeError):
    """The upload could not be completed or did not verify."""


class Remote(Protocol):
    """What an upload needs from a connection: a command runner and an SFTP client."""

    def sha256(self, path: str) -> str | None: ...
    def size(self, path: str) -> int | None: ...
    def sftp(self) -> object: ...
    def run(self, command: str) -> str: ...


def prefix_sha256(path: Path, length: int) -> str:
    digest = hashlib.sha256()
    left = length
    with path.open("rb") as f:
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def upload(remote: Remote, local: Path, remote_dir: str, sha256: str) -> tuple[str, int]:
    """Put `local` at `remote_dir/<name>`; returns (remote path, bytes actually sent)."""
    final = f"{remote_dir.rstrip('/')}/{local.name}"
    part = f"{final}.part"
    remote.run(f"mkdir -p {shlex.quote(remote_dir)}")
    if remote.sha256(final) == sha256:
        return final, 0  # already there from an earlier try
    total = local.stat().st_size
    have = remote.size(part) or 0
    if have > total or (have and remote.sha256(part) != prefix_sha256(local, have)):
        have = 0  # not a prefix of this file: start over
    sftp = remote.sftp()
    sent = 0
    with local.open("rb") as source, sftp.open(part, "ab" if have else "wb") as target:  # type: ignore[attr-defined]
        target.set_pipelined(True)  # do not wait for an ack per 32 KiB write: ~10x faster
        source.seek(have)
        while chunk := source.read(CHUNK):
            target.write(chunk)
            sent += len(chunk)
    got = remote.sha256(part)
    if got != sha256:
        remote.run(f"rm -f {shlex.quote(part)}")
        raise UploadError(
            f"{final}: sha256 {got} after upload, expected {sha256}; the part was removed, "
            "retry the rollout step"
        )
    sftp.posix_rename(part, final)  # type: ignore[attr-defined]
    return final, sent

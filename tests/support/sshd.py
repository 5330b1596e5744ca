"""Real OpenSSH servers on loopback, one per simulated gateway, each with its own host key."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.support.ports import free_port, wait_for_port
from tests.support.requirements import require_binary

INSTALL_HINT = "run `sudo apt-get install openssh-server` (or `make deps`)"


def write_keypair(private: Path) -> str:
    """An Ed25519 key in OpenSSH format; returns the public line 'ssh-ed25519 AAAA...'."""
    key = ed25519.Ed25519PrivateKey.generate()
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    private.chmod(0o600)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return public.decode()


class Sshd:
    """`sshd -D` with its own config, host key and authorized_keys; no system sshd involved."""

    def __init__(self, workdir: Path, authorized: str) -> None:
        self.binary = require_binary("sshd", INSTALL_HINT)
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port = free_port()
        self.host_key = self.workdir / "host_ed25519"
        self.host_public = write_keypair(self.host_key)
        (workdir / "authorized_keys").write_text(authorized + "\n")
        self.config = workdir / "sshd_config"
        self.config.write_text(
            f"ListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
            f"PidFile {workdir / 'sshd.pid'}\nAuthorizedKeysFile {workdir / 'authorized_keys'}\n"
            # pytest's temp folders are not the owner-only paths StrictModes insists on.
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
            "PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n"
            "LogLevel ERROR\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, launcher: list[str] | None = None) -> Sshd:
        """Start sshd; `launcher` prefixes its command line (e.g. to give it its own mounts)."""
        if os.geteuid() == 0:
            # Run as root, sshd wants its privilege-separation directory (normally made by the
            # distribution's service unit, which these tests never start).
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        log = (self.workdir / "sshd.log").open("ab")
        self.process = subprocess.Popen(
            [
                *(launcher or []),
                self.binary,
                "-D",
                "-e",
                "-f",
                str(self.config),
                "-p",
                str(self.port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

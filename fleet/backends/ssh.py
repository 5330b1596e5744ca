"""The SSH backend (fabric): upload the artifact, drop the request in the agent's folder.

Ours, not fabric's: the wave-size cap (the runner's pool), a deadline per host around every
step (fabric's ThreadingGroup has neither), and host keys checked against the inventory
only: fabric's Connection installs paramiko's AutoAddPolicy, which would trust any key on
first use, so it is replaced by RejectPolicy with the one key the inventory holds.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import paramiko
from fabric import Config, Connection
from invoke.exceptions import CommandTimedOut, UnexpectedExit

from factory_common import wire
from fleet.backends.base import BackendError, Target, update_request
from fleet.backends.ssh_upload import UploadError, upload
from fleet.inventory import GatewayEntry, Inventory, SshSettings

T = TypeVar("T")


def host_and_port(gateway: GatewayEntry) -> tuple[str, int]:
    host, _, port = gateway.address.rpartition(":")
    if not host:
        return gateway.address, 22
    try:
        return host, int(port)
    except ValueError:
        raise BackendError(
            f"gateway {gateway.id}: address {gateway.address!r} is not host:port"
        ) from None


def parse_host_key(gateway: GatewayEntry) -> paramiko.PKey:
    if not gateway.host_key:
        raise BackendError(
            f"gateway {gateway.id} has no host_key in its inventory entry; the fleet never trusts "
            f"a key on first use: add it (ssh-keyscan on a trusted network, or from provisioning) "
            f"with `fleet devices add {gateway.id} --host-key '...'`"
        )
    try:
        kind, data = gateway.host_key.split()[:2]
        return paramiko.PKey.from_type_string(kind, base64.b64decode(data))
    except (ValueError, paramiko.SSHException) as exc:
        raise BackendError(f"gateway {gateway.id}: host_key is not 'type base64': {exc}") from None


def with_deadline(
    gateway: str, seconds: float, work: Callable[[], T], on_late: Callable[[], None]
) -> T:
    """Run `work` with a hard deadline; past it, `on_late` closes the connection to free the
    thread and the gateway counts as unreachable (a hung host never holds up its wave)."""
    box: dict[str, object] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["result"] = work()
        except BaseException as exc:  # handed back to the caller's thread as is
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name=f"ssh-{gateway}", daemon=True).start()
    if not done.wait(seconds):
        on_late()
        raise BackendError(
            f"gateway {gateway} did not answer within {seconds:.0f} s over SSH: check "
            f"`fleet devices show {gateway}`, its network and that it is powered"
        )
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]


class _Remote:
    """One gateway's connection, as the upload needs it."""

    def __init__(self, conn: Connection, timeout: float) -> None:
        self.conn, self.timeout = conn, timeout

    def run(self, command: str) -> str:
        return self.conn.run(command, hide=True, timeout=self.timeout, in_stream=False).stdout

    def sha256(self, path: str) -> str | None:
        q = shlex.quote(path)
        out = self.run(f"if [ -f {q} ]; then sha256sum {q}; fi").split()
        return out[0] if out else None

    def size(self, path: str) -> int | None:
        q = shlex.quote(path)
        out = self.run(f"if [ -f {q} ]; then wc -c < {q}; fi").strip()
        return int(out) if out else None

    def sftp(self) -> paramiko.SFTPClient:
        client = self.conn.sftp()
        client.get_channel().settimeout(self.timeout)
        return client


class SshBackend:
    name = "ssh"

    def __init__(self, inventory: Inventory, operator: str) -> None:
        self.settings: SshSettings = inventory.config.backends.ssh
        self.root = inventory.layout.root
        self.operator = operator

    @property
    def deadline_s(self) -> float:
        return self.settings.connect_timeout_s + self.settings.command_timeout_s

    def connection(self, gateway: GatewayEntry) -> Connection:
        """A fabric connection that trusts exactly the inventory's host key."""
        host, port = host_and_port(gateway)
        key = parse_host_key(gateway)
        s = self.settings
        kwargs: dict[str, object] = {
            "look_for_keys": False,
            "allow_agent": False,
            "banner_timeout": s.connect_timeout_s,
            "auth_timeout": s.connect_timeout_s,
        }
        if s.key is not None:
            kwargs["key_filename"] = str(s.key if s.key.is_absolute() else self.root / s.key)
        conn = Connection(
            host,
            user=s.user,
            port=port,
            connect_timeout=int(s.connect_timeout_s),
            connect_kwargs=kwargs,
            config=Config(overrides={"load_ssh_configs": False}),
        )
        conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        name = host if port == 22 else f"[{host}]:{port}"
        conn.client.get_host_keys().add(name, key.get_name(), key)
        return conn

    def _guarded(self, gateway: GatewayEntry, work: Callable[[Connection], T]) -> T:
        conn = self.connection(gateway)

        def run() -> T:
            try:
                conn.open()
                return work(conn)
            except paramiko.BadHostKeyException:
                raise BackendError(
                    f"gateway {gateway.id}: its SSH host key does not match the inventory: "
                    f"someone may be impersonating it, or it was reinstalled; check `fleet devices "
                    f"show {gateway.id}` and the host key"
                ) from None
            except paramiko.SSHException as exc:
                if "not found in known_hosts" in str(exc):
                    raise BackendError(f"gateway {gateway.id}: host key unknown: {exc}") from None
                raise BackendError(
                    f"gateway {gateway.id} unreachable over SSH ({exc}): check "
                    f"`fleet devices show {gateway.id}` and the host key"
                ) from None
            except (OSError, EOFError) as exc:
                raise BackendError(
                    f"gateway {gateway.id} unreachable over SSH ({exc}): check "
                    f"`fleet devices show {gateway.id}` and its network"
                ) from None
            except CommandTimedOut as exc:
                raise BackendError(
                    f"gateway {gateway.id}: a command timed out ({exc.timeout} s)"
                ) from None
            except UploadError as exc:
                raise BackendError(f"gateway {gateway.id}: {exc}") from None
            finally:
                conn.close()

        return with_deadline(gateway.id, self.deadline_s, run, conn.close)

    # ------------------------------------------------------------ the backend contract

    def request(self, gateway: GatewayEntry, target: Target, request_id: str) -> None:
        def work(conn: Connection) -> None:
            remote = _Remote(conn, self.settings.command_timeout_s)
            artifact = target.value if target.kind == "release" else ""
            if target.kind == "release" and target.path is not None:
                artifact, _ = upload(remote, target.path, self.settings.incoming_dir, target.sha256)
            request = update_request(gateway.id, target, request_id, self.operator, artifact)
            self._spool(remote, request)

        self._guarded(gateway, work)

    def _spool(self, remote: _Remote, request: wire.UpdateRequest) -> None:
        """Drop the request into the agent's folder atomically, named as the agent's own CLI
        names them (arrival time, then a digest of the id) so the agent takes them in order."""
        folder = f"{self.settings.agent_root.rstrip('/')}/requests"
        digest = hashlib.sha256(request.id.encode()).hexdigest()[:12]
        final = f"{folder}/{time.time_ns():020d}-{digest}.request.json"
        remote.run(f"mkdir -p {shlex.quote(folder)}")
        sftp = remote.sftp()
        with sftp.open(f"{folder}/.{digest}.tmp", "wb") as f:
            f.write(wire.encode(request))
        sftp.posix_rename(f"{folder}/.{digest}.tmp", final)

    def problems(self, gateways: list[GatewayEntry]) -> dict[str, str]:
        return {}

    # ------------------------------------------------------------ for fleet exec / logs

    def run(
        self, gateway: GatewayEntry, command: str, timeout: float | None = None
    ) -> tuple[int, str, str]:
        """Run a command; (exit code, stdout, stderr). Errors reaching it raise BackendError."""
        limit = timeout or self.settings.command_timeout_s

        def work(conn: Connection) -> tuple[int, str, str]:
            try:
                result = conn.run(command, hide=True, warn=True, timeout=limit, in_stream=False)
            except UnexpectedExit as exc:
                result = exc.result
            return result.exited, result.stdout, result.stderr

        return self._guarded(gateway, work)

    def known_hosts_line(self, gateway: GatewayEntry) -> str:
        host, port = host_and_port(gateway)
        name = host if port == 22 else f"[{host}]:{port}"
        return f"{name} {gateway.host_key}\n"

    def key_path(self) -> Path | None:
        s = self.settings.key
        return None if s is None else (s if s.is_absolute() else self.root / s)

"""Simulated gateway hosts: each its own sshd, its own disk, the update agent and the gateway.

Real gateways all keep the agent at the same paths (/opt/factory-gateway, /var/lib/...), and
the fleet's `backends.ssh` settings name those paths once for every gateway. To give five
hosts on one machine that same layout, each host runs in a private mount namespace
(`unshare --mount`) in which its own folder is bind-mounted over one shared mount point:
its sshd, and everything started through it or with `nsenter` into it (the agent, and the
gateway the agent supervises), see only that host's disk there. The test reads a host's files
through its folder (`disk`), which is the same directory seen from outside.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleet.inventory import GatewayEntry
from tests.support.pki import TestCA
from tests.support.processes import Child, wait_until
from tests.support.requirements import require_binary
from tests.support.sshd import Sshd

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE_HINT = "run the tests as root: each gateway host needs its own mount namespace"


def require_mount_namespaces() -> tuple[str, str]:
    """unshare and nsenter, and the privilege to make a mount namespace (root)."""
    unshare = require_binary("unshare", "run `sudo apt-get install util-linux`")
    nsenter = require_binary("nsenter", "run `sudo apt-get install util-linux`")
    if os.geteuid() != 0:
        message = f"private mount namespaces need CAP_SYS_ADMIN: {NAMESPACE_HINT}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return unshare, nsenter


def agent_command(name: str, *args: str) -> list[str]:
    """The project's `gateway-agent` console script (first boot runs it from the image)."""
    return [str(Path(sys.executable).with_name(name)), *args]


def gateway_config(
    gateway: str, broker_port: int, modbus_port: int, pki: TestCA, poll: float = 0.5
) -> dict[str, Any]:
    """The example anodizing config for `gateway`, over TLS with its own certificate (CN = id),
    polling fast and reporting its status every second so gates and trials decide quickly."""
    identity = pki.issue(gateway)
    config = yaml.safe_load((ROOT / "examples" / "anodizing-gateway.yaml").read_text())
    config["gateway"]["id"] = gateway
    config["mqtt"].update(
        host="127.0.0.1",
        port=broker_port,
        status_interval=1,
        batch_max_delay=0.1,
        tls={"ca": str(pki.cert_path), "cert": str(identity.cert), "key": str(identity.key)},
    )
    config["buffer"].update(sync_interval=0.1)
    for connector in config["connectors"]:
        connector.update(port=modbus_port, poll_interval=poll, timeout=1.0)
    return config


@dataclass
class GatewayHost:
    """One gateway: `mount` is where it sees its own disk (`workdir/disk`)."""

    gateway: str
    workdir: Path
    mount: Path
    authorized_key: str
    sshd: Sshd = field(init=False)
    agent: Child | None = None

    def __post_init__(self) -> None:
        self.disk.mkdir(parents=True, exist_ok=True)
        self.sshd = Sshd(self.workdir / "sshd", self.authorized_key)

    @property
    def disk(self) -> Path:
        return self.workdir / "disk"

    # Paths as the host sees them (inside its namespace) and as the test sees them.
    @property
    def agent_root(self) -> Path:
        return self.mount / "opt"

    @property
    def data_dir(self) -> Path:
        return self.mount / "data"

    def outside(self, inside: Path) -> Path:
        return self.disk / inside.relative_to(self.mount)

    @property
    def buffer_path(self) -> Path:
        return self.outside(self.data_dir) / "buffer.sqlite"

    @property
    def state_file(self) -> Path:
        return self.outside(self.agent_root) / "state.json"

    def start_sshd(self, unshare: str) -> None:
        """sshd in a new mount namespace where this host's disk covers the shared mount point."""
        bind = 'mount --bind "$0" "$1" && shift && exec "$@"'
        launcher = [unshare, "--mount", "--propagation", "private", "sh", "-c", bind]
        self.sshd.start([*launcher, str(self.disk), str(self.mount)])

    def inside(self, nsenter: str, args: list[str]) -> list[str]:
        """`args` run in this host's mount namespace (the one its sshd holds)."""
        assert self.sshd.process is not None
        return [nsenter, "--target", str(self.sshd.process.pid), "--mount", "--", *args]

    def install_first(self, nsenter: str, artifact: Path, config: Path, release_pub: Path) -> None:
        """First boot, as the image does it: the agent installs the release into slot A."""
        args = agent_command(
            "gateway-agent",
            "install-first",
            "--artifact",
            str(artifact),
            "--config",
            str(config),
            "--release-key",
            str(release_pub),
            "--root",
            str(self.agent_root),
            "--data-dir",
            str(self.data_dir),
        )
        done = subprocess.run(self.inside(nsenter, args), capture_output=True, text=True)
        assert done.returncode == 0, f"{self.gateway} first boot: {done.stdout}{done.stderr}"

    def flash_like(self, other: GatewayHost) -> None:
        """Give this host the release slot `other` installed, as if both SD cards had been
        written from one image: the same venv at the same path. The first boot still verifies
        the artifact and this host's config, and the agent's own check (the slot's record of
        the manifest it holds) is what lets it keep the slot rather than install it again."""
        slots = other.outside(other.agent_root) / "slots"
        shutil.copytree(slots, self.outside(self.agent_root) / "slots", symlinks=True)

    def start_agent(self, nsenter: str) -> None:
        """The agent as the image runs it: from the committed slot, supervising the gateway."""
        binary = self.agent_root / "committed" / "bin" / "gateway-agent"
        args = [str(binary), "run", "--root", str(self.agent_root)]
        args += ["--data-dir", str(self.data_dir), "--log-json"]
        self.agent = Child(f"agent-{self.gateway}", self.inside(nsenter, args), self.workdir)
        self.agent.start()

    def state(self) -> dict[str, Any]:
        """The agent's own record (state.json): committed release, phase, last request."""
        return json.loads(self.state_file.read_bytes()) if self.state_file.exists() else {}

    def gateway_pid(self) -> int:
        """The gateway process the agent runs now."""
        return int((self.outside(self.agent_root) / "run" / "gateway.pid").read_text())

    def gateway_log(self) -> str:
        path = self.outside(self.agent_root) / "run" / "gateway.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def entry(self, line: str) -> GatewayEntry:
        """Its inventory entry: the address and host key of its sshd."""
        return GatewayEntry(
            id=self.gateway,
            site="plant2",
            line=line,
            backend="ssh",
            address=self.sshd.address,
            host_key=self.sshd.host_public,
        )

    def stop(self) -> None:
        """Stop the agent (and the gateway it runs), then sshd; the namespace goes with them."""
        if self.agent is not None:
            self.agent.stop(30)
        pid_file = self.outside(self.agent_root) / "run" / "gateway.pid"
        if pid_file.exists():
            subprocess.run(["kill", pid_file.read_text().strip()], check=False)
        self.sshd.stop()


def wait_for_state(host: GatewayHost, check: Any, timeout: float, what: str) -> dict[str, Any]:
    """Wait until the agent's state.json satisfies `check`; the agent's log shows on timeout."""
    alive = (host.agent,) if host.agent is not None else ()
    found = wait_until(lambda: (s := host.state()) and check(s) and s, timeout, what, alive)
    return found  # type: ignore[return-value]


def copy_release(artifact: Path, releases_dir: Path) -> Path:
    """Put a built artifact where the fleet finds it (`fleet release build` writes there)."""
    releases_dir.mkdir(parents=True, exist_ok=True)
    target = releases_dir / artifact.name
    shutil.copyfile(artifact, target)
    return target

"""A real Mosquitto on a free loopback port that a test may stop and start again."""

from __future__ import annotations

import getpass
import subprocess
from pathlib import Path

from tests.support.ports import free_port, wait_for_port


class Mosquitto:
    def __init__(
        self, binary: str, workdir: Path, extra_config: str = "", persistent: bool = False
    ) -> None:
        self.binary = binary
        self.port = free_port()
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(
            # Run as whoever runs the tests: as root, Mosquitto would otherwise drop to the
            # `mosquitto` user, which cannot read pytest's private temp folders.
            f"user {getpass.getuser()}\n"
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            # Persistent like the shipped config when a test restarts the broker: sessions and
            # queued QoS-1 messages must survive, or a restart itself loses data.
            + (
                f"persistence true\npersistence_location {workdir}/\n"
                if persistent
                else "persistence false\n"
            )
            + f"log_dest file {workdir / 'mosquitto.log'}\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            "max_queued_messages 100000\n" + extra_config
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill9(self) -> None:
        """A crash or power cut: no shutdown save, so whatever was queued only in memory is gone."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def secured_broker(
    binary: str,
    workdir: Path,
    ca_cert: Path,
    broker_cert: Path,
    broker_key: Path,
    *,
    plugin: Path,
    acl_text: str | None = None,
    crl: Path | None = None,
) -> Mosquitto:
    """A Mosquitto running the project's shipped TLS + ACL config, with paths made local.

    `plugin` is the clientid-binding plugin built for the test session (the `clientid_plugin`
    fixture); it replaces the shipped config's `plugin` line."""
    shipped = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
    acl = workdir / "acl"
    workdir.mkdir(parents=True, exist_ok=True)
    acl.write_text(acl_text if acl_text is not None else (shipped / "acl").read_text())
    broker = Mosquitto(binary, workdir)
    lines = []
    for line in (shipped / "mosquitto.conf").read_text().splitlines():
        key = line.split(" ", 1)[0]
        replacements = {
            "listener": f"listener {broker.port} 127.0.0.1",
            "cafile": f"cafile {ca_cert}",
            "certfile": f"certfile {broker_cert}",
            "keyfile": f"keyfile {broker_key}",
            "crlfile": f"crlfile {crl}" if crl else "",
            "acl_file": f"acl_file {acl}",
            "plugin": f"plugin {plugin}",
            "persistence": "persistence false",
            "persistence_location": "",
        }
        lines.append(replacements.get(key, line))
    lines.append(f"log_dest file {workdir / 'mosquitto.log'}")
    lines.append(f"user {getpass.getuser()}")
    broker.config.write_text("\n".join(lines) + "\n")
    return broker

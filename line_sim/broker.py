"""Pick and describe the MQTT broker for the simulated line: Mosquitto if installed, else amqtt.

Mosquitto is the product's broker (deploy/mosquitto); amqtt, a maintained pure-Python broker, only
lets a machine without the Debian package still bring the line up. Either runs as its own
child process on 127.0.0.1, with its files under the run's data directory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from factory_common.errors import SimError

# "external": use a broker already running on --mqtt-port (tests that stop and restart it).
BrokerChoice = Literal["auto", "mosquitto", "embedded", "external"]


class BrokerUnavailable(SimError, RuntimeError):
    """The requested broker cannot run here; the message says what to install."""


@dataclass(frozen=True)
class BrokerPlan:
    kind: Literal["mosquitto", "amqtt", "external"]
    argv: list[str]  # empty for an external broker: nothing to start
    port: int

    def describe(self) -> str:
        if self.kind == "external":
            return f"external broker on 127.0.0.1:{self.port} (not started or stopped by this run)"
        if self.kind == "mosquitto":
            return f"Mosquitto ({self.argv[0]}) on 127.0.0.1:{self.port}"
        hint = "" if find_mosquitto() else " (`sudo apt-get install mosquitto` to use Mosquitto)"
        return f"embedded amqtt broker on 127.0.0.1:{self.port}{hint}"


def find_mosquitto() -> str | None:
    # Debian installs it in /usr/sbin, which is not on a normal user's PATH.
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if _exe(p)), None)


def _exe(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def mosquitto_config(port: int, workdir: Path) -> Path:
    """Write a private Mosquitto config: loopback only, anonymous, persistent sessions."""
    workdir.mkdir(parents=True, exist_ok=True)
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        # Persistence keeps the edge node's queued QoS 1 messages across a broker restart.
        "persistence true",
        f"persistence_location {workdir}/",
        "autosave_interval 30",
        "log_dest stdout",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "max_queued_messages 100000",
    ]
    if os.geteuid() == 0:
        # As root Mosquitto drops to user `mosquitto`, which cannot write the run's data dir.
        lines.append("user root")
    path = workdir / "mosquitto.conf"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def plan_broker(choice: BrokerChoice, port: int, workdir: Path) -> BrokerPlan:
    """Decide which broker runs and the command that starts it."""
    if choice == "external":
        return BrokerPlan("external", [], port)
    binary = find_mosquitto() if choice in ("auto", "mosquitto") else None
    if binary:
        config = mosquitto_config(port, workdir)
        return BrokerPlan("mosquitto", [binary, "-c", str(config)], port)
    if choice == "mosquitto":
        raise BrokerUnavailable(
            "mosquitto is not installed: `sudo apt-get install mosquitto`, "
            "or pass --broker embedded"
        )
    try:
        import amqtt  # noqa: F401
    except ImportError:
        raise BrokerUnavailable(
            "no MQTT broker available: install Mosquitto (`sudo apt-get install mosquitto`) "
            "or the embedded one (`pip install -e '.[sim]'`)"
        ) from None
    argv = [sys.executable, "-m", "line_sim", "broker", "--port", str(port)]
    return BrokerPlan("amqtt", argv, port)


# amqtt queues QoS 1 messages for a disconnected persistent session only when the client is not
# anonymous (amqtt/broker.py, the broadcast loop); with `allow_anonymous: False` any user name
# (no password) counts. So the line's clients connect with a user name, and the edge node's
# session keeps what arrives while it restarts, as it does on Mosquitto.
AMQTT_NEEDS_USERNAME = True


def amqtt_config(host: str, port: int) -> dict[str, object]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {
                "allow_anonymous": not AMQTT_NEEDS_USERNAME
            },
        },
    }


def _quiet_port_probes(record: logging.LogRecord) -> bool:
    """A TCP connect that sends nothing (a readiness or health probe) is not an error."""
    message = record.getMessage()
    return "No data" not in message and "fixed header" not in message


async def run_embedded(host: str, port: int) -> None:
    """Run amqtt in this process until cancelled (the `factory-line broker` command)."""
    from amqtt.broker import Broker

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("amqtt.broker").addFilter(_quiet_port_probes)
    broker = Broker(amqtt_config(host, port))
    await broker.start()
    print(f"amqtt broker listening on {host}:{port} (any user name, no password)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await broker.shutdown()

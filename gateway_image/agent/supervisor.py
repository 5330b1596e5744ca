"""Who runs the gateway process: systemd on a Pi, or the agent itself (tests, containers).

Both answer the same three questions the agent asks: (re)start it, stop it, and how many times
has it exited on its own since the last (re)start (a crash loop ends a trial early).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from factory_common.logs import get_logger

BACKOFF_MIN = 1.0
BACKOFF_MAX = 30.0
STOP_TIMEOUT = 20.0


class Supervisor(Protocol):
    def restart(self) -> None: ...

    def stop(self) -> None: ...

    def poll(self) -> int:
        """Keep the service running (restarting it after a back-off); exits since restart."""
        ...


class ProcessSupervisor:
    """Runs `command` as a child, restarts it when it exits, like systemd's Restart=always.

    Its pid is written to `pidfile`, so an agent started after a kill -9 stops the gateway the
    previous agent left behind before starting its own (never two gateways on one buffer).
    """

    def __init__(self, command: list[str], pidfile: Path, log: Path) -> None:
        self.command = command
        self.pidfile = pidfile
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None
        self.exits = 0
        self.next_start = 0.0
        self.log = get_logger(component="supervisor")

    def restart(self) -> None:
        self.stop()
        self.exits = 0
        self._start()

    def stop(self) -> None:
        process = self.process
        if process is not None:
            _terminate(process.pid, lambda: process.poll() is not None)
            process.wait()
            self.process = None
        else:
            self._stop_orphan()
        self.pidfile.unlink(missing_ok=True)

    def poll(self) -> int:
        if self.process is not None and self.process.poll() is not None:
            code = self.process.returncode
            self.process = None
            self.exits += 1
            delay = min(BACKOFF_MAX, BACKOFF_MIN * 2 ** (self.exits - 1))
            self.next_start = time.monotonic() + delay
            self.log.warning("gateway_exited", code=code, exits=self.exits, restart_in=delay)
        if self.process is None and time.monotonic() >= self.next_start:
            self._start()
        return self.exits

    def _start(self) -> None:
        self.pidfile.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                self.command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pidfile.write_text(f"{self.process.pid}\n")
        self.log.info("gateway_started", pid=self.process.pid)

    def _stop_orphan(self) -> None:
        try:
            pid = int(self.pidfile.read_text())
        except (FileNotFoundError, ValueError):
            return
        if _is_gateway(pid):
            self.log.info("stopping_orphaned_gateway", pid=pid)
            _terminate(pid, lambda: not _alive(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours is as good as dead (it is reaped by whoever started it).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _is_gateway(pid: int) -> bool:
    """The pid is still a gateway (pids are reused after a reboot)."""
    try:
        return b"gateway" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False


def _terminate(pid: int, check: Callable[[], bool]) -> None:
    """SIGTERM (the gateway's ordered shutdown), then SIGKILL after STOP_TIMEOUT."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not check():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return


class SystemdSupervisor:
    """The gateway as a systemd unit (Restart=always): the agent restarts it and reads
    NRestarts, which systemd counts for it."""

    def __init__(self, unit: str = "factory-gateway.service") -> None:
        self.unit = unit
        self.base = 0

    def restart(self) -> None:
        subprocess.run(["systemctl", "restart", self.unit], check=True, timeout=60)
        self.base = self._restarts()

    def stop(self) -> None:
        subprocess.run(["systemctl", "stop", self.unit], check=True, timeout=60)

    def poll(self) -> int:
        return self._restarts() - self.base

    def _restarts(self) -> int:
        out = subprocess.run(
            ["systemctl", "show", "--property=NRestarts", "--value", self.unit],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return int(out.stdout.strip() or 0)

"""Real child processes for end-to-end tests: logged to a file, stopped or killed on demand."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


class Child:
    """One product process (gateway, edge node, simulator) with its output in a log file."""

    def __init__(
        self, name: str, args: list[str], log_dir: Path, env: dict[str, str] | None = None
    ):
        self.name = name
        self.args = args
        self.log_path = log_dir / f"{name}.log"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.args, stdout=log_file, stderr=subprocess.STDOUT, env=self.env
        )
        log_file.close()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def console_script(name: str, *args: str) -> list[str]:
    """The venv's console script next to the running interpreter (as installed by pip)."""
    return [str(Path(sys.executable).with_name(name)), *args]


def wait_until(
    condition: Callable[[], object], timeout: float, what: str, children: tuple[Child, ...] = ()
) -> object:
    """Poll `condition` until it returns something truthy; on timeout, show the children's logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        for child in children:
            if not child.alive:
                raise AssertionError(
                    f"{child.name} exited early while waiting for {what}:\n{child.log()[-3000:]}"
                )
        time.sleep(0.1)
    logs = "\n".join(f"--- {c.name} ---\n{c.log()[-2000:]}" for c in children)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")

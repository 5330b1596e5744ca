"""Child processes of `factory-line run`: started in their own session, logs streamed with a
prefix and kept in a file, stopped with SIGTERM then SIGKILL after a timeout."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
from collections import deque
from pathlib import Path
from typing import TextIO

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if `factory-line run` itself is killed (even with -9)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def readable(line: str) -> str:
    """Render a structlog JSON line as `level event key=value`; anything else unchanged."""
    if not line.startswith("{"):
        return line
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict) or "event" not in record:
        return line
    level = str(record.pop("level", "info"))
    record.pop("timestamp", None)
    event = record.pop("event")
    rest = " ".join(f"{k}={v}" for k, v in record.items())
    return f"{level:<7} {event} {rest}".rstrip()


class Child:
    """One part of the line. `start` spawns it; `stop` ends it; `tail` shows its last lines."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, out: TextIO | None = None):
        self.name = name
        self.argv = argv
        self.log_path = log_dir / f"{name}.log"
        self.out = out or sys.stdout
        self.process: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self._last: deque[str] = deque(maxlen=30)

    async def start(self, cwd: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # Own session: Ctrl-C reaches only the orchestrator, which stops parts in order.
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        self._pump = asyncio.create_task(self._stream(), name=f"log-{self.name}")

    async def _stream(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        width = 9
        with self.log_path.open("a", encoding="utf-8") as log:
            while raw := await self.process.stdout.readline():
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                log.write(line + "\n")
                log.flush()
                self._last.append(line)
                self.out.write(f"{self.name:>{width}} | {readable(line)}\n")
                self.out.flush()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def returncode(self) -> int | None:
        return self.process.returncode if self.process else None

    async def wait(self) -> int:
        assert self.process is not None
        code = await self.process.wait()
        if self._pump is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._pump), 2)
        return code

    def tail(self, lines: int = 15) -> str:
        return "\n".join(list(self._last)[-lines:])

    async def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM, wait up to `grace` seconds, then SIGKILL."""
        if self.process is None:
            return None
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), grace)
            except TimeoutError:
                self.out.write(f"{self.name:>9} | did not stop in {grace:g}s: killing it\n")
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
        return await self.wait()

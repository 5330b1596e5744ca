"""A socat pty pair: two linked serial ports standing in for a cable or an RS-485 bus."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.support.requirements import require_binary


class PtyPair:
    """`a` and `b` are paths of two ptys; bytes written to one come out of the other."""

    def __init__(self, workdir: Path, log_hex: bool = False) -> None:
        self.a = workdir / "a"
        self.b = workdir / "b"
        self.log = workdir / "socat.log"
        self.log_hex = log_hex
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PtyPair:
        socat = require_binary("socat", "run `sudo apt-get install socat`")
        # -x: hex dump of every transfer with its direction, for frame-interleaving checks.
        flags = ["-d", "-d", "-x"] if self.log_hex else ["-d", "-d"]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    socat,
                    *flags,
                    f"pty,raw,echo=0,link={self.a}",
                    f"pty,raw,echo=0,link={self.b}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + 5
        while not (self.a.exists() and self.b.exists()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"socat did not create {self.a} and {self.b}: {self.log}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(5)
        self.process = None

"""An instrument that answers only when asked, on the far end of a socat pty pair.

Like a bench scale with a "send immediate weight" command: each request line gets one reply
line, optionally framed NMEA-style as `$BODY*HH` with the XOR of BODY in hex.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import serial

from gateway_image.firmware.connectors.serial_line.checksum import xor8


def nmea(body: str) -> bytes:
    return f"${body}*{xor8(body.encode()):02X}".encode()


class AskedInstrument:
    """Answers `replies[command]()` to each command received; unknown commands get silence."""

    def __init__(self, port: Path, replies: dict[bytes, Callable[[], bytes]]) -> None:
        self.serial = serial.Serial(str(port), 9600, timeout=0.05)
        self.replies = replies
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> AskedInstrument:
        self._thread.start()
        return self

    def _serve(self) -> None:
        pending = b""
        while not self._stop.is_set():
            pending += self.serial.read(64)
            for command in list(self.replies):
                if command in pending:
                    _, _, pending = pending.partition(command)
                    self.received.append(command)
                    self.serial.write(self.replies[command]())
                    self.serial.flush()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.serial.close()

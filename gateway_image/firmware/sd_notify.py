"""systemd's notify protocol (sd_notify(3)): READY=1 once running, WATCHDOG=1 while alive.

With `Type=notify` and `WatchdogSec=` in factory-gateway.service, systemd restarts a gateway
whose event loop stops petting it. Outside systemd NOTIFY_SOCKET is unset and this does
nothing. The protocol is one datagram per message on a Unix socket; a name starting with '@'
is in the abstract namespace.
"""

from __future__ import annotations

import os
import socket


def notify(message: str, environ: dict[str, str] | None = None) -> bool:
    """Send `message` to systemd; False when not started by systemd (or it is gone)."""
    address = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError:
        return False
    return True

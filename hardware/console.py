"""Find a Linux serial console on a port a connector uses, from the kernel command line.

A `console=serial0,115200` left in cmdline.txt puts a login prompt and boot messages on the
header UART: onto the RS-485 bus or into the RS-232 instrument wired there. Pure: the caller
reads /proc/cmdline (the running kernel) or the boot partition's cmdline.txt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hardware.profiles import BoardProfile
from hardware.serial_checks import port_key

CMDLINE_FILES = ("/boot/firmware/cmdline.txt", "/boot/cmdline.txt")
VIRTUAL = re.compile(r"tty\d+")


def console_ports(cmdline: str) -> list[tuple[str, str]]:
    """(console= word, device path) for every serial console on the command line."""
    found = []
    for word in cmdline.split():
        if not word.startswith("console="):
            continue
        name = word.removeprefix("console=").split(",", 1)[0]
        if VIRTUAL.fullmatch(name) or not name.startswith(("tty", "serial")):
            continue  # tty0..ttyN are the screen's virtual terminals, not serial ports
        found.append((word, f"/dev/{name}"))
    return found


def consoles_on_buses(
    cmdline: str, ports: Sequence[tuple[str, str]], board: BoardProfile, source: str
) -> list[tuple[str, str]]:
    """(connector, message) for each connector whose port a serial console shares."""
    messages = []
    for word, device in console_ports(cmdline):
        for connector, port in ports:
            if port_key(device, board) != port_key(port, board):
                continue
            messages.append(
                (
                    connector,
                    f"serial console on {port}: {source} has {word}, so a login prompt and boot "
                    f"messages go out on the line of connector {connector!r}; remove {word!r} from "
                    f"{CMDLINE_FILES[0]} (keep the rest of the line) and reboot",
                )
            )
    return messages


def read_cmdline(paths: Sequence[str]) -> tuple[str, str] | None:
    """(text, path) of the first readable command line: the running kernel's, else the file
    the next boot reads; None when neither exists (not a Pi, or a container without them)."""
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read(), path
        except OSError:
            continue
    return None

"""Free loopback ports and waiting for a listener."""

from __future__ import annotations

import itertools
import os
import random
import socket
import time
from pathlib import Path

# Ports are handed out below the kernel's ephemeral range, each pytest-xdist worker from its
# own slice of it. Why: between free_port() returning and the service binding, a port taken
# from the ephemeral range (bind to 0) could go to another worker's free_port() or to any
# outgoing connection; below the range only this worker ever picks it.
_LOWEST = 10_000
_SLICES = 8


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def _slice() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) % _SLICES if worker.isdigit() else 0
    width = (_ephemeral_low() - _LOWEST) // _SLICES
    first = _LOWEST + index * width
    return range(first, first + width)


def _cycle() -> itertools.cycle[int]:
    """The slice's ports in turn from a random one: another test run on the same machine
    (a developer's beside CI's) then starts elsewhere in the slice, as bind(0) would."""
    ports = _slice()
    at = random.randrange(len(ports))
    return itertools.cycle([*ports[at:], *ports[:at]])


_candidates = _cycle()


def free_port() -> int:
    """A loopback port nothing listens on or holds right now, from this worker's slice."""
    for _ in range(len(_slice())):
        port = next(_candidates)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use (or in TIME_WAIT): the next one
            return port
    raise RuntimeError("no free loopback port in this test worker's slice")


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")

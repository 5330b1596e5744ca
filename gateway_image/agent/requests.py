"""The agent's request folder: MQTT and the local CLI (over SSH) both drop requests here.

One encoded `UpdateRequest` per file, written atomically and named by arrival time, so the
agent takes them in order and a request survives a restart of the agent until handled.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from factory_common import wire
from gateway_image.agent.slots import write_atomic

SUFFIX = ".request.json"


def spool(directory: Path, request: wire.UpdateRequest) -> Path:
    digest = hashlib.sha256(request.id.encode()).hexdigest()[:12]
    path = directory / f"{time.time_ns():020d}-{digest}{SUFFIX}"
    write_atomic(path, wire.encode(request))
    return path


def next_request(directory: Path) -> tuple[Path, wire.UpdateRequest | wire.WireError] | None:
    """The oldest waiting request, or the error that makes its file unusable."""
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        try:
            return path, wire.decode(path.read_bytes(), wire.UpdateRequest)
        except wire.WireError as exc:
            return path, wire.WireError(f"{path}: {exc}")
    return None

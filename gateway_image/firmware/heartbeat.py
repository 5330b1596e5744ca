"""A file whose age says the gateway's event loop is alive: the container's health check.

Devices may all be switched off and the broker away, so "data moved recently" is no sign of
health; a loop that still touches this file every few seconds is. Run as
`python -m gateway_image.firmware.heartbeat DIR [MAX_AGE_S]`: exit 0 when every heartbeat
file in DIR is fresh (one per gateway process), 1 otherwise.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from gateway_image.firmware.sd_notify import notify

SUFFIX = ".heartbeat"
INTERVAL_S = 10.0
MAX_AGE_S = 60.0


def heartbeat_path(buffer_path: Path) -> Path:
    """One per gateway process, beside its buffer (buffer.sqlite -> buffer.heartbeat)."""
    return buffer_path.with_suffix(SUFFIX)


async def beat_forever(path: Path, interval: float = INTERVAL_S) -> None:
    """Touch `path` and pet systemd's watchdog every `interval` s (READY=1 on the first beat)."""
    try:
        notify("READY=1")
        while True:
            # In a thread: an SD card can stall a metadata write for a long moment.
            await asyncio.to_thread(path.touch)
            notify("WATCHDOG=1")
            await asyncio.sleep(interval)
    finally:
        # Once, at shutdown, where a short block does no harm: a stopped gateway is not healthy.
        path.unlink(missing_ok=True)  # noqa: ASYNC240


def all_fresh(directory: Path, max_age: float = MAX_AGE_S, now: float | None = None) -> bool:
    beats = list(directory.glob(f"*{SUFFIX}"))
    now = time.time() if now is None else now
    try:
        return bool(beats) and all(now - beat.stat().st_mtime < max_age for beat in beats)
    except FileNotFoundError:  # removed by a gateway stopping right now
        return False


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print("usage: python -m gateway_image.firmware.heartbeat DIR [MAX_AGE_S]", file=sys.stderr)
        return 2
    max_age = float(argv[1]) if len(argv) == 2 else MAX_AGE_S
    return 0 if all_fresh(Path(argv[0]), max_age) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

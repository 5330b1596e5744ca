"""The gateway's heartbeat file: the container health check's view of a live event loop."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from gateway_image.firmware.heartbeat import all_fresh, beat_forever, heartbeat_path, main


def test_heartbeat_sits_beside_the_buffer() -> None:
    assert heartbeat_path(Path("/data/buffer.grp.sqlite")) == Path("/data/buffer.grp.heartbeat")


async def test_beating_keeps_the_file_fresh_and_stopping_removes_it(tmp_path: Path) -> None:
    beat = heartbeat_path(tmp_path / "buffer.sqlite")
    task = asyncio.create_task(beat_forever(beat, interval=0.01))
    await asyncio.sleep(0.05)
    assert all_fresh(tmp_path, max_age=1)
    assert main([str(tmp_path), "1"]) == 0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not beat.exists()
    assert main([str(tmp_path)]) == 1  # no heartbeat at all: not healthy


def test_a_stale_heartbeat_of_any_process_is_unhealthy(tmp_path: Path) -> None:
    fresh, stale = tmp_path / "a.heartbeat", tmp_path / "b.heartbeat"
    fresh.touch()
    stale.touch()
    old = time.time() - 120
    os.utime(stale, (old, old))
    assert not all_fresh(tmp_path, max_age=60)
    stale.unlink()
    assert all_fresh(tmp_path, max_age=60)


def test_wrong_arguments_print_usage(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err

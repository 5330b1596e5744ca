"""The gateway tells systemd it is ready and alive, over a real notify socket."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import pytest

from gateway_image.firmware import heartbeat
from gateway_image.firmware.sd_notify import notify


def test_without_systemd_nothing_is_sent() -> None:
    assert notify("READY=1", environ={}) is False


async def test_heartbeat_sends_ready_then_watchdog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = str(tmp_path / "notify.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(address)
    receiver.settimeout(10)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    beat = asyncio.create_task(heartbeat.beat_forever(tmp_path / "gw.heartbeat", interval=0.05))
    try:
        messages = [await asyncio.to_thread(receiver.recv, 64) for _ in range(3)]
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        receiver.close()
    assert messages == [b"READY=1", b"WATCHDOG=1", b"WATCHDOG=1"]
    assert not (tmp_path / "gw.heartbeat").exists()  # removed when the gateway stops


def test_abstract_namespace_socket() -> None:
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"factory-notify-test-{id(receiver)}"
    receiver.bind("\0" + name)
    receiver.settimeout(5)
    try:
        assert notify("WATCHDOG=1", environ={"NOTIFY_SOCKET": "@" + name})
        assert receiver.recv(64) == b"WATCHDOG=1"
    finally:
        receiver.close()

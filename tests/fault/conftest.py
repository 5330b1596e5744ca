"""Fixtures for fault tests: a Mosquitto with persistence on, and the rig of real processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fault.rig import Rig
from tests.support.broker import Mosquitto
from tests.support.requirements import require_binary


@pytest.fixture
def persistent_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """Like the shared `mosquitto` fixture, but with persistence on (as deploy/mosquitto ships
    it): QoS 1 messages queued for the edge's persistent session survive a broker restart."""
    binary = require_binary("mosquitto", "run `sudo apt-get install mosquitto` (or `make deps`)")
    broker = Mosquitto(binary, tmp_path / "mosquitto", persistent=True)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def rig(tmp_path: Path, persistent_broker: Mosquitto) -> Iterator[Rig]:
    processes = Rig(tmp_path / "rig", persistent_broker)
    yield processes
    processes.stop_all()

"""Fixtures for whole-line tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.line import Line
from tests.support.broker import Mosquitto


@pytest.fixture
def line(tmp_path: Path, persistent_mosquitto: Mosquitto) -> Iterator[Line]:
    running = Line(tmp_path, persistent_mosquitto.port).start()
    yield running
    running.stop()

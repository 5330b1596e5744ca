"""Fixtures shared by every test tier."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support.broker import Mosquitto, secured_broker
from tests.support.clientid_plugin import build_clientid_plugin
from tests.support.mariadb import mariadb_db, mariadb_server  # noqa: F401 (fixtures)
from tests.support.pki import TestCA
from tests.support.postgres import postgres_url  # noqa: F401 (fixture)
from tests.support.ptypair import PtyPair
from tests.support.releases import Releases, build_releases
from tests.support.requirements import require_binary
from tests.support.wheel import build_wheel

# Hypothesis's per-example deadline is wall time: on the shared, loaded 2-core machine a
# millisecond decode can stall past 200 ms and fail a property that holds. Speed goals live
# in bench/, so no property test here is timed.
settings.register_profile("factory-edge", deadline=None)
settings.load_profile("factory-edge")

# pytest-xdist starts its workers with COLUMNS=80 and LINES=24 in their environment. The CLIs'
# rich consoles, made when a test module imports them, would keep that width for good, and a
# test's CliRunner(env={"COLUMNS": ...}) could no longer widen the tables it reads.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for name in ("COLUMNS", "LINES"):
        os.environ.pop(name, None)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A private broker per test, so a test may stop it without disturbing others."""
    binary = require_binary("mosquitto", "run `sudo apt-get install mosquitto` (or `make deps`)")
    broker = Mosquitto(binary, tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def persistent_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A private broker that keeps sessions and queued messages across stop()/start()."""
    binary = require_binary("mosquitto", "run `sudo apt-get install mosquitto` (or `make deps`)")
    broker = Mosquitto(binary, tmp_path / "mosquitto", persistent=True)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def pki(tmp_path: Path) -> TestCA:
    """A throwaway certificate authority for TLS tests."""
    return TestCA(tmp_path / "pki")


@pytest.fixture(scope="session")
def clientid_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped config's clientid-binding Mosquitto plugin, compiled once per session."""
    return build_clientid_plugin(tmp_path_factory.mktemp("clientid-binding"))


@pytest.fixture
def secure_broker(tmp_path: Path, pki: TestCA, clientid_plugin: Path) -> Iterator[Mosquitto]:
    """Mosquitto running the shipped TLS + ACL config (deploy/mosquitto) with the test's PKI."""
    binary = require_binary("mosquitto", "run `sudo apt-get install mosquitto`")
    server = pki.issue("localhost", server=True)
    broker = secured_broker(
        binary,
        tmp_path / "broker",
        pki.cert_path,
        server.cert,
        server.key,
        plugin=clientid_plugin,
        crl=pki.crl(),
    )
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def project_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project wheel, built once per session (packaging and per-extra install tests)."""
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Releases:
    """Signed release artifacts built once per session (1.0.0, a good 1.1.0, a crashing 1.2.0)."""
    return build_releases(tmp_path_factory.mktemp("releases"))


@pytest.fixture
def pty(tmp_path: Path) -> Iterator[PtyPair]:
    """A socat pty pair: a serial cable (or an RS-485 bus) between `a` and `b`."""
    pair = PtyPair(tmp_path).start()
    yield pair
    pair.stop()

"""PostgreSQL for tests: a fresh database per test on the shared 127.0.0.1:5432 (trust)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest

HOST = os.environ.get("FACTORY_TEST_PG_HOST", "127.0.0.1")
PORT = int(os.environ.get("FACTORY_TEST_PG_PORT", "5432"))
USER = os.environ.get("FACTORY_TEST_PG_USER", "postgres")
INSTALL_HINT = "run `sudo apt-get install postgresql` and allow trust logins on 127.0.0.1"


def _admin() -> psycopg.Connection:
    return psycopg.connect(
        host=HOST, port=PORT, user=USER, dbname="postgres", autocommit=True, connect_timeout=5
    )


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy-style URL of a uniquely named, empty database, dropped after the test."""
    try:
        admin = _admin()
    except psycopg.OperationalError as exc:
        message = f"no PostgreSQL on {HOST}:{PORT} as {USER} ({exc}): {INSTALL_HINT}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    name = f"t_{secrets.token_hex(6)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{USER}@{HOST}:{PORT}/{name}"
    finally:
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

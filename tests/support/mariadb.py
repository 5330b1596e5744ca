"""MariaDB for tests: a private server that stops and restarts, or a fresh shared database."""

from __future__ import annotations

import getpass
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest

from tests.support.ports import free_port
from tests.support.requirements import require_binary

SHARED_HOST = os.environ.get("FACTORY_TEST_MARIADB_HOST", "127.0.0.1")
SHARED_PORT = int(os.environ.get("FACTORY_TEST_MARIADB_PORT", "3306"))
SHARED_USER = os.environ.get("FACTORY_TEST_MARIADB_USER", "root")
SHARED_PASSWORD = os.environ.get("FACTORY_TEST_MARIADB_PASSWORD", "")
INSTALL_HINT = "run `sudo apt-get install mariadb-server` (or `make deps`)"


@dataclass(frozen=True)
class Database:
    """Where one test database lives; `connect()` opens an autocommit pymysql connection."""

    host: str
    port: int
    user: str
    password: str
    name: str

    def connect(self, database: str | None = "", **kwargs: object) -> pymysql.Connection:
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=self.name if database == "" else database,
            autocommit=True,
            connect_timeout=5,
            read_timeout=30,
            write_timeout=30,
            init_command="SET time_zone = '+00:00'",  # DATETIMEs read back as UTC
            **kwargs,
        )

    @property
    def url(self) -> str:
        password = f":{self.password}" if self.password else ""
        return f"mysql://{self.user}{password}@{self.host}:{self.port}/{self.name}"

    def execute(self, sql: str, args: object = None) -> list[tuple]:
        """Run one statement in this database and return its rows (for test assertions)."""
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())


class MariaDBServer:
    """A private mariadbd on a free loopback port; stop() and start() keep its data and port."""

    def __init__(self, workdir: Path, port: int | None = None, options: Sequence[str] = ()) -> None:
        """`options`: extra mariadbd arguments, after (so overriding) the small defaults."""
        self.mariadbd = require_binary("mariadbd", INSTALL_HINT)
        self.install_db = require_binary("mariadb-install-db", INSTALL_HINT)
        self.workdir = workdir
        self.datadir = workdir / "data"
        self.log = workdir / "mariadbd.err"
        # A unix socket path must fit in 108 bytes; pytest's tmp paths can be longer.
        self._sockdir = Path(tempfile.mkdtemp(prefix="mdb"))
        self.socket = self._sockdir / "sock"
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.user = "root"
        self.password = ""
        self.options = list(options)
        self.process: subprocess.Popen[bytes] | None = None

    def install(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                self.install_db,
                "--no-defaults",
                f"--datadir={self.datadir}",
                f"--user={getpass.getuser()}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ],
            capture_output=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"mariadb-install-db failed ({result.returncode}):\n"
                f"{result.stderr.decode(errors='replace')[-2000:]}"
            )

    def start(self, timeout: float = 20.0) -> None:
        if not self.datadir.exists():
            self.install()
        self.process = subprocess.Popen(
            [
                self.mariadbd,
                "--no-defaults",
                f"--datadir={self.datadir}",
                f"--port={self.port}",
                f"--bind-address={self.host}",
                f"--socket={self.socket}",
                f"--pid-file={self.workdir / 'mariadbd.pid'}",
                f"--log-error={self.log}",
                # mariadbd refuses to run as root unless told to; the tests run as whoever.
                f"--user={getpass.getuser()}",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=16M",
                "--innodb-log-file-size=8M",
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited early:\n{self._log_tail()}")
            try:
                self.connect(None).close()
                return
            except pymysql.err.OperationalError:
                time.sleep(0.05)
        raise TimeoutError(f"mariadbd not ready on port {self.port} after {timeout}s")

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def stop(self, kill: bool = False, timeout: float = 30.0) -> None:
        """Shut down (SIGTERM, clean) or kill (SIGKILL, like a power cut); data stays.
        A clean shutdown taking longer than `timeout` is killed (a big dirty buffer pool
        takes minutes to flush: pass more)."""
        if self.process is not None and self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def connect(self, database: str | None = None) -> pymysql.Connection:
        return self.database(database or "").connect(database)

    def database(self, name: str) -> Database:
        return Database(self.host, self.port, self.user, self.password, name)

    def create_database(self, name: str) -> Database:
        with self.connect(None) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
        return self.database(name)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._sockdir, ignore_errors=True)


def shared_server_or_skip() -> None:
    """Skip (locally) or fail (in CI) when the shared MariaDB does not answer."""
    try:
        pymysql.connect(
            host=SHARED_HOST,
            port=SHARED_PORT,
            user=SHARED_USER,
            password=SHARED_PASSWORD,
            connect_timeout=3,
        ).close()
    except pymysql.err.OperationalError as exc:
        message = (
            f"no MariaDB on {SHARED_HOST}:{SHARED_PORT} as {SHARED_USER} ({exc}): "
            f"{INSTALL_HINT} and start it, or set FACTORY_TEST_MARIADB_HOST/PORT/USER/PASSWORD"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def mariadb_server(tmp_path: Path) -> Iterator[MariaDBServer]:
    """A private MariaDB per test (about 1 s to set up), so the test may stop and restart it."""
    server = MariaDBServer(tmp_path / "mariadb")
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def mariadb_db() -> Iterator[Database]:
    """A fresh, uniquely named database on the shared server, dropped after the test."""
    shared_server_or_skip()
    db = Database(
        SHARED_HOST, SHARED_PORT, SHARED_USER, SHARED_PASSWORD, f"t_{secrets.token_hex(6)}"
    )
    with db.connect(None) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{db.name}` CHARACTER SET utf8mb4")
    try:
        yield db
    finally:
        with db.connect(None) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db.name}`")

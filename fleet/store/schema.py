"""One schema, written once in SQLAlchemy Core, for SQLite, PostgreSQL and MariaDB alike."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

metadata = sa.MetaData()

rollouts = sa.Table(
    "fleet_rollouts",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("target", sa.String(128), nullable=False),
    sa.Column("selector", sa.Text, nullable=False),
    sa.Column("operator", sa.String(128), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("policy", sa.Text, nullable=False),  # JSON
    sa.Column("waves", sa.Integer, nullable=False),
    sa.Column("wave", sa.Integer, nullable=False),
    sa.Column("wave_done_at", sa.Float, nullable=False),
    # An operator command (pause, resume, abort, rollback) the driving CLI has not yet applied.
    sa.Column("command", sa.String(16), nullable=True),
    sa.Column("command_by", sa.String(128), nullable=True),
    # Which CLI drives the rollout ("who@host:pid") and until when, so two never do at once.
    sa.Column("driver", sa.String(255), nullable=True),
    sa.Column("driver_until", sa.Float, nullable=False, default=0.0),
)

steps = sa.Table(
    "fleet_steps",
    metadata,
    sa.Column("rollout_id", sa.String(64), sa.ForeignKey("fleet_rollouts.id"), primary_key=True),
    sa.Column("gateway", sa.String(64), primary_key=True),
    sa.Column("wave", sa.Integer, nullable=False),
    sa.Column("previous", sa.String(128), nullable=False),
    sa.Column("phase", sa.String(16), nullable=False),
    sa.Column("requested_at_ns", sa.BigInteger, nullable=False),
    sa.Column("baseline_seq", sa.BigInteger, nullable=False),
    sa.Column("deadline", sa.Float, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("failed", sa.Boolean, nullable=False),
    sa.Column("reverted", sa.Boolean, nullable=False),
)

# One row per gateway a live rollout holds: the primary key makes two overlapping rollouts
# collide inside the database, whichever process or machine starts them.
claims = sa.Table(
    "fleet_claims",
    metadata,
    sa.Column("gateway", sa.String(64), primary_key=True),
    sa.Column("rollout_id", sa.String(64), nullable=False),
    sa.Column("operator", sa.String(128), nullable=False),
    sa.Column("claimed_at", sa.Float, nullable=False),
)

# Append-only: the store has no code path that updates or deletes a row here.
audit = sa.Table(
    "fleet_audit",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("operator", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("result", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)

_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}


def normalise_url(url: str | None, default_sqlite: Path) -> str:
    """The URL in fleet.yaml, with the driver this project installs; SQLite by default."""
    if not url:
        return f"sqlite:///{default_sqlite}"
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"state_url {url!r}: expected scheme://..., e.g. postgresql://host/db")
    return f"{_DRIVERS.get(scheme, scheme)}://{rest}"


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    # WAL lets `fleet status` read while a rollout writes; a 30 s busy wait lets two
    # operators' processes take turns instead of failing with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def open_engine(url: str) -> sa.Engine:
    """An engine with the schema created (idempotent) on first use."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    try:
        metadata.create_all(engine)
    except sa.exc.DBAPIError:
        # Two CLIs creating the schema at once on a server: the loser finds the tables there.
        metadata.create_all(engine)
    return engine

"""Connections to the central MariaDB/MySQL with bounded timeouts, and one error type for them."""

from __future__ import annotations

import pymysql

from edge_node.cloud.config import CloudConfig
from factory_common.errors import EdgeError


class CloudError(EdgeError, RuntimeError):
    """The cloud database is unreachable or refused a statement; the message says which."""


# What talking to the cloud can raise: pymysql's errors (network, refused, SQL) and the
# socket's own. Callers turn these into CloudError / sync status, never into a crash.
CLOUD_ERRORS = (pymysql.err.Error, OSError, TimeoutError)


def connect(config: CloudConfig) -> pymysql.Connection:
    """A new connection in UTC with autocommit off; raises CloudError naming host and db."""
    try:
        return pymysql.connect(
            host=config.host,
            port=config.port,
            user=config.user,
            password=config.password.get_secret_value() if config.password else "",
            database=config.database,
            connect_timeout=config.connect_timeout,
            read_timeout=config.query_timeout,
            write_timeout=config.query_timeout,
            charset="utf8mb4",
            autocommit=False,
            init_command="SET time_zone = '+00:00'",
        )
    except CLOUD_ERRORS as exc:
        raise CloudError(describe(config, exc)) from None


def describe(config: CloudConfig, exc: BaseException) -> str:
    where = f"{config.user}@{config.host}:{config.port}/{config.database}"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, pymysql.err.ProgrammingError) and exc.args and exc.args[0] == 1146:
        text += "; apply deploy/cloud/central_schema.sql to this database"
    return f"cloud database {where}: {text}"

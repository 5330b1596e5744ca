"""What every fleet command shares: the fleet directory option, errors, exit codes, --json."""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import sqlalchemy as sa
import typer
from pydantic import ValidationError
from rich.console import Console

from factory_common.config import ConfigError, format_path
from fleet.inventory import Inventory, load_inventory
from fleet.layout import FleetLayout
from fleet.selectors import SelectorError
from fleet.store.rollouts import StateStore
from fleet.store.schema import normalise_url


class Exit(IntEnum):
    """Exit codes scripts can rely on (also listed in docs/fleet.md)."""

    OK = 0
    FAILED = 1  # the work ran and something failed: a rollout halted, a command failed somewhere
    INPUT = 2  # bad input: a config, a selector, an unknown gateway or rollout
    REFUSED = 3  # refused: another rollout holds the gateways, a host key does not match
    UNREACHABLE = 4  # the broker, database or backend could not be reached


FleetDir = Annotated[
    Path | None,
    typer.Option(
        "--fleet-dir", "-C", envvar="FLEET_DIR", help="The fleet directory (default: here)."
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
Operator = Annotated[
    str | None,
    typer.Option("--operator", envvar="FLEET_OPERATOR", help="Who you are, for the audit log."),
]

out = Console()
err = Console(stderr=True)


def operator_name(given: str | None) -> str:
    return given or f"{getpass.getuser()}@{socket.gethostname()}"


def fail(message: str, code: Exit = Exit.INPUT) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(int(code))


@contextmanager
def input_errors() -> Iterator[None]:
    """Turn bad input into one clear message and the INPUT exit code."""
    try:
        yield
    except ConfigError as exc:
        fail("\n".join(exc.problems))
    except SelectorError as exc:
        fail(str(exc))
    except ValidationError as exc:  # a model built from options, not a file: name the option
        fail("; ".join(f"{format_path(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()))
    except KeyError as exc:
        fail(str(exc.args[0]) if exc.args else str(exc))


def layout_of(fleet_dir: Path | None) -> FleetLayout:
    return FleetLayout((fleet_dir or Path.cwd()).resolve())


def inventory_of(fleet_dir: Path | None) -> Inventory:
    with input_errors():
        return load_inventory(layout_of(fleet_dir))


def store_of(inventory: Inventory) -> StateStore:
    url = normalise_url(inventory.config.state_url, inventory.layout.state_db)
    try:
        return StateStore(url)
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        fail(
            f"cannot open the state store {inventory.config.state_url or url}: {exc}; "
            "check state_url in fleet.yaml",
            Exit.UNREACHABLE,
        )


def emit_json(data: Any) -> None:
    """One JSON document on stdout (for listings) or one event per line (for progress)."""
    sys.stdout.write(json.dumps(data, default=str) + "\n")
    sys.stdout.flush()


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")

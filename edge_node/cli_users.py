"""`edge-node user ...`: add, list, remove users and set passwords in the edge's users file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edge_node.auth.users import Role, UserError, UserStore
from edge_node.config import AuthConfig, load_edge_config
from factory_common.config import ConfigError

app = typer.Typer(help="Users of the web page and API (roles: viewer, operator, engineer).")

DataDir = Annotated[
    Path, typer.Option(help="the edge node's --data-dir (the users file lives there)")
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="edge config YAML, for a non-default auth.path")
]
PasswordFile = Annotated[
    Path | None,
    typer.Option(help="read the password from this file's first line instead of prompting"),
]


def _open(data_dir: Path, config: Path | None) -> UserStore:
    auth = AuthConfig()
    if config is not None:
        try:
            auth = load_edge_config(config).auth
        except ConfigError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
    return UserStore(auth.resolve_path(data_dir))


def _password(password_file: Path | None) -> str:
    if password_file is None:
        return typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        lines = password_file.read_text().splitlines()
    except OSError as exc:
        typer.echo(f"cannot read --password-file: {exc}", err=True)
        raise typer.Exit(2) from None
    if not lines:
        typer.echo(f"--password-file {password_file} is empty", err=True)
        raise typer.Exit(2)
    return lines[0]


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"edge-node user: {exc}", err=True)
    return typer.Exit(1)


@app.command()
def add(
    name: str,
    role: Annotated[str, typer.Option(help="viewer, operator or engineer")],
    data_dir: DataDir = Path("data/edge"),
    config: ConfigOpt = None,
    password_file: PasswordFile = None,
) -> None:
    """Add a user (the password is asked for twice, or read from --password-file)."""
    try:
        parsed = Role.parse(role)
    except ValueError as exc:
        raise _fail(exc) from None
    users = _open(data_dir, config)
    try:
        users.add(name, parsed, _password(password_file))
    except UserError as exc:
        raise _fail(exc) from None
    finally:
        users.close()
    typer.echo(f"added {name} ({parsed.label}) to {users.path}")


@app.command("list")
def list_users(data_dir: DataDir = Path("data/edge"), config: ConfigOpt = None) -> None:
    """List users and their roles (never passwords or hashes)."""
    users = _open(data_dir, config)
    try:
        for user in users.users():
            typer.echo(f"{user.name}\t{user.role.label}")
    finally:
        users.close()


@app.command()
def passwd(
    name: str,
    data_dir: DataDir = Path("data/edge"),
    config: ConfigOpt = None,
    password_file: PasswordFile = None,
) -> None:
    """Set a user's password; their open sessions end."""
    users = _open(data_dir, config)
    try:
        users.set_password(name, _password(password_file))
    except UserError as exc:
        raise _fail(exc) from None
    finally:
        users.close()
    typer.echo(f"password of {name} changed; their sessions were closed")


@app.command()
def remove(name: str, data_dir: DataDir = Path("data/edge"), config: ConfigOpt = None) -> None:
    """Remove a user; their sessions end at once."""
    users = _open(data_dir, config)
    try:
        users.remove(name)
    except UserError as exc:
        raise _fail(exc) from None
    finally:
        users.close()
    typer.echo(f"removed {name}")

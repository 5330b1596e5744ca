"""The `edge-node` command: run the edge node, or check its config."""

from __future__ import annotations

import asyncio
import enum
import sqlite3
from pathlib import Path
from typing import Annotated

import typer

from edge_node.cli_export import export_command
from edge_node.cli_users import app as users_app
from edge_node.config import EdgeConfig, load_edge_config
from factory_common.cli import FactoryTyper
from factory_common.config import ConfigError
from factory_common.logs import configure

# FactoryTyper: an uncaught FactoryError becomes its message and exit code (errors.py).
app = FactoryTyper(
    help="Factory edge node: MQTT ingest, time-series store, HTTP API and web UI.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(users_app, name="user")
app.command("export")(export_command)


class Role(enum.StrEnum):
    ALL = "all"
    INGEST = "ingest"
    API = "api"


ROLE_HELP = (
    "all: one process does everything (one desktop). ingest: the one stateful process"
    " (MQTT ingest, store writer, compaction; it serves the API too, for probes). api: a"
    " stateless replica serving the API and page from the store file read-only: same host"
    " and volume as the ingest process (docs/architecture.md)."
)

ConfigArg = Annotated[
    Path, typer.Argument(help="edge config YAML (see edge_node/samples/edge.yaml)")
]


def _load(config: Path) -> EdgeConfig:
    try:
        return load_edge_config(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@app.command()
def run(
    config: ConfigArg,
    data_dir: Annotated[Path, typer.Option(help="where the store lives")] = Path("data/edge"),
    json_logs: Annotated[bool | None, typer.Option("--json-logs/--console-logs")] = None,
    role: Annotated[Role, typer.Option(help=ROLE_HELP)] = Role.ALL,
) -> None:
    """Ingest from MQTT, store, and serve the API and web page until Ctrl-C / SIGTERM."""
    from edge_node.app import run_edge
    from edge_node.store import StoreError

    configure(json=json_logs)
    edge_config = _load(config)

    def ready(url: str) -> None:
        typer.echo(
            f"edge node {edge_config.edge.id}: web page and API at {url} (API docs: {url}docs)"
        )

    try:
        asyncio.run(run_edge(edge_config, data_dir, on_ready=ready, role=role.value))
    except (StoreError, OSError) as exc:  # before anything runs: bad --data-dir, port in use
        typer.echo(f"edge-node: {exc}", err=True)
        raise typer.Exit(1) from None
    except ExceptionGroup as group:
        # The store failed while running (disk full, file removed): stop, so a supervisor
        # restarts us; unacknowledged messages are redelivered by the broker.
        failed = group.subgroup(lambda exc: isinstance(exc, sqlite3.Error))
        if failed is None:
            raise
        typer.echo(f"edge-node: the store failed: {failed.exceptions[0]}", err=True)
        raise typer.Exit(1) from None


@app.command()
def check(
    config: ConfigArg,
    data_dir: Annotated[Path, typer.Option(help="resolves relative paths as `run` does")] = Path(
        "data/edge"
    ),
) -> None:
    """Validate a config file (and the rules file it names) and say what it would do."""
    edge_config = _load(config)
    typer.echo(
        f"{config}: ok (edge {edge_config.edge.id}, broker {edge_config.mqtt.host}:"
        f"{edge_config.mqtt.port}, http {edge_config.http.host}:{edge_config.http.port})"
    )
    if edge_config.rules is not None:  # the rules file: edge_node/rules
        from edge_node.rules.model import RulesFile
        from factory_common.config import load_yaml_model

        path = edge_config.rules.resolve_path(data_dir)
        try:
            rules = load_yaml_model(path, RulesFile)
        except ConfigError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
        typer.echo(f"{path}: ok ({len(rules.rules)} rules: {', '.join(r.id for r in rules.rules)})")


if __name__ == "__main__":
    app()

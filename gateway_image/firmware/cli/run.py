"""`gateway run CONFIG`: the gateway firmware (or one connector group of it) in this process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from factory_common import logs
from factory_common.config import ConfigError
from gateway_image.firmware.app import Gateway, GatewaySetupError, serve
from gateway_image.firmware.config import load_gateway_config


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    config: Annotated[Path, typer.Argument(help="The gateway's YAML config file.")],
    data_dir: Annotated[
        Path,
        typer.Option(
            "--data-dir",
            help="Where the buffer (and other state) lives; relative "
            "paths in the config resolve against it.",
        ),
    ] = Path("."),
    log_json: Annotated[
        bool | None,
        typer.Option("--log-json/--no-log-json", help="JSON log lines (default: when not a tty)."),
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(
            "--only",
            help="Run only these connectors (comma-separated) in this "
            "process; it publishes as gateway '<id>.<group>'.",
        ),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option("--group", help="Name of the --only process group (default: the names)."),
    ] = None,
) -> None:
    """Run the gateway until SIGTERM or Ctrl-C: poll, buffer durably, forward over MQTT."""
    logs.configure(json=log_json)
    try:
        gateway_config = load_gateway_config(config)
        names = [n.strip() for n in only.split(",") if n.strip()] if only else None
        gateway = Gateway(gateway_config, data_dir, only=names, group=group)
    except (ConfigError, GatewaySetupError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    asyncio.run(serve(gateway))

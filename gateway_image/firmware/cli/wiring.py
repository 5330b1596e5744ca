"""`gateway wiring CONFIG [--out DIR]`: print-ready A4 wiring sheet (HTML + SVG) for a config."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from factory_common.config import ConfigError
from gateway_image.firmware.config import load_gateway_config


def register(app: typer.Typer) -> None:
    app.command("wiring")(wiring)


def wiring(
    config: Annotated[Path, typer.Argument(help="Gateway YAML config file.")],
    out: Annotated[
        Path, typer.Option("--out", help="Directory for <gateway-id>.html and its .svg files.")
    ] = Path("."),
) -> None:
    """Render the wiring sheet for CONFIG; refuses a config that fails its wiring checks.

    Loading the config runs every wiring check, so the sheet never shows a mistake as if it
    were a plan; a sheet also needs `gateway.board`, since pins and terminals differ per board.
    """
    # Imported here: the sheet's SVG and XML code is no part of `gateway run`.
    from hardware.wiring_sheet import write_sheet

    try:
        cfg = load_gateway_config(config)
        written = write_sheet(cfg, config, out)
    except ConfigError as exc:
        typer.echo(f"{config}: fix the config first, then run `gateway wiring` again:", err=True)
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    for path in written:
        typer.echo(str(path))

"""`gateway wiring CONFIG [--out DIR]`: print-ready A4 wiring sheet (HTML + SVG) for a config."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from factory_common.config import ConfigError
from gateway_image.firmware.config import load_gateway_config
from hardware.wiring_checks import wiring_problems
from hardware.wiring_sheet import write_sheet


def register(app: typer.Typer) -> None:
    app.command("wiring")(wiring)


def wiring(
    config: Annotated[Path, typer.Argument(help="Gateway YAML config file.")],
    out: Annotated[
        Path, typer.Option("--out", help="Directory for <gateway-id>.html and its .svg files.")
    ] = Path("."),
) -> None:
    """Render the wiring sheet for CONFIG; refuses a config that fails its wiring checks."""
    try:
        cfg = load_gateway_config(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    # The config validator runs these too once wired in; checked here so the sheet never
    # shows a mistake as if it were a plan.
    problems = wiring_problems(cfg)
    if problems:
        typer.echo(f"{config}: wiring problems, fix the config first:", err=True)
        for problem in problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(2)
    for path in write_sheet(cfg, config, out):
        typer.echo(str(path))

"""The `gateway` command: run the firmware, check a config, and (later) render wiring sheets."""

from __future__ import annotations

import typer

app = typer.Typer(help="Factory edge gateway firmware.", no_args_is_help=True, add_completion=False)

# Each command lives in its own module so the CLI stays a thin index.
from gateway_image.firmware import cli_check, cli_run, cli_wiring  # noqa: E402

cli_run.register(app)
cli_check.register(app)
cli_wiring.register(app)

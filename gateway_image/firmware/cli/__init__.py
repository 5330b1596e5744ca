"""The `gateway` command: run the firmware, check a config, and (later) render wiring sheets."""

from __future__ import annotations

from factory_common.cli import FactoryTyper

# FactoryTyper: an uncaught FactoryError becomes its message and exit code (errors.py).
app = FactoryTyper(
    help="Factory edge gateway firmware.", no_args_is_help=True, add_completion=False
)

# Each command lives in its own module so the CLI stays a thin index.
from gateway_image.firmware.cli import check, run, wiring  # noqa: E402

run.register(app)
check.register(app)
wiring.register(app)

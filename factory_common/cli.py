"""Where every command turns the product's errors into a message and an exit code."""

from __future__ import annotations

import sys
from typing import Any

import typer

from factory_common.errors import FactoryError


class FactoryTyper(typer.Typer):
    """A typer app whose commands may raise FactoryError: the user sees the message (which
    says what to do next) on stderr, not a traceback, and the shell sees the error's exit code
    (the table is in factory_common/errors.py)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except FactoryError as exc:
            # rich only on this path: a long-running command (`gateway run`) never loads it.
            from rich.console import Console

            err = Console(stderr=True)
            err.print("[bold red]error:[/]", end=" ")
            err.print(str(exc), markup=False, highlight=False)  # messages hold [0] etc.
            sys.exit(exc.exit_code)

"""Rich progress bars for byte counts (images, cards) shared by the fleet commands."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


@contextmanager
def byte_progress(
    console: Console, label: str, total: int | None
) -> Iterator[Callable[[int], None]]:
    """A bar for `total` bytes (an indeterminate one when unknown); yields the advance call."""
    with byte_bars(console, [(label, total)]) as (advance,):
        yield advance


@contextmanager
def byte_bars(
    console: Console, bars: list[tuple[str, int | None]]
) -> Iterator[tuple[Callable[[int], None], ...]]:
    """Several bars in one display (rich allows one live display at a time)."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        tasks = [progress.add_task(label, total=total) for label, total in bars]
        yield tuple(_advancer(progress, task) for task in tasks)


def _advancer(progress: Progress, task: TaskID) -> Callable[[int], None]:
    return lambda count: progress.advance(task, count)

"""`fleet image batch CSV --base IMAGE`: every gateway of a commissioning CSV, card and sheet."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from fleet.cli.common import FleetDir, layout_of
from fleet.layout import FleetLayout
from provisioning.batch import Outcome, card_path, gateway_folder, run_batch
from provisioning.batch_plan import BatchError, Row, parse_csv
from provisioning.ca import Ca

console = Console(stderr=True)


class _Identity:
    """Binds the batch's identity step to `fleet provision`, asking once for the passphrase."""

    def __init__(self, layout: FleetLayout) -> None:
        self.layout = layout
        self._ca: Ca | None = None

    def __call__(self, row: Row) -> None:
        from provisioning.ca import load_ca
        from provisioning.identity import NetworkSettings, provision

        if self._ca is None:
            passphrase = os.environ.get("FLEET_CA_PASSPHRASE") or typer.prompt(
                "CA passphrase", hide_input=True, err=True
            )
            self._ca = load_ca(self.layout, passphrase)
        provision(self.layout, self._ca, row.gateway_id, NetworkSettings(hostname=row.gateway_id))


def batch(
    csv_file: Annotated[Path, typer.Argument(help="gateway_id[,serial,site,line,board,labels]")],
    base: Annotated[Path, typer.Option("--base", help="The base image (.img or .img.xz).")],
    fleet_dir: FleetDir = None,
    images: Annotated[
        bool, typer.Option("--images", help="Whole .img files instead of flash sets.")
    ] = False,
) -> None:
    """Inventory entry, certificate, card and wiring sheet for every gateway in CSV_FILE."""
    layout = layout_of(fleet_dir)
    try:
        rows = parse_csv(csv_file.read_text(encoding="utf-8"), str(csv_file))
    except (BatchError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
    ) as progress:
        task = progress.add_task("cards", total=len(rows))

        def started(row: Row) -> None:
            progress.update(task, description=f"gateway {row.gateway_id}", advance=0)

        outcomes = run_batch(layout, rows, base, images, _Identity(layout), started)
        progress.update(task, completed=len(rows), description="cards")
    console.print(summary(layout, outcomes, images))
    failed = [o for o in outcomes if o.error]
    if failed:
        console.print(
            f"[red]{len(failed)} of {len(outcomes)} gateway(s) failed[/red]: fix "
            "what each says, then run the same command again (done work is skipped)"
        )
        raise typer.Exit(1)


def summary(layout: FleetLayout, outcomes: list[Outcome], images: bool) -> Table:
    table = Table(title="batch")
    for column in ("gateway", "done now", "card", "wiring sheet", "problem"):
        table.add_column(column, overflow="fold")
    for outcome in outcomes:
        gateway = outcome.row.gateway_id
        sheet = gateway_folder(layout, gateway) / "wiring" / f"{gateway}.html"
        table.add_row(
            gateway,
            ", ".join(step.value for step in outcome.done) or "nothing (up to date)",
            str(card_path(layout, gateway, images)) if not outcome.error else "",
            str(sheet) if sheet.exists() else "",
            outcome.error,
            style="red" if outcome.error else "",
        )
    return table

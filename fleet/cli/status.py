"""`fleet status [SELECTOR] [--watch]`: every gateway's retained status beside the inventory."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.live import Live
from rich.table import Table

from fleet.backends.dispatch import backends_for
from fleet.cli.common import (
    Exit,
    FleetDir,
    JsonFlag,
    emit_json,
    err,
    fail,
    input_errors,
    inventory_of,
    out,
)
from fleet.enroll import auto_accept
from fleet.enroll import expiring as expiring_certs
from fleet.inventory import Inventory
from fleet.selectors import parse_selector
from fleet.status_feed import FeedError, StatusFeed
from fleet.status_view import Extra, StatusRow, status_rows

FLAG_STYLE = {"new": "cyan", "offline": "red", "losing data": "red", "no status": "yellow"}


def _table(rows: list[StatusRow]) -> Table:
    table = Table(
        "id",
        "online",
        "version",
        "desired",
        "uptime",
        "buffer",
        "conn",
        "dropped",
        "unconf.",
        "flags",
    )
    for r in rows:
        flags = " ".join(f"[{FLAG_STYLE.get(f, 'yellow')}]{f}[/]" for f in r.flags)
        table.add_row(
            r.id,
            "yes" if r.online else "no",
            r.version,
            r.desired,
            f"{r.uptime_s / 3600:.1f} h",
            str(r.buffer_depth),
            r.connectors,
            str(r.dropped),
            str(r.unconfirmed),
            flags,
        )
    return table


def _extras(
    inventory: Inventory, feed: StatusFeed, chosen: list[str], probe: bool
) -> dict[str, Extra]:
    """Certificates near expiry always; with --probe, what each backend says too."""
    problems: dict[str, str] = {}
    if probe:
        backends = backends_for(inventory, feed, "status")
        problems = backends.problems([inventory.gateways[g] for g in chosen])
    expiring = {
        g: f"{when:%Y-%m-%d}" for g, when in expiring_certs(inventory.layout, chosen).items()
    }
    return {
        g: Extra(problems.get(g, ""), expiring.get(g, "")) for g in set(problems) | set(expiring)
    }


def _rows(
    inventory: Inventory,
    feed: StatusFeed,
    selector: str | None,
    previous: dict[str, int] | None,
    probe: bool = False,
) -> list[StatusRow]:
    with input_errors():
        chosen = {g.id: g for g in inventory.select(parse_selector(selector))}
    heard = feed.snapshot()
    if selector:  # unknown gateways have no labels: show them only when everything is asked for
        heard = {k: v for k, v in heard.items() if k in chosen}
    backlog = inventory.config.defaults.drained_depth
    extras = _extras(inventory, feed, list(chosen), probe)
    return status_rows(chosen, heard, previous, backlog, extras)


def status(
    selector: Annotated[str | None, typer.Argument(help="Label selector (default: all).")] = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh live.")] = False,
    probe: Annotated[
        bool, typer.Option("--probe", help="Also ask each backend (balena: device state).")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 2.0,
    fleet_dir: FleetDir = None,
    json: JsonFlag = False,
) -> None:
    """Status of every gateway: online, version, buffer, connectors, and what needs a look."""
    inventory = inventory_of(fleet_dir)
    try:
        feed = StatusFeed(inventory.config.broker).start()
    except FeedError as exc:
        fail(str(exc), Exit.UNREACHABLE)
    try:
        feed.settle()
        accepted = auto_accept(inventory, list(feed.snapshot()))
        if accepted:
            err.print(f"accepted automatically (valid certificate): {', '.join(accepted)}")
            inventory = inventory_of(fleet_dir)
        rows = _rows(inventory, feed, selector, None, probe)
        if json:
            emit_json([r.as_json() for r in rows])
        elif not watch:
            out.print(_table(rows))
        else:
            _watch(inventory, feed, selector, rows, interval)
    finally:
        feed.stop()
    if any(set(r.flags) & {"offline", "losing data", "no status"} for r in rows):
        raise typer.Exit(int(Exit.FAILED))


def _watch(
    inventory: Inventory,
    feed: StatusFeed,
    selector: str | None,
    rows: list[StatusRow],
    interval: float,
) -> None:
    with Live(_table(rows), console=out, refresh_per_second=4) as live:
        try:
            while True:
                time.sleep(interval)
                previous = {r.id: r.buffer_depth for r in rows}
                rows = _rows(inventory, feed, selector, previous)
                live.update(_table(rows))
        except KeyboardInterrupt:
            return

"""`fleet init` and `fleet devices list|show|add|label|remove|accept`: the inventory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fleet.cli.common import (
    Exit,
    FleetDir,
    JsonFlag,
    Operator,
    emit_json,
    err,
    fail,
    input_errors,
    inventory_of,
    layout_of,
    operator_name,
    out,
    store_of,
)
from fleet.enroll import accept_gateway, certificate_problem
from fleet.inventory import GatewayEntry, Inventory, init_fleet_dir, save_gateway_entry
from fleet.selectors import parse_selector

app = typer.Typer(help="The inventory: every gateway the fleet knows.", no_args_is_help=True)

Selector = Annotated[
    str | None,
    typer.Argument(help="Label selector, e.g. 'line=anodizing,site=plant2' or '!beta'."),
]


def init(
    directory: Annotated[Path, typer.Argument(help="Where the fleet directory goes.")],
    name: Annotated[str, typer.Option(help="The fleet's name.")] = "fleet",
) -> None:
    """Create an empty fleet directory (fleet.yaml, gateways/, configs/, .gitignore)."""
    init_fleet_dir(layout_of(directory), name)
    out.print(f"fleet directory ready in {directory}: next, `fleet devices add ID ...`")


@app.command("list")
def list_devices(
    selector: Selector = None, fleet_dir: FleetDir = None, json: JsonFlag = False
) -> None:
    """List gateways (all, or those matching SELECTOR)."""
    inventory = inventory_of(fleet_dir)
    with input_errors():
        chosen = inventory.select(parse_selector(selector))
    if json:
        emit_json([g.model_dump(mode="json") for g in chosen])
        return
    table = Table(
        "id", "site", "line", "board", "backend", "address", "labels", "desired", "current"
    )
    for g in chosen:
        labels = ",".join(f"{k}={v}" for k, v in sorted(g.labels.items()))
        table.add_row(
            g.id,
            g.site,
            g.line,
            g.board or "",
            g.backend,
            g.address,
            labels,
            g.desired_release or "",
            g.current_release or "",
        )
    out.print(table)
    out.print(f"{len(chosen)} of {len(inventory.gateways)} gateways")


@app.command()
def show(gateway_id: str, fleet_dir: FleetDir = None, json: JsonFlag = False) -> None:
    """Show one gateway's inventory entry."""
    inventory = inventory_of(fleet_dir)
    with input_errors():
        entry = inventory.get(gateway_id)
    data = entry.model_dump(mode="json")
    if json:
        emit_json(data)
        return
    for key, value in data.items():
        out.print(f"[bold]{key}[/bold]: {value}", highlight=False)


def _labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"label {pair!r}: write key=value")
        labels[key] = value
    return labels


@app.command()
def add(
    gateway_id: str,
    site: Annotated[str, typer.Option()] = "",
    line: Annotated[str, typer.Option()] = "",
    board: Annotated[str | None, typer.Option(help="Board profile (hardware/boards).")] = None,
    backend: Annotated[str, typer.Option(help="ssh or balena.")] = "ssh",
    address: Annotated[str, typer.Option(help="host[:port], or the balena device UUID.")] = "",
    host_key: Annotated[str | None, typer.Option(help="'ssh-ed25519 AAAA...'")] = None,
    label: Annotated[list[str] | None, typer.Option(help="key=value, repeatable.")] = None,
    fleet_dir: FleetDir = None,
    operator: Operator = None,
) -> None:
    """Add a gateway to the inventory (or replace its entry)."""
    inventory = inventory_of(fleet_dir)
    with input_errors():
        entry = GatewayEntry.model_validate(
            {
                "id": gateway_id,
                "site": site,
                "line": line,
                "board": board,
                "backend": backend,
                "address": address,
                "host_key": host_key,
                "labels": _labels(label or []),
            }
        )
    _save(inventory, entry, operator, "device add")


def _save(inventory: Inventory, entry: GatewayEntry, operator: str | None, action: str) -> None:
    path = save_gateway_entry(inventory.layout, entry)
    store = store_of(inventory)
    store.audit(operator_name(operator), action, entry.id, "ok", str(path))
    store.close()
    out.print(f"{entry.id}: saved {path}")


@app.command()
def label(
    gateway_id: str,
    pairs: Annotated[list[str], typer.Argument(help="key=value to set, key- to remove.")],
    fleet_dir: FleetDir = None,
    operator: Operator = None,
) -> None:
    """Set or remove labels on a gateway."""
    inventory = inventory_of(fleet_dir)
    with input_errors():
        entry = inventory.get(gateway_id)
    labels = dict(entry.labels)
    for pair in pairs:
        if pair.endswith("-") and "=" not in pair:
            labels.pop(pair[:-1], None)
        else:
            labels.update(_labels([pair]))
    _save(inventory, entry.model_copy(update={"labels": labels}), operator, "device label")


@app.command()
def remove(gateway_id: str, fleet_dir: FleetDir = None, operator: Operator = None) -> None:
    """Remove a gateway from the inventory (its identity stays until `fleet revoke`)."""
    inventory = inventory_of(fleet_dir)
    with input_errors():
        inventory.get(gateway_id)
    inventory.layout.gateway_file(gateway_id).unlink()
    store = store_of(inventory)
    store.audit(operator_name(operator), "device remove", gateway_id, "ok", "")
    store.close()
    out.print(f"{gateway_id}: removed from the inventory")


@app.command()
def accept(
    gateway_id: str,
    site: Annotated[str, typer.Option()] = "",
    line: Annotated[str, typer.Option()] = "",
    address: Annotated[str, typer.Option()] = "",
    force: Annotated[
        bool, typer.Option(help="Accept without a valid certificate on file.")
    ] = False,
    fleet_dir: FleetDir = None,
    operator: Operator = None,
) -> None:
    """Accept a new gateway seen on the broker: it gets its inventory entry."""
    inventory = inventory_of(fleet_dir)
    if gateway_id in inventory.gateways:
        fail(f"{gateway_id} is already in the inventory: see `fleet devices show {gateway_id}`")
    problem = certificate_problem(inventory.layout, gateway_id)
    if problem and not force:
        fail(
            f"{gateway_id}: {problem}; provision it with `fleet provision {gateway_id}` "
            "or accept anyway with --force",
            Exit.REFUSED,
        )
    with input_errors():
        entry = accept_gateway(inventory, gateway_id, site=site, line=line, address=address)
    _save(inventory, entry, operator, "device accept")


@app.command("sync-balena")
def sync_balena_devices(fleet_dir: FleetDir = None, operator: Operator = None) -> None:
    """Add or update an entry for every device of the balena fleet (its tags become labels)."""
    from fleet.backends.base import BackendError
    from fleet.balena_sync import sync_balena

    inventory = inventory_of(fleet_dir)
    try:
        saved, skipped = sync_balena(inventory)
    except BackendError as exc:
        fail(str(exc), Exit.UNREACHABLE)
    store = store_of(inventory)
    store.audit(
        operator_name(operator),
        "device sync-balena",
        inventory.config.name,
        "ok",
        f"{len(saved)} saved, {len(skipped)} skipped",
    )
    store.close()
    out.print(f"{len(saved)} balena devices in the inventory")
    for line in skipped:
        err.print(f"skipped {line}", highlight=False)

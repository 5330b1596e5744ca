"""`fleet rollout start|status|pause|resume|abort|rollback`: staged, health-gated rollouts."""

from __future__ import annotations

import secrets
import time
from typing import Annotated

import typer

from fleet.cli.common import (
    Exit,
    FleetDir,
    JsonFlag,
    Operator,
    emit_json,
    fail,
    input_errors,
    inventory_of,
    operator_name,
    out,
    store_of,
)
from fleet.cli.drive import drive, policy_from_options, previous_versions
from fleet.inventory import save_gateway_entry
from fleet.rollout.engine import plan
from fleet.rollout.targets import TargetError, resolve
from fleet.selectors import parse_selector
from fleet.store.rollouts import ClaimRefused

app = typer.Typer(help="Staged rollouts with health gates and rollback.", no_args_is_help=True)

To = Annotated[str, typer.Option("--to", help="Label selector of the gateways to update.")]


def new_rollout_id(kind: str) -> str:
    return f"{kind[0]}{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


@app.command()
def start(
    release: Annotated[str, typer.Argument(help="The release version to roll out.")],
    to: To = "",
    canary: Annotated[str | None, typer.Option(help="Canary: a count or a percent.")] = None,
    wave_size: Annotated[str | None, typer.Option(help="Wave size: count or percent.")] = None,
    max_parallel: Annotated[int | None, typer.Option(help="Gateways updating at once.")] = None,
    error_threshold: Annotated[
        str | None, typer.Option(help="Failures per wave tolerated: count or percent.")
    ] = None,
    gate_timeout: Annotated[float | None, typer.Option(help="Seconds to turn healthy.")] = None,
    pause: Annotated[float | None, typer.Option(help="Seconds between waves.")] = None,
    window: Annotated[
        list[str] | None, typer.Option(help="Maintenance window 'mon,tue 22:00-04:00' (UTC).")
    ] = None,
    rollback_all_on_halt: Annotated[bool, typer.Option(help="On halt, return everyone.")] = False,
    no_receipts: Annotated[
        bool, typer.Option("--no-receipts", help="Gate without the edge's receipts.")
    ] = False,
    downgrade: Annotated[bool, typer.Option(help="This release is older, on purpose.")] = False,
    fleet_dir: FleetDir = None,
    operator: Operator = None,
    json: JsonFlag = False,
) -> None:
    """Roll RELEASE out to the gateways matching --to: canary first, then waves."""
    inventory = inventory_of(fleet_dir)
    with input_errors():
        gateways = inventory.select(parse_selector(to))
        policy = policy_from_options(
            inventory.config.defaults,
            canary,
            wave_size,
            max_parallel,
            error_threshold,
            gate_timeout,
            pause,
            window,
            rollback_all_on_halt,
            not no_receipts,
        )
    if not gateways:
        fail(f"no gateway matches {to!r}: see `fleet devices list`")
    try:
        resolve(
            inventory.layout,
            "release",
            release,
            require_file=any(g.backend == "ssh" for g in gateways),
        )
    except TargetError as exc:
        fail(str(exc))
    who = operator_name(operator)
    previous = previous_versions(inventory, [g.id for g in gateways])
    rollout = plan(new_rollout_id("release"), "release", release, previous, policy)
    store = store_of(inventory)
    try:
        store.create(rollout, to, who)
    except ClaimRefused as exc:
        fail(str(exc), Exit.REFUSED)
    for g in gateways:
        save_gateway_entry(inventory.layout, g.model_copy(update={"desired_release": release}))
    out.print(
        f"rollout {rollout.id}: {release} to {len(gateways)} gateways in {rollout.waves} waves",
        highlight=False,
    ) if not json else None
    drive(inventory_of(fleet_dir), store, rollout.id, who, json, downgrade)


@app.command()
def status(
    rollout_id: Annotated[str | None, typer.Argument()] = None,
    fleet_dir: FleetDir = None,
    json: JsonFlag = False,
) -> None:
    """List rollouts, or show one rollout's waves and gateways."""
    from fleet.cli.drive import show_rollout, show_rollouts

    inventory = inventory_of(fleet_dir)
    store = store_of(inventory)
    with input_errors():
        if rollout_id:
            show_rollout(store.load(rollout_id), json)
        else:
            show_rollouts(store.rollouts(), json)


def _command(
    command: str,
    rollout_id: str,
    fleet_dir: FleetDir,
    operator: str | None,
    json: bool,
    follow: bool,
) -> None:
    inventory = inventory_of(fleet_dir)
    store = store_of(inventory)
    who = operator_name(operator)
    with input_errors():
        store.post_command(rollout_id, command, who)
    if json:
        emit_json({"event": "command", "rollout": rollout_id, "command": command})
    else:
        out.print(f"rollout {rollout_id}: {command} requested")
    if follow:
        drive(inventory, store, rollout_id, who, json, posted=command)


@app.command()
def pause(
    rollout_id: str, fleet_dir: FleetDir = None, operator: Operator = None, json: JsonFlag = False
) -> None:
    """Ask nobody new until resumed (gateways already asked finish their gate)."""
    _command("pause", rollout_id, fleet_dir, operator, json, follow=False)


@app.command()
def resume(
    rollout_id: str, fleet_dir: FleetDir = None, operator: Operator = None, json: JsonFlag = False
) -> None:
    """Resume a paused or halted rollout, or pick up one whose CLI was stopped, and drive it."""
    inventory = inventory_of(fleet_dir)
    store = store_of(inventory)
    with input_errors():
        state = store.load(rollout_id).state.value
    if state in ("paused", "halted"):
        store.post_command(rollout_id, "resume", operator_name(operator))
    drive(inventory, store, rollout_id, operator_name(operator), json)


@app.command()
def abort(
    rollout_id: str, fleet_dir: FleetDir = None, operator: Operator = None, json: JsonFlag = False
) -> None:
    """Emergency stop: nobody new is asked; gateways already asked finish their gate."""
    _command("abort", rollout_id, fleet_dir, operator, json, follow=False)


@app.command()
def rollback(
    rollout_id: str, fleet_dir: FleetDir = None, operator: Operator = None, json: JsonFlag = False
) -> None:
    """Return every gateway the rollout touched to what it ran before, and drive that."""
    _command("rollback", rollout_id, fleet_dir, operator, json, follow=True)

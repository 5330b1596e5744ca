"""`fleet config push CONFIG --to SELECTOR`: a config change rolled out like a release."""

from __future__ import annotations

from pathlib import Path
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
from fleet.cli.drive import drive, policy_from_options
from fleet.cli.rollout import new_rollout_id
from fleet.config_push import config_hash, keep, validate_all
from fleet.rollout.engine import plan
from fleet.selectors import parse_selector
from fleet.store.rollouts import ClaimRefused

app = typer.Typer(help="Gateway configs, rolled out with the same care.", no_args_is_help=True)


@app.command()
def push(
    config: Annotated[
        Path, typer.Argument(help="A gateway config (YAML); gateway.id is set per gateway.")
    ],
    to: Annotated[str, typer.Option("--to", help="Label selector.")] = "",
    canary: Annotated[str | None, typer.Option()] = None,
    wave_size: Annotated[str | None, typer.Option()] = None,
    max_parallel: Annotated[int | None, typer.Option()] = None,
    error_threshold: Annotated[str | None, typer.Option()] = None,
    gate_timeout: Annotated[float | None, typer.Option()] = None,
    pause: Annotated[float | None, typer.Option()] = None,
    window: Annotated[list[str] | None, typer.Option()] = None,
    no_receipts: Annotated[bool, typer.Option("--no-receipts")] = False,
    check: Annotated[bool, typer.Option("--check", help="Validate only; send nothing.")] = False,
    fleet_dir: FleetDir = None,
    operator: Operator = None,
    json: JsonFlag = False,
) -> None:
    """Validate CONFIG for every matching gateway, then roll it out: canary, waves, gates."""
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
            False,
            not no_receipts,
        )
    if not gateways:
        fail(f"no gateway matches {to!r}: see `fleet devices list`")
    try:
        text = config.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {config}: {exc}")
    with input_errors():
        rendered = validate_all(config, text, gateways)
    if check:
        out.print(f"{config}: valid for {len(gateways)} gateways; nothing sent")
        return
    value = config_hash(text)
    previous = keep(inventory, rendered, value)
    who = operator_name(operator)
    rollout = plan(new_rollout_id("config"), "config", value, previous, policy)
    store = store_of(inventory)
    try:
        store.create(rollout, to, who)
    except ClaimRefused as exc:
        fail(str(exc), Exit.REFUSED)
    if json:
        emit_json({"event": "start", "rollout": rollout.id, "config": value})
    else:
        out.print(
            f"config rollout {rollout.id}: {config.name} ({value}) to {len(gateways)} "
            f"gateways in {rollout.waves} waves",
            highlight=False,
        )
    drive(inventory, store, rollout.id, who, json)

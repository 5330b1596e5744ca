"""Run a batch: for each CSV row, the steps `batch_plan` says it still needs, one at a time.

A failing gateway is reported and the batch goes on with the next; what each step made is
recorded (`images/<id>/state.json`, the digest of its inputs) so a re-run skips it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fleet.inventory import GatewayEntry, save_gateway_entry
from fleet.layout import FleetLayout
from hardware.wiring_sheet import write_sheet
from provisioning.batch_plan import Existing, Row, Step, plan
from provisioning.image.build import build, make_flash_set
from provisioning.image.payload import gateway_config, gateway_payload, newest_release

STATE = "state.json"
# Makes a gateway's key and certificate (bound by the CLI to `fleet provision`'s code).
Provision = Callable[[Row], None]


@dataclass
class Outcome:
    row: Row
    done: list[Step] = field(default_factory=list)
    error: str = ""


def gateway_folder(layout: FleetLayout, gateway_id: str) -> Path:
    return layout.images_dir / gateway_id


def card_path(layout: FleetLayout, gateway_id: str, images: bool) -> Path:
    folder = gateway_folder(layout, gateway_id)
    return folder / f"{gateway_id}.img" if images else folder / "card"


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def _read(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b""


def card_inputs(layout: FleetLayout, row: Row, base: Path, images: bool) -> str:
    """Everything a card is made from: a change to any of them makes a new card."""
    release = newest_release(layout)
    stat = base.stat()
    return _digest(
        _read(layout.gateway_config(row.gateway_id)),
        _read(layout.gateway_cert(row.gateway_id)),
        _read(layout.image_settings),
        _read(layout.configs_dir / f"{row.gateway_id}.network.yaml"),
        f"{release.name}:{release.stat().st_size}".encode(),
        f"{base.name}:{stat.st_size}:{stat.st_mtime_ns}:{images}".encode(),
    )


def sheet_inputs(layout: FleetLayout, row: Row) -> str:
    return _digest(_read(layout.gateway_config(row.gateway_id)))


def _state(layout: FleetLayout, gateway_id: str) -> dict[str, str]:
    path = gateway_folder(layout, gateway_id) / STATE
    return dict(json.loads(path.read_text())) if path.exists() else {}


def _save_state(layout: FleetLayout, gateway_id: str, state: dict[str, str]) -> None:
    folder = gateway_folder(layout, gateway_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STATE).write_text(json.dumps(state, indent=2) + "\n")


def existing(layout: FleetLayout, row: Row) -> Existing:
    state = _state(layout, row.gateway_id)
    return Existing(
        in_inventory=layout.gateway_file(row.gateway_id).exists(),
        has_identity=layout.gateway_cert(row.gateway_id).exists(),
        card_digest=state.get("card"),
        sheet_digest=state.get("sheet"),
    )


def run_row(
    layout: FleetLayout, row: Row, base: Path, images: bool, provision: Provision
) -> Outcome:
    """Do what `row` still needs; the first failing step ends this row (reported)."""
    outcome = Outcome(row)
    card, sheet = card_inputs(layout, row, base, images), sheet_inputs(layout, row)
    for step in plan(row, existing(layout, row), card, sheet):
        if step is Step.INVENTORY:
            save_gateway_entry(layout, _entry(row))
        elif step is Step.IDENTITY:
            provision(row)
            card = card_inputs(layout, row, base, images)  # the new certificate is an input
        elif step is Step.CARD:
            _make_card(layout, row, base, images)
            _save_state(layout, row.gateway_id, {**_state(layout, row.gateway_id), "card": card})
        elif step is Step.SHEET:
            config = gateway_config(layout, row.gateway_id)
            folder = gateway_folder(layout, row.gateway_id) / "wiring"
            write_sheet(config, layout.gateway_config(row.gateway_id), folder)
            _save_state(layout, row.gateway_id, {**_state(layout, row.gateway_id), "sheet": sheet})
        outcome.done.append(step)
    return outcome


def _entry(row: Row) -> GatewayEntry:
    labels = dict(row.labels)
    if row.serial:
        labels["serial"] = row.serial
    return GatewayEntry(
        id=row.gateway_id,
        site=row.site,
        line=row.production_line,
        board=row.board or None,
        labels=labels,
    )


def _make_card(layout: FleetLayout, row: Row, base: Path, images: bool) -> None:
    payload = gateway_payload(layout, row.gateway_id)
    target = card_path(layout, row.gateway_id, images)
    target.parent.mkdir(parents=True, exist_ok=True)
    if images:
        build(base, target, payload)
    else:
        shutil.rmtree(target, ignore_errors=True)  # a set is exactly what the base needs now
        make_flash_set(base, payload, target)


# What a row can fail with that the operator can fix (config, identity, base image, I/O);
# anything else is a bug and stops the batch with its traceback.
ROW_ERRORS = (ValueError, RuntimeError, OSError)


def run_batch(
    layout: FleetLayout,
    rows: list[Row],
    base: Path,
    images: bool,
    provision: Provision,
    started: Callable[[Row], None] = lambda _row: None,
) -> list[Outcome]:
    """Every row in turn; a row that fails is reported and the next one goes on."""
    outcomes = []
    for row in rows:
        started(row)
        try:
            outcomes.append(run_row(layout, row, base, images, provision))
        except ROW_ERRORS as exc:
            outcomes.append(Outcome(row, error=str(exc)))
    return outcomes

"""`fleet audit`: the append-only log of who did what, when, and how it went."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from fleet.cli.common import FleetDir, JsonFlag, emit_json, inventory_of, out, store_of


def audit(
    subject: Annotated[str | None, typer.Argument(help="A rollout id or gateway id.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many entries.")] = 1000,
    fleet_dir: FleetDir = None,
    json: JsonFlag = False,
) -> None:
    """Show the audit log (oldest first), optionally for one rollout or gateway."""
    store = store_of(inventory_of(fleet_dir))
    entries = store.audit_log(subject, limit)
    if json:
        emit_json(entries)
        return
    table = Table("when (UTC)", "who", "what", "subject", "result", "detail")
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["ts"]))
        table.add_row(when, e["operator"], e["action"], e["subject"], e["result"], e["detail"])
    out.print(table)

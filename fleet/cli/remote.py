"""`fleet ssh ID`, `fleet logs ID [--follow]`, `fleet exec SELECTOR -- CMD` over the SSH backend."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fleet.backends.base import BackendError
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
from fleet.inventory import GatewayEntry, Inventory
from fleet.selectors import parse_selector

if TYPE_CHECKING:
    from fleet.backends.ssh import SshBackend


def _ssh_backend(inventory: Inventory) -> SshBackend:
    # Imported here: fabric takes a while to import and most commands do not need it.
    from fleet.backends.ssh import SshBackend

    return SshBackend(inventory, "exec")


def _ssh_gateway(inventory: Inventory, gateway_id: str) -> GatewayEntry:
    with input_errors():
        entry = inventory.get(gateway_id)
    if entry.backend != "ssh":
        fail(f"{gateway_id} uses the {entry.backend} backend; use balena's CLI for it")
    return entry


def ssh(
    gateway_id: str,
    command: Annotated[
        list[str] | None, typer.Argument(help="Command to run instead of a shell.")
    ] = None,
    fleet_dir: FleetDir = None,
) -> None:
    """Open a shell on a gateway (OpenSSH, host key checked against the inventory only)."""
    inventory = inventory_of(fleet_dir)
    entry = _ssh_gateway(inventory, gateway_id)
    backend = _ssh_backend(inventory)
    binary = shutil.which("ssh")
    if binary is None:
        fail("no `ssh` client: install openssh-client", Exit.UNREACHABLE)
    try:
        known = backend.known_hosts_line(entry)
    except BackendError as exc:
        fail(str(exc), Exit.REFUSED)
    from fleet.backends.ssh import host_and_port

    host, port = host_and_port(entry)
    with tempfile.TemporaryDirectory() as tmp:
        known_hosts = Path(tmp) / "known_hosts"
        known_hosts.write_text(known)
        args = [
            binary,
            "-p",
            str(port),
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes" if command else "BatchMode=no",
            "-l",
            backend.settings.user,
        ]
        if backend.key_path():
            args += ["-i", str(backend.key_path()), "-o", "IdentitiesOnly=yes"]
        code = subprocess.call([*args, host, *(command or [])])
    raise typer.Exit(code)


def logs(
    gateway_id: str,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    lines: Annotated[int, typer.Option("--lines", "-n")] = 200,
    fleet_dir: FleetDir = None,
) -> None:
    """Show a gateway's service log."""
    inventory = inventory_of(fleet_dir)
    entry = _ssh_gateway(inventory, gateway_id)
    backend = _ssh_backend(inventory)
    if follow:  # interactive and endless: hand it to OpenSSH, which streams and handles ^C
        ssh(gateway_id, [backend.settings.follow_command.format(lines=lines)], fleet_dir)
    try:
        code, stdout, stderr = backend.run(entry, backend.settings.logs_command.format(lines=lines))
    except BackendError as exc:
        fail(str(exc), Exit.UNREACHABLE)
    out.print(stdout, end="", highlight=False, markup=False)
    err.print(stderr, end="", highlight=False, markup=False)
    raise typer.Exit(0 if code == 0 else int(Exit.FAILED))


def exec_(
    selector: Annotated[str, typer.Argument(help="Label selector; '' for all.")],
    command: Annotated[list[str], typer.Argument(help="After --: the command to run.")],
    parallel: Annotated[int | None, typer.Option(help="Gateways at once.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds per gateway.")] = None,
    fleet_dir: FleetDir = None,
    json: JsonFlag = False,
) -> None:
    """Run a command on every matching gateway, a few at a time; output per gateway."""
    inventory = inventory_of(fleet_dir)
    with input_errors():
        chosen = [g for g in inventory.select(parse_selector(selector)) if g.backend == "ssh"]
    if not chosen:
        fail(f"no SSH gateway matches {selector!r}: see `fleet devices list`")
    backend = _ssh_backend(inventory)
    line = " ".join(command)

    def one(gateway: GatewayEntry) -> dict[str, object]:
        try:
            code, stdout, stderr = backend.run(gateway, line, timeout)
            return {"gateway": gateway.id, "exit": code, "stdout": stdout, "stderr": stderr}
        except BackendError as exc:
            return {"gateway": gateway.id, "exit": None, "stdout": "", "stderr": str(exc)}

    workers = parallel or backend.settings.max_parallel
    with ThreadPoolExecutor(max(1, workers)) as pool:
        results = list(pool.map(one, chosen))
    for r in results:
        if json:
            emit_json(r)
            continue
        mark = (
            "[green]ok[/]"
            if r["exit"] == 0
            else f"[red]{r['exit'] if r['exit'] is not None else 'unreachable'}[/]"
        )
        out.print(f"[bold]── {r['gateway']}[/] {mark}")
        out.print(str(r["stdout"]), end="", highlight=False, markup=False)
        if r["stderr"]:
            out.print(
                str(r["stderr"]),
                end="" if str(r["stderr"]).endswith("\n") else "\n",
                style="red",
                highlight=False,
                markup=False,
            )
    failed = [r for r in results if r["exit"] != 0]
    if failed:
        raise typer.Exit(
            int(Exit.UNREACHABLE if all(r["exit"] is None for r in failed) else Exit.FAILED)
        )

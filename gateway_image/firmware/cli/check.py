"""`gateway check CONFIG [--probe]`: validate a config and read every tag once, for technicians."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from factory_common.config import ConfigError
from factory_common.errors import GatewayError
from factory_common.wire import Quality, Reading
from gateway_image.firmware.config import GatewayConfig, load_gateway_config
from gateway_image.firmware.connectors.base import ConnectorError, PollingConnector
from gateway_image.firmware.connectors.registry import build_connector
from hardware.console import CMDLINE_FILES, consoles_on_buses, read_cmdline
from hardware.wiring_checks import resolve_board

if TYPE_CHECKING:
    from rich.table import Table

# One probe row: connector, device, tag, value, quality, error.
Row = tuple[str, str, str, str, str, str]
COLUMNS = ("connector", "device", "tag", "value", "quality", "error")
SKIPPED = "skipped"
NOT_IN_ONE_READ = (
    "no value in one read: derived and event tags (a counter's rate, edges) appear "
    "while `gateway run` runs"
)


def register(app: typer.Typer) -> None:
    app.command("check")(check)


def check(
    config: Annotated[Path, typer.Argument(help="Gateway YAML config file.")],
    probe: Annotated[
        bool, typer.Option("--probe", help="Connect to every device and read each tag once.")
    ] = False,
    probe_timeout: Annotated[
        float, typer.Option(help="Seconds each connector may take to connect and poll.")
    ] = 15.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Probe rows as JSON lines, for scripts and tickets.")
    ] = False,
    cmdline: Annotated[
        list[str] | None,
        typer.Option(
            help="Kernel command line to check for a serial console on a bus port "
            "(default: /proc/cmdline, then the boot partition's cmdline.txt)."
        ),
    ] = None,
) -> None:
    """Validate CONFIG; with --probe, read every tag once and print values and errors."""
    # rich is imported by the commands that print with it: `gateway run` never loads it.
    from rich.console import Console

    out, err = Console(), Console(stderr=True)
    try:
        cfg = load_gateway_config(config)
    except ConfigError as exc:
        err.print(f"[bold red]{config}: invalid config[/] ({len(exc.problems)} problem(s))")
        for problem in exc.problems:
            err.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    # With --json stdout carries only the rows, one JSON object per line.
    (err if as_json else out).print(summary(cfg, config))
    if not probe:
        out.print("[green]config OK[/]")
        return
    rows = console_rows(cfg, cmdline or ["/proc/cmdline", *CMDLINE_FILES])
    rows += asyncio.run(probe_all(cfg, probe_timeout))
    if as_json:
        for row in rows:
            typer.echo(json.dumps(dict(zip(COLUMNS, row, strict=True))))
    elif out.is_terminal:
        out.print(probe_table(rows))
    else:  # a file or a pipe: whole lines, never an error cut to a table cell
        for row in rows:
            typer.echo("\t".join(row))
    failed = [row for row in rows if row[4] not in (Quality.GOOD.value, SKIPPED)]
    if failed:
        err.print(f"[bold red]{len(failed)} of {len(rows)} probe row(s) failed[/]")
        raise typer.Exit(1)
    (err if as_json else out).print(f"[green]probe OK: {len(rows)} tag(s) read[/]")


def console_rows(cfg: GatewayConfig, paths: list[str]) -> list[Row]:
    """A failed row per connector whose serial port also carries a login console."""
    found = read_cmdline(paths)
    if found is None:
        return []
    text, source = found
    board, _ = resolve_board(cfg.gateway.board, cfg.gateway.hats)
    ports = [(c.name, claim.port) for c in cfg.connectors if (claim := c.serial_port())]
    return [
        (name, "-", "-", "", "bad", message)
        for name, message in consoles_on_buses(text, ports, board, source)
    ]


def _target(connector: Any) -> str:
    if hasattr(connector, "host"):
        return f"{connector.host}:{connector.port}"
    for key in ("port", "url", "endpoint", "topic"):
        if hasattr(connector, key):
            return str(getattr(connector, key))
    return ""


def summary(cfg: GatewayConfig, path: Path) -> Table:
    from rich.table import Table

    table = Table(title=f"gateway {cfg.gateway.id} ({path})")
    for column in ("connector", "type", "target", "devices", "tags", "poll"):
        table.add_column(column)
    for connector in cfg.connectors:
        keys = connector.reading_keys() if hasattr(connector, "reading_keys") else []
        devices = {device for (device, _tag), _loc in keys}
        poll = getattr(connector, "poll_interval", None)
        table.add_row(
            connector.name,
            connector.type,
            _target(connector),
            str(len(devices)),
            str(len(keys)),
            f"{poll:g}s" if poll else "stream",
        )
    return table


async def probe_all(cfg: GatewayConfig, probe_timeout: float) -> list[Row]:
    """Probe every connector at once, each under its own timeout; one failing never stops
    the others, and every tag the config defines gets a row."""
    results = await asyncio.gather(*(probe_one(c, probe_timeout) for c in cfg.connectors))
    return [row for rows in results for row in rows]


async def probe_one(config: Any, probe_timeout: float) -> list[Row]:
    name = config.name
    try:
        readings = await _read_once(config, probe_timeout)
    except _Skipped as skipped:
        return [(name, "-", "-", "", SKIPPED, str(skipped))]
    except TimeoutError:
        return [(name, "-", "-", "", "bad", f"no answer within {probe_timeout:g}s")]
    except ConnectorError as exc:
        return [(name, "-", "-", "", "bad", str(exc))]
    except Exception as exc:  # a probe reports whatever a device or library does, as a row
        return [(name, "-", "-", "", "bad", f"{type(exc).__name__}: {exc}")]
    rows = [_row(name, r) for r in readings]
    read = {(r.device, r.tag) for r in readings}
    keys = config.reading_keys() if hasattr(config, "reading_keys") else []
    for (device, tag), _where in keys:
        if (device, tag) not in read:
            rows.append((name, device, tag, "", SKIPPED, NOT_IN_ONE_READ))
    return rows


class _Skipped(GatewayError):
    """The connector cannot be read on demand."""


async def _read_once(config: Any, probe_timeout: float) -> list[Reading]:
    connector = build_connector(config)
    read_once = getattr(connector, "probe", None)  # a streaming connector that can read on demand
    polling = connector if isinstance(connector, PollingConnector) else None
    if read_once is None and polling is None:
        raise _Skipped("streaming connector: see `gateway run` logs")
    async with asyncio.timeout(probe_timeout):
        if read_once is not None:
            readings: list[Reading] = await read_once()
            return readings
        assert polling is not None  # checked above: not streaming-only
        await polling.open()
        try:
            return await polling.poll()
        finally:
            await polling.close()


def _row(connector: str, reading: Reading) -> Row:
    value = "" if reading.value is None else repr(reading.value)
    return (connector, reading.device, reading.tag, value, reading.quality.value, reading.reason)


def probe_table(rows: list[Row]) -> Table:
    from rich.table import Table

    table = Table(title="probe")
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows:
        style = "" if row[4] == Quality.GOOD.value else "red"
        table.add_row(*row, style=style)
    return table

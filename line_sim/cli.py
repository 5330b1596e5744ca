"""The `factory-line` command: run the whole simulated line, or one of its parts."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated

import typer

from factory_common import logs
from factory_common.cli import FactoryTyper
from line_sim.anodizing import LineParams

# FactoryTyper: an uncaught FactoryError becomes its message and exit code (errors.py).
app = FactoryTyper(
    help="The simulated anodizing line: simulator, broker, gateway and edge node on one machine.",
    no_args_is_help=True,
    add_completion=False,
)

DEFAULT_DATA_DIR = Path("var/line")


@app.command()
def run(
    data_dir: Annotated[Path, typer.Option(help="All data, configs and logs go here.")] = (
        DEFAULT_DATA_DIR
    ),
    http_port: Annotated[
        int | None, typer.Option(help="Edge web/API port [default: 8080, or a free one]")
    ] = None,
    mqtt_port: Annotated[int | None, typer.Option(help="Broker port [default: a free one]")] = None,
    modbus_port: Annotated[
        int | None, typer.Option(help="Simulator port [default: a free one]")
    ] = None,
    broker: Annotated[
        str, typer.Option(help="auto | mosquitto | embedded | external (one on --mqtt-port)")
    ] = "auto",
    seed: Annotated[int | None, typer.Option(help="Seed for a repeatable line")] = None,
    defect_probability: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of products with a defect colour")
    ] = 0.15,
    speed: Annotated[float, typer.Option(min=0.1, max=100.0, help="Plant time factor")] = 1.0,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (tests, demos)")
    ] = None,
    gateway_config: Annotated[Path | None, typer.Option(help="Template gateway config")] = None,
    edge_config: Annotated[Path | None, typer.Option(help="Template edge config")] = None,
) -> None:
    """Start the simulated line (each part its own process) and print the URL to open.

    The first run creates the web page's logins (engineer, viewer) with random passwords in
    DATA_DIR/credentials.txt; later runs reuse them. Writes DATA_DIR/ready.json (URL, ports,
    pids, credentials file) once the edge node answers; Ctrl-C or SIGTERM stops every part.
    """
    from line_sim.orchestrator import RunOptions, StartupError, run_line

    if broker not in ("auto", "mosquitto", "embedded", "external"):
        raise typer.BadParameter("use auto, mosquitto, embedded or external", param_hint="--broker")
    options = RunOptions(
        data_dir=data_dir,
        http_port=http_port,
        mqtt_port=mqtt_port,
        modbus_port=modbus_port,
        broker=broker,  # type: ignore[arg-type]
        seed=seed,
        defect_probability=defect_probability,
        speed=speed,
        duration=duration,
        gateway_template=gateway_config,
        edge_template=edge_config,
    )
    try:
        code = asyncio.run(run_line(options))
    except StartupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


@app.command()
def simulate(
    host: str = "127.0.0.1",
    port: int = 5020,
    seed: Annotated[int | None, typer.Option(help="Seed for a repeatable line")] = None,
    defect_probability: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.05,
    tick: Annotated[float, typer.Option(min=0.01, help="Seconds between model steps")] = 0.2,
    speed: Annotated[float, typer.Option(min=0.1, max=100.0, help="Plant time factor")] = 1.0,
) -> None:
    """Run only the Modbus TCP simulator (unit 1 = bath PLC, unit 2 = instruments)."""
    from line_sim.modbus_server import serve

    logs.configure()
    params = LineParams(seed=seed, defect_probability=defect_probability)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(host, port, params, tick, speed))


@app.command()
def broker(host: str = "127.0.0.1", port: int = 1883) -> None:
    """Run only the embedded MQTT broker (amqtt), for machines without Mosquitto."""
    from line_sim.broker import run_embedded

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_embedded(host, port))

"""`gateway-agent`: run the update agent, install the first release, and ask it for updates.

`update`, `config` and `rollback` only drop a request in the agent's folder (what an SSH
backend calls); the running agent carries it out. `--wait` follows it to its end and exits
0 when it was committed, 1 when refused, failed or returned, 2 on bad usage.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Annotated

import typer

from factory_common import logs, wire
from factory_common.config import ConfigError
from gateway_image.agent.artifact import ArtifactError, load_public_keys, read_manifest, sha256_file
from gateway_image.agent.firstboot import install_first_slot
from gateway_image.agent.requests import spool
from gateway_image.agent.service import Agent, load_state
from gateway_image.agent.slots import AgentPaths, InstallError
from gateway_image.agent.supervisor import ProcessSupervisor, Supervisor, SystemdSupervisor

app = typer.Typer(help="The gateway's update agent.", no_args_is_help=True, add_completion=False)

Root = Annotated[Path, typer.Option("--root", envvar="GATEWAY_AGENT_ROOT", help="Slots root.")]
Data = Annotated[Path, typer.Option("--data-dir", envvar="GATEWAY_DATA_DIR", help="Buffer folder.")]
Wait = Annotated[bool, typer.Option("--wait/--no-wait", help="Follow the request to its end.")]
Timeout = Annotated[float, typer.Option("--health-timeout", help="Seconds to turn healthy.")]
DEFAULT_ROOT = Path("/opt/factory-gateway")
DEFAULT_DATA = Path("/var/lib/factory-gateway")


def _paths(root: Path, data_dir: Path) -> AgentPaths:
    return AgentPaths(root=root, data_dir=data_dir, keys_dir=root / "keys")


@app.command()
def run(
    root: Root = DEFAULT_ROOT,
    data_dir: Data = DEFAULT_DATA,
    systemd: Annotated[bool, typer.Option(help="The gateway is factory-gateway.service.")] = False,
    log_json: Annotated[bool | None, typer.Option("--log-json/--no-log-json")] = None,
) -> None:
    """Run the agent: keep the gateway running, carry out requests, commit or return."""
    from gateway_image.agent.link import AgentLink
    from gateway_image.firmware.config import load_gateway_config

    logs.configure(json=log_json)
    paths = _paths(root, data_dir)
    try:
        state = load_state(paths)
        config = load_gateway_config(paths.config_slot(state.committed.config))
    except (FileNotFoundError, ConfigError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    supervisor: Supervisor = (
        SystemdSupervisor()
        if systemd
        else ProcessSupervisor(
            [
                str(paths.current / "bin" / "gateway"),
                "run",
                str(paths.active_config),
                "--data-dir",
                str(data_dir),
                "--log-json",
            ],
            paths.run_dir / "gateway.pid",
            paths.run_dir / "gateway.log",
        )
    )
    paths.requests.mkdir(parents=True, exist_ok=True)
    link = AgentLink(config.gateway.id, config.mqtt, paths.requests)
    link.start()
    agent = Agent(paths, config.gateway.id, supervisor, link)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    agent.start()
    while not stop.is_set():
        agent.step()
        stop.wait(0.2)
    supervisor.stop()
    link.stop()


@app.command("install-first")
def install_first(
    artifact: Annotated[Path, typer.Option("--artifact", help="The signed release artifact.")],
    config: Annotated[Path, typer.Option("--config", help="The gateway's config file.")],
    release_key: Annotated[list[Path], typer.Option("--release-key", help="release.pub")] = [],  # noqa: B006
    root: Root = DEFAULT_ROOT,
    data_dir: Data = DEFAULT_DATA,
) -> None:
    """First boot: verify the artifact and install it with the config into slot A (offline)."""
    try:
        state = install_first_slot(_paths(root, data_dir), artifact, config, release_key)
    except (ArtifactError, InstallError, ConfigError, OSError) as exc:
        typer.echo(f"first install refused: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"release {state.committed.release} installed in slot {state.committed.slot}")


def _ask(root: Path, request: wire.UpdateRequest, wait: bool, timeout: float) -> None:
    spool(root / "requests", request)
    typer.echo(f"request {request.id} queued")
    if not wait:
        return
    paths = _paths(root, DEFAULT_DATA)
    deadline = time.monotonic() + timeout + 600  # the install itself may take minutes
    while time.monotonic() < deadline:
        state = load_state(paths)
        if state.request == request.id and state.phase in wire.TERMINAL_PHASES:
            typer.echo(f"{state.phase.value}: {state.detail or state.committed.release}")
            raise typer.Exit(0 if state.phase is wire.UpdatePhase.COMMITTED else 1)
        time.sleep(0.5)
    typer.echo("the agent did not finish the request in time: see `gateway-agent state`", err=True)
    raise typer.Exit(1)


def _request(
    root: Path, action: wire.UpdateAction, timeout: float, **fields: object
) -> wire.UpdateRequest:
    state = load_state(_paths(root, DEFAULT_DATA))
    return wire.UpdateRequest(
        v=wire.WIRE_VERSION,
        id=f"local-{uuid.uuid4().hex[:12]}",
        gateway=state.gateway,
        action=action,
        health_timeout_s=timeout,
        issued_at=wire.now_ns(),
        issued_by="local",
        **fields,  # type: ignore[arg-type]
    )


@app.command()
def update(
    artifact: Path,
    downgrade: Annotated[bool, typer.Option(help="Allow an older release.")] = False,
    root: Root = DEFAULT_ROOT,
    wait: Wait = False,
    health_timeout: Timeout = 120.0,
) -> None:
    """Ask the agent to install ARTIFACT (already on this gateway) on trial."""
    try:
        manifest = read_manifest(artifact, load_public_keys(sorted((root / "keys").glob("*.pub"))))
    except (ArtifactError, OSError) as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    request = _request(
        root,
        wire.UpdateAction.INSTALL,
        health_timeout,
        artifact=str(artifact.resolve()),
        release=manifest.version,
        sha256=sha256_file(artifact),
        downgrade=downgrade,
    )
    _ask(root, request, wait, health_timeout)


@app.command()
def config(
    file: Path, root: Root = DEFAULT_ROOT, wait: Wait = False, health_timeout: Timeout = 120.0
) -> None:
    """Ask the agent to run FILE as the gateway config on trial (the last good one is kept)."""
    request = _request(root, wire.UpdateAction.CONFIG, health_timeout, config=file.read_text())
    _ask(root, request, wait, health_timeout)


@app.command()
def rollback(
    root: Root = DEFAULT_ROOT, wait: Wait = False, health_timeout: Timeout = 120.0
) -> None:
    """Ask the agent to return to the release and config committed before the current ones."""
    _ask(root, _request(root, wire.UpdateAction.ROLLBACK, health_timeout), wait, health_timeout)


@app.command()
def state(
    root: Root = DEFAULT_ROOT,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """Show the agent's state: committed release, phase, request, detail."""
    import msgspec

    current = load_state(_paths(root, DEFAULT_DATA))
    if as_json:
        typer.echo(json.dumps(msgspec.to_builtins(current)))
        return
    c = current.committed
    typer.echo(f"{current.phase.value}: release {c.release} (slot {c.slot}, config {c.config})")
    if current.detail:
        typer.echo(current.detail)


if __name__ == "__main__":
    app()

"""`factory-line run`: bring up broker, simulator, edge node and gateway as separate processes.

Order matters: the broker first (both tiers connect to it), then the simulator (the gateway
polls it), the edge node (so it is subscribed before the first batch), the gateway last.
Shutdown goes the other way, so the gateway can flush to a broker that is still there.
Everything a run writes (configs with the chosen ports, buffer, store, broker files, logs)
lives under one data directory; `ready.json` there tells scripts and tests the line is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edge_node.auth import UserError
from factory_common.errors import SimError
from line_sim.broker import BrokerChoice, BrokerUnavailable, plan_broker
from line_sim.logins import CredentialsError, Login, ensure_logins, login_lines
from line_sim.processes import Child

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEFAULT_HTTP_PORT = 8080
RULES_FILE = "anodizing-defect.yaml"
CREDENTIALS = "credentials.txt"


class StartupError(SimError, RuntimeError):
    """The line could not come up; the message says which part and what to do."""


@dataclass(frozen=True)
class RunOptions:
    data_dir: Path
    http_port: int | None = None
    mqtt_port: int | None = None
    modbus_port: int | None = None
    broker: BrokerChoice = "auto"
    seed: int | None = None
    defect_probability: float = 0.15  # a defect every ~3 min: a newcomer sees the rule work
    speed: float = 1.0
    duration: float | None = None
    gateway_template: Path | None = None
    edge_template: Path | None = None
    startup_timeout: float = 30.0
    stop_timeout: float = 10.0


@dataclass(frozen=True)
class Ports:
    http: int
    mqtt: int
    modbus: int


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_ports(count: int) -> list[int]:
    """`count` different free loopback ports. All are held at once while they are picked: a
    port let go can come straight back from the next bind to port 0."""
    with contextlib.ExitStack() as held:
        socks = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def choose_ports(options: RunOptions) -> Ports:
    """Ports asked for must be free; the others are picked (1883 is often taken already).

    None or 0 means "pick one"; for the web page, 8080 when it is free.
    """
    for name, port in (
        ("--http-port", options.http_port),
        ("--mqtt-port", options.mqtt_port),
        ("--modbus-port", options.modbus_port),
    ):
        if options.broker == "external" and name == "--mqtt-port":
            if not port or port_free(port):
                raise StartupError(
                    f"--broker external needs --mqtt-port with a broker listening on it "
                    f"(nothing listens on {port})"
                )
        elif port and not port_free(port):
            raise StartupError(f"port {port} ({name}) is in use: choose another or leave it out")
    asked = {options.http_port, options.mqtt_port, options.modbus_port} - {None, 0}
    picked = iter([p for p in free_ports(3 + len(asked)) if p not in asked])
    http = options.http_port
    if http is None and DEFAULT_HTTP_PORT not in asked and port_free(DEFAULT_HTTP_PORT):
        http = DEFAULT_HTTP_PORT
    return Ports(http or next(picked), options.mqtt_port or next(picked),
                 options.modbus_port or next(picked))  # fmt: skip


def _template(given: Path | None, name: str) -> dict[str, Any]:
    path = given or EXAMPLES / name
    if not path.is_file():
        raise StartupError(
            f"config template {path} not found: run from a clone of the repository "
            f"or pass --{'gateway' if 'gateway' in name else 'edge'}-config FILE"
        )
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise StartupError(f"{path}: expected a YAML mapping at the top level")
    return data


def gateway_mqtt_overrides(broker_kind: str) -> dict[str, str]:
    """amqtt speaks MQTT 3.1.1 only; the gateway defaults to MQTT 5 (PUBACK reason codes).

    Both tiers also give amqtt a user name (any), so it queues for their persistent sessions.
    """
    if broker_kind != "amqtt":
        return {}
    from gateway_image.firmware.config import MqttConfig

    if "protocol" not in MqttConfig.model_fields:
        raise StartupError(
            "the embedded amqtt broker speaks MQTT 3.1.1 only and this gateway needs MQTT 5: "
            "install Mosquitto (`sudo apt-get install mosquitto`) and run again"
        )
    return {"protocol": "3.1.1", "username": "line-gateway"}


def edge_mqtt_overrides(broker_kind: str) -> dict[str, str]:
    return {"username": "line-edge"} if broker_kind == "amqtt" else {}


def write_configs(
    options: RunOptions,
    ports: Ports,
    config_dir: Path,
    gateway_mqtt: dict[str, str] | None = None,
    edge_mqtt: dict[str, str] | None = None,
) -> tuple[Path, Path]:
    """Copies of the example configs, rewritten for this run's ports (and broker)."""
    config_dir.mkdir(parents=True, exist_ok=True)
    gateway = _template(options.gateway_template, "anodizing-gateway.yaml")
    gateway.setdefault("mqtt", {}).update(host="127.0.0.1", port=ports.mqtt, **(gateway_mqtt or {}))
    for connector in gateway.get("connectors", []):
        if connector.get("type") == "modbus_tcp":
            connector.update(host="127.0.0.1", port=ports.modbus)
    edge = _template(options.edge_template, "anodizing-edge.yaml")
    edge.setdefault("mqtt", {}).update(host="127.0.0.1", port=ports.mqtt, **(edge_mqtt or {}))
    edge.setdefault("http", {}).update(host="127.0.0.1", port=ports.http)
    if "rules" not in edge:
        edge["rules"] = {"path": str(copy_rules(config_dir))}
    paths = config_dir / "gateway.yaml", config_dir / "edge.yaml"
    for path, data in zip(paths, (gateway, edge), strict=True):
        header = "# Written by `factory-line run` from the example config, with this run's ports.\n"
        path.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return paths


def copy_rules(config_dir: Path) -> Path:
    """The paper's defect rule, copied fresh each run (edit the example to change it)."""
    source = EXAMPLES / "rules" / RULES_FILE
    if not source.is_file():
        raise StartupError(f"rules file {source} not found: run from a clone of the repository")
    target = config_dir / "rules" / RULES_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


async def prepare_logins(edge_cfg: Path, edge_dir: Path, credentials: Path) -> list[Login]:
    """The line's users in the edge's users file (none when the config turns login off)."""
    from edge_node.config import load_edge_config
    from factory_common.config import ConfigError

    try:
        auth = load_edge_config(edge_cfg).auth
    except ConfigError:
        return []  # the edge itself reports the config error, with its log, at start
    if not auth.enabled:
        return []
    try:  # argon2 hashing takes a moment: keep the loop (and Ctrl-C) responsive
        return await asyncio.to_thread(ensure_logins, auth.resolve_path(edge_dir), credentials)
    except (CredentialsError, UserError) as exc:
        raise StartupError(f"cannot prepare the line's logins: {exc}") from None


def console_script(name: str, extra: str) -> str:
    """The venv's script next to this interpreter, else one on PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise StartupError(f"`{name}` is not installed: pip install -e '.[{extra}]' (or make run)")
    return found


async def _port_open(port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def http_status(port: int, path: str = "/") -> int | None:
    """Status code of GET http://127.0.0.1:port/path, or None if nothing answers."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1.0)
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        await asyncio.wait_for(writer.drain(), 1.0)
        status = await asyncio.wait_for(reader.readline(), 2.0)
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()
    parts = status.split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


class Line:
    """One run of the simulated line."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.data_dir = options.data_dir.resolve()
        self.children: list[Child] = []
        self.stop = asyncio.Event()
        self.failed: str | None = None
        self.logins: list[Login] = []
        self.credentials = self.data_dir / CREDENTIALS

    def _child(self, name: str, argv: list[str]) -> Child:
        child = Child(name, argv, self.data_dir / "logs")
        self.children.append(child)
        return child

    async def _start(self, child: Child, ready: Any, what: str) -> None:
        """Start a child and wait for its readiness probe; a death or timeout is fatal."""
        await child.start(self.data_dir)
        deadline = time.monotonic() + self.options.startup_timeout
        while not await ready():
            if child.returncode is not None:
                await child.wait()
                raise StartupError(
                    f"{child.name} exited with code {child.returncode} during start-up "
                    f"({' '.join(child.argv)}).\nLast lines of {child.log_path}:\n{child.tail()}"
                )
            if time.monotonic() > deadline:
                raise StartupError(
                    f"{child.name} did not become ready ({what}) within "
                    f"{self.options.startup_timeout:g}s; see {child.log_path}"
                )
            await asyncio.sleep(0.1)

    async def start_all(self) -> tuple[Ports, str]:
        opts = self.options
        for sub in ("logs", "config", "broker", "gateway", "edge"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        # A run killed with -9 leaves its ready.json: never let a waiter mistake it for ours.
        (self.data_dir / "ready.json").unlink(missing_ok=True)
        ports = choose_ports(opts)
        gateway_bin = console_script("gateway", "gateway")
        edge_bin = console_script("edge-node", "edge")
        try:
            plan = plan_broker(opts.broker, ports.mqtt, self.data_dir / "broker")
        except BrokerUnavailable as exc:
            raise StartupError(str(exc)) from None
        gateway_cfg, edge_cfg = write_configs(
            opts,
            ports,
            self.data_dir / "config",
            gateway_mqtt_overrides(plan.kind),
            edge_mqtt_overrides(plan.kind),
        )
        print(f"factory-line: broker: {plan.describe()}", flush=True)
        self.logins = await prepare_logins(edge_cfg, self.data_dir / "edge", self.credentials)
        if plan.argv:
            broker = self._child("broker", plan.argv)
            await self._start(broker, lambda: _port_open(ports.mqtt), f"port {ports.mqtt}")
        sim = self._child("simulator", simulator_argv(opts, ports.modbus))
        await self._start(sim, lambda: _port_open(ports.modbus), f"port {ports.modbus}")
        edge = self._child(
            "edge", [edge_bin, "run", str(edge_cfg), "--data-dir", str(self.data_dir / "edge")]
        )
        answers = lambda: _answers(ports.http)  # noqa: E731
        await self._start(edge, answers, f"HTTP on port {ports.http}")
        gateway_argv = [gateway_bin, "run", str(gateway_cfg)]
        gateway_argv += ["--data-dir", str(self.data_dir / "gateway")]
        gateway = self._child("gateway", gateway_argv)
        await self._start(gateway, _alive_for(gateway, 1.0), "stays up for 1 s")
        return ports, plan.kind

    def write_ready(self, ports: Ports, broker: str) -> Path:
        url = f"http://127.0.0.1:{ports.http}/"
        info = {
            "url": url,
            "http_port": ports.http,
            "mqtt_port": ports.mqtt,
            "modbus_port": ports.modbus,
            "broker": broker,
            "data_dir": str(self.data_dir),
            # Logins are in this file (0600), never in ready.json; None when login is off.
            "credentials": str(self.credentials) if self.logins else None,
            "pids": {c.name: c.pid for c in self.children},
        }
        path = self.data_dir / "ready.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)  # atomic: a reader never sees half a file
        return path

    async def supervise(self) -> None:
        """Wait for Ctrl-C/SIGTERM, the --duration, or a part dying on its own."""
        waits: list[asyncio.Task[Any]] = [asyncio.create_task(self.stop.wait())]
        waits += [asyncio.create_task(c.wait(), name=c.name) for c in self.children]
        timeout = self.options.duration
        done, pending = await asyncio.wait(
            waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        for task in done:
            if task is not waits[0]:
                name = task.get_name()
                child = next(c for c in self.children if c.name == name)
                self.failed = (
                    f"{name} stopped unexpectedly (exit code {child.returncode}); "
                    f"the line is shutting down.\nLast lines of {child.log_path}:\n{child.tail()}"
                )
                break

    async def stop_all(self) -> None:
        for child in reversed(self.children):
            await child.stop(self.options.stop_timeout)
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / "ready.json").unlink()


def simulator_argv(opts: RunOptions, port: int) -> list[str]:
    argv = [sys.executable, "-m", "line_sim", "simulate", "--port", str(port)]
    argv += ["--defect-probability", str(opts.defect_probability), "--speed", str(opts.speed)]
    return argv + (["--seed", str(opts.seed)] if opts.seed is not None else [])


async def _answers(port: int) -> bool:
    return await http_status(port) is not None


def _alive_for(child: Child, seconds: float) -> Any:
    started = time.monotonic()

    async def probe() -> bool:
        return child.returncode is None and time.monotonic() - started >= seconds

    return probe


def banner(line: Line, ports: Ports, ready: Path) -> str:
    rows = [f"open   http://127.0.0.1:{ports.http}/"]
    rows += login_lines(line.logins, line.credentials)
    rows += [
        "watch  Alarms (limits in config/edge.yaml) and Defects (the defect rule, labels printed)",
        f"data   {line.data_dir} (logs in logs/, run info in {ready.name})",
        "Ctrl-C stops everything.",
    ]
    body = "".join(f"  {row}\n" for row in rows)
    return f"\nfactory-line: the simulated anodizing line is up.\n{body}"


async def run_line(options: RunOptions) -> int:
    """Run until stopped; 0 after a clean stop, 1 when a part died."""
    line = Line(options)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, line.stop.set)
    try:
        ports, broker = await line.start_all()
        ready = line.write_ready(ports, broker)
        print(banner(line, ports, ready), flush=True)
        await line.supervise()
    finally:
        await line.stop_all()
    if line.failed:
        print(f"factory-line: error: {line.failed}", file=sys.stderr, flush=True)
        return 1
    print("factory-line: stopped.", flush=True)
    return 0

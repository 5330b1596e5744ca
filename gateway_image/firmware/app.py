"""The gateway process: config -> durable buffer -> one runner per connector -> MQTT uplink.

Shutdown (SIGTERM/SIGINT) is ordered so nothing is lost or needlessly duplicated: connectors
stop first, readings still waiting for their group commit are committed, the uplink waits
briefly for in-flight PUBACKs and publishes a retained offline status, then the buffer closes.

Process groups (`--only a,b`): a hung connector (a driver stuck in a blocking call) can be
isolated in its own process. Such a process is, on the wire, its own gateway `<id>.<group>`
(group defaults to the connector names joined by '-'), with its own buffer file
`<buffer>.<group>.sqlite`, client id, status and sequence numbers, so two processes never
share a sequence space or overwrite each other's retained status. The edge therefore lists
each group as a gateway of its own; the broker ACL must allow `<id>.*` for that gateway's
certificate.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

from factory_common import wire
from factory_common.errors import GatewayError
from factory_common.logs import get_logger
from factory_common.wire import Reading
from gateway_image.firmware.buffer.store import DurableBuffer
from gateway_image.firmware.catalogue import catalogue
from gateway_image.firmware.commands import CommandExecutor, ExecutedStore, store_path_for
from gateway_image.firmware.config import ConnectorConfig, GatewayConfig
from gateway_image.firmware.connectors.registry import BUILDERS
from gateway_image.firmware.heartbeat import beat_forever, heartbeat_path
from gateway_image.firmware.runner import ConnectorRunner, Sink, runner_for
from gateway_image.firmware.uplink.commands import CommandHandler
from gateway_image.firmware.uplink.plan import SendPlan
from gateway_image.firmware.uplink.uplink import Uplink


class GatewaySetupError(GatewayError, ValueError):
    """The gateway cannot start as asked (e.g. --only names an unknown connector)."""


TYPE_PREFIX = "type:"


def buffer_sink(buffer: DurableBuffer) -> Sink:
    """The connectors' sink: each poll is queued for the next group commit and the runner
    polls again on schedule, never waiting for the disk (buffer/committer.py)."""

    async def sink(readings: list[Reading]) -> None:
        buffer.offer(readings)

    return sink


def select_connectors(config: GatewayConfig, only: Sequence[str] | None) -> list[ConnectorConfig]:
    """The connectors this process runs: named ones, and every one of a `type:NAME` entry.

    A type with no connector in this config selects nothing (one compose file serves a whole
    balena fleet, and not every gateway has GPIO); an unknown name or type is an error.
    """
    if not only:
        return list(config.connectors)
    types = {entry.removeprefix(TYPE_PREFIX) for entry in only if entry.startswith(TYPE_PREFIX)}
    names = [entry for entry in only if not entry.startswith(TYPE_PREFIX)]
    known = [c.name for c in config.connectors]
    unknown = [repr(name) for name in names if name not in known]
    unknown += [f"{TYPE_PREFIX}{t}" for t in sorted(types - set(BUILDERS))]
    if unknown:
        raise GatewaySetupError(
            f"--only names {', '.join(unknown)}, but gateway {config.gateway.id} has connectors "
            f"{', '.join(map(repr, known)) or '(none)'} of the types {', '.join(sorted(BUILDERS))}"
        )
    return [c for c in config.connectors if c.name in names or c.type in types]


def group_identity(config: GatewayConfig, only: Sequence[str] | None, group: str | None) -> str:
    """The id this process uses on the wire: the gateway id, or `<id>.<group>` for --only."""
    if not only:
        return config.gateway.id
    name = group or "-".join(entry.removeprefix(TYPE_PREFIX) for entry in only)
    try:
        return wire.check_id(f"{config.gateway.id}.{name}", "process group id")
    except wire.WireError as exc:
        raise GatewaySetupError(f"{exc}; pass a shorter --group NAME") from None


CANCEL_AGAIN = 0.5  # seconds before a task that is still running is cancelled again


async def cancel_all(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Cancel `tasks` and wait until every one has ended, cancelling again while one runs.

    A library can lose a cancel: Python 3.11's asyncio.wait_for returns the result when it
    arrives together with the cancel, and pymodbus awaits every response so. A connector
    polling flat out then polled on after SIGTERM, and the gateway never stopped.
    """
    while pending := [t for t in tasks if not t.done()]:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=CANCEL_AGAIN)
    await asyncio.gather(*tasks, return_exceptions=True)  # retrieved: nothing logged as lost


class Gateway:
    """One gateway process; `await Gateway(...).run(stop)` until `stop` is set."""

    def __init__(
        self,
        config: GatewayConfig,
        data_dir: Path,
        *,
        only: Sequence[str] | None = None,
        group: str | None = None,
        command_handler: CommandHandler | None = None,
        plan: SendPlan | None = None,
    ) -> None:
        self.config = config
        self.data_dir = data_dir
        self.connectors = select_connectors(config, only)
        self.wire_id = group_identity(config, only, group)
        self.boot = uuid.uuid4().hex
        self.command_handler = command_handler
        self.plan = plan  # None: in seq order; SendPlan(live_first=True): live before backlog
        path = config.buffer.resolve_path(data_dir)
        if self.wire_id != config.gateway.id:
            suffix = self.wire_id.removeprefix(config.gateway.id + ".")
            path = path.with_name(f"{path.stem}.{suffix}{path.suffix}")
        self.buffer_path = path
        self.runners: list[ConnectorRunner] = []
        self.buffer: DurableBuffer | None = None
        self.uplink: Uplink | None = None
        self.log = get_logger(gateway=self.wire_id, boot=self.boot)

    async def run(self, stop: asyncio.Event) -> None:
        """Run every part until `stop` is set, then shut down in order (see module docstring)."""
        buffer = self.buffer = await asyncio.to_thread(
            DurableBuffer.from_config, self.config.buffer, self.buffer_path
        )
        self.log.info(
            "gateway_starting",
            connectors=[c.name for c in self.connectors],
            buffer=str(self.buffer_path),
            depth=buffer.depth,
            last_seq=buffer.last_seq,
            dropped=buffer.dropped,
        )

        sink = buffer_sink(buffer)
        self.runners = [runner_for(c, sink, self.wire_id) for c in self.connectors]
        # Default command handler: writes through this process's own connectors (commands.py).
        store = ExecutedStore(store_path_for(self.buffer_path))
        executor = CommandExecutor(self.wire_id, self.connectors, lambda: self.runners, store)
        self.uplink = Uplink(
            self.wire_id,
            self.config.mqtt,
            buffer,
            boot=self.boot,
            health=lambda: [r.health() for r in self.runners],
            command_handler=self.command_handler or executor,
            plan=self.plan,
            catalogue=catalogue(self.wire_id, self.connectors),
        )
        try:
            async with asyncio.TaskGroup() as tasks:
                runs = [
                    tasks.create_task(r.run(), name=f"connector-{r.name}") for r in self.runners
                ]
                uplink = tasks.create_task(self.uplink.run(), name="uplink")
                beat = tasks.create_task(beat_forever(heartbeat_path(self.buffer_path)))
                await stop.wait()
                self.log.info("gateway_stopping")
                for runner in self.runners:
                    runner.stop()
                await cancel_all(runs)
                await buffer.flush()
                uplink.cancel()
                beat.cancel()
        finally:
            await buffer.aclose()
            executor.close()
            self.log.info("gateway_stopped", depth=buffer.depth, last_seq=buffer.last_seq)


# The event loop mostly waits on sockets while worker threads do CPU work (the buffer's
# commits, paho's network thread). At Python's default 5 ms switch interval every socket
# wake-up of the loop may wait that long for the GIL: with eight Modbus requests per poll
# that was half of one connector's time (docs/benchmarks.md, "Gateway").
SWITCH_INTERVAL = 0.0002


async def serve(gateway: Gateway) -> None:
    """Run a gateway until SIGTERM or SIGINT (this process's loop is the gateway's)."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await gateway.run(stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)

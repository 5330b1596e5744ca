"""Monitoring, alarms, rules and the command sender of one edge process, built from its config.

app.py makes one `Operations`, registers `observers()` with ingest, runs `tasks()` in its
TaskGroup, `install()`s the services on the FastAPI app, and `close()`s it after the tasks
stopped. Alarms, rule firings and commands share one SQLite file (`monitoring.db`).

An API replica (`--role api`) gets alarms (list, acknowledge, the live stream, following the
changes the ingest process writes), rule firings and the command sender, but no monitoring or
rule engine: those follow the readings, which only the ingest process sees.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from edge_node.alarms.feed import Feed
from edge_node.alarms.monitor import ChainedLimits, LimitsSource, Monitor, StaticLimits
from edge_node.alarms.service import AlarmService, Outbox
from edge_node.alarms.shelving import Shelves
from edge_node.commands import CommandLog, CommandSender
from edge_node.config import EdgeConfig
from edge_node.rules.actions import Services
from edge_node.rules.engine import RuleEngine
from edge_node.rules.store import FiringStore
from edge_node.store import Store
from factory_common.wire import Batch


@dataclass
class Operations:
    commands: CommandSender
    command_log: CommandLog
    alarms: AlarmService | None = None
    shelves: Shelves | None = None
    monitor: Monitor | None = None
    engine: RuleEngine | None = None
    firings: FiringStore | None = None
    _feeds: list[Feed] = field(default_factory=list)

    def observers(self) -> list[Callable[[Sequence[Batch]], None]]:
        """For Ingest.observers: each only queues the flush (bounded, drops counted)."""
        return [feed.offer for feed in self._feeds]

    def tasks(self) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        out: list[tuple[str, Coroutine[Any, Any, None]]] = [("commands", self.commands.run())]
        if self.alarms is not None:
            out.append(("alarm-streams", self._end_streams_when_cancelled(self.alarms)))
            if self.monitor is None:  # an API replica: changes come from the ingest process
                out.append(("alarm-follow", self.alarms.follow()))
        if self.monitor is not None:
            out.append(("monitor", self.monitor.run()))
        if self.engine is not None:
            out.append(("rules", self.engine.run()))
        return out

    @staticmethod
    async def _end_streams_when_cancelled(alarms: AlarmService) -> None:
        """Cancelled at shutdown: end the live alarm streams (SSE), which would otherwise keep
        the HTTP server waiting for their connections to close."""
        try:
            await asyncio.Event().wait()
        finally:
            alarms.end_subscriptions()

    def install(self, app: FastAPI) -> None:
        """Where the routes find the services (routes/alarms.py, rules.py, commands.py)."""
        app.state.alarms = self.alarms
        app.state.shelves = self.shelves
        app.state.rules = self.engine
        app.state.commands = self.commands
        app.state.command_log = self.command_log
        app.state.monitor = self.monitor
        app.state.firings = self.firings

    def close(self) -> None:
        for closable in (self.firings, self.shelves, self.alarms, self.command_log):
            if closable is not None:
                closable.close()


def open_operations(
    config: EdgeConfig,
    data_dir: Path,
    store: Store,
    *,
    role: str = "all",
    masterdata: Any = None,
    outbox: Outbox | None = None,
) -> Operations:
    """`masterdata` (edge_node/masterdata) gives limits and recipes; `outbox` (the CloudOutbox)
    takes alarm changes and the rules' cloud events. Both may be None (no cloud configured)."""
    mon = config.monitoring
    db = mon.resolve_db(data_dir)
    command_log = CommandLog(db)
    # Unique per process: API replicas each have their own connection for acks.
    client_id = f"{config.client_id}:cmd-{uuid.uuid4().hex[:8]}"
    ops = Operations(CommandSender(config.mqtt, client_id, command_log), command_log)
    ops.alarms = AlarmService(db, outbox=outbox) if mon.enabled else None
    ops.shelves = Shelves(db) if mon.enabled else None
    if role == "api":
        ops.firings = FiringStore(db) if config.rules is not None else None  # read them only
        return ops
    sources: list[LimitsSource] = [s for s in (masterdata,) if s is not None]
    limits = ChainedLimits(*sources, StaticLimits(mon.limits))
    if ops.alarms is not None:
        feed = Feed("monitor", mon.queue_depth)
        ops.monitor = Monitor(ops.alarms, limits, feed)
        ops._feeds.append(feed)
    if config.rules is not None:
        feed = Feed("rules", mon.queue_depth)
        ops.firings = FiringStore(db)
        ops.engine = RuleEngine(
            ops.firings,
            Services(commands=ops.commands, outbox=outbox, alarms=ops.alarms),
            path=config.rules.resolve_path(data_dir),
            feed=feed,
            limits=limits,
            masterdata=masterdata,
            reload_interval=config.rules.reload_interval,
        )
        ops.engine.seed_latest((v.series.name, v.ts, v.value) for v in store.latest())
        ops._feeds.append(feed)
    return ops

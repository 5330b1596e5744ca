"""Commands from the edge to gateways: publish a wire.Command, await its CommandAck, record both.

Used by rules (label printing, setpoints) and the UI's setpoint form. One MQTT connection of
its own (client id `<edge client id>:cmd-<random>`, clean session; the shipped broker admits a
certificate only under `<CN>` or `<CN>:<suffix>`): commands are not queued for a
gateway that is away, they expire; the caller learns that from the outcome (`timeout`).
Every command and its outcome is stored in SQLite (`commands` table) and logged.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_node.config import MqttConfig
from factory_common import wire
from factory_common.logs import get_logger
from factory_common.mqtt_settings import apply_login_and_tls
from factory_common.sqlite import open_db
from factory_common.wire import Command, CommandAck, TopicKind, Write

_SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY,
    gateway TEXT NOT NULL,
    writes TEXT NOT NULL,          -- JSON
    issued_by TEXT NOT NULL,
    issued_at INTEGER NOT NULL,    -- ns UTC
    status TEXT NOT NULL,          -- sent, then done/failed/rejected/expired/duplicate/timeout
    finished_at INTEGER,
    ack TEXT,                      -- JSON of the CommandAck
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS commands_issued ON commands (issued_at);
"""


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    id: str
    gateway: str
    status: str  # an AckStatus value, or "timeout" (no ack in time)
    writes: list[dict[str, Any]]
    issued_by: str
    issued_at: int
    finished_at: int
    ack: dict[str, Any] | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Executed and every write read back equal (the gateway's `done`)."""
        return self.status == wire.AckStatus.DONE.value

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


class CommandLog:
    """The `commands` table (in the monitoring database)."""

    def __init__(self, path: Path) -> None:
        self._db = open_db(path, _SCHEMA)
        self._lock = threading.Lock()

    def sent(self, command: Command) -> None:
        writes = msgspec.json.encode(command.writes).decode()
        with self._lock:
            self._db.execute(
                "INSERT INTO commands (id, gateway, writes, issued_by, issued_at, status)"
                " VALUES (?, ?, ?, ?, ?, 'sent')",
                (command.id, command.gateway, writes, command.issued_by, command.issued_at),
            )

    def finished(self, outcome: CommandOutcome) -> None:
        ack = msgspec.json.encode(outcome.ack).decode() if outcome.ack is not None else None
        with self._lock:
            self._db.execute(
                "UPDATE commands SET status = ?, finished_at = ?, ack = ?, detail = ? WHERE id = ?",
                (outcome.status, outcome.finished_at, ack, outcome.detail, outcome.id),
            )

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._db.execute(
                "SELECT id, gateway, writes, issued_by, issued_at, status, finished_at, ack,"
                " detail FROM commands ORDER BY issued_at DESC LIMIT ?",
                (limit,),
            )
            names = [c[0] for c in cursor.description]
            rows = cursor.fetchall()
        out = []
        for row in rows:
            item = dict(zip(names, row, strict=True))
            item["writes"] = msgspec.json.decode(item["writes"])
            item["ack"] = msgspec.json.decode(item["ack"]) if item["ack"] else None
            out.append(item)
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CommandSender:
    """`await sender.send(gateway, writes, issued_by=...)` -> CommandOutcome; run() connects."""

    def __init__(self, mqtt_config: MqttConfig, client_id: str, log: CommandLog | None) -> None:
        self.config = mqtt_config
        self.client_id = client_id
        self.log = log
        self._pending: dict[str, asyncio.Future[CommandAck]] = {}
        self._connected = asyncio.Event()
        self._client: mqtt.Client | None = None
        self._log = get_logger(component="commands")

    async def run(self) -> None:
        """Keep the MQTT connection (paho reconnects with backoff) until cancelled."""
        loop = asyncio.get_running_loop()
        client = self._client = self._make_client(loop)
        client.connect_async(self.config.host, self.config.port, keepalive=self.config.keepalive)
        client.loop_start()
        try:
            await asyncio.Event().wait()
        finally:
            client.disconnect()
            client.loop_stop()

    def _make_client(self, loop: asyncio.AbstractEventLoop) -> mqtt.Client:
        cfg = self.config
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv311
        )
        apply_login_and_tls(client, cfg)
        client.reconnect_delay_set(cfg.reconnect_min, cfg.reconnect_max)  # type: ignore[arg-type]

        def on_connect(c: mqtt.Client, _u: object, _f: Any, reason: Any, _p: object) -> None:
            if not reason.is_failure:
                c.subscribe(wire.subscription(TopicKind.ACK), qos=1)
                loop.call_soon_threadsafe(self._connected.set)

        def on_disconnect(_c: mqtt.Client, _u: object, _f: object, _r: object, _p: object) -> None:
            loop.call_soon_threadsafe(self._connected.clear)

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            loop.call_soon_threadsafe(self._on_ack, bytes(msg.payload))  # the one thread crossing

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_message = on_message
        return client

    def _on_ack(self, payload: bytes) -> None:
        try:
            ack = wire.decode(payload, CommandAck)
        except wire.WireError as exc:
            self._log.warning("ack_rejected", detail=str(exc)[:300])
            return
        future = self._pending.get(ack.id)
        if future is not None and not future.done():
            future.set_result(ack)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def send(
        self,
        gateway: str,
        writes: list[Write],
        *,
        issued_by: str,
        timeout: float = 10.0,  # noqa: ASYNC109 - a timeout is an outcome here, not an error
        expires: float = 30.0,
    ) -> CommandOutcome:
        """Publish one command and wait up to `timeout` s (connecting included) for its ack;
        the gateway refuses it after `expires` s."""
        now = wire.now_ns()
        command = Command(
            v=wire.WIRE_VERSION,
            id=uuid.uuid4().hex,
            gateway=wire.check_id(gateway),
            writes=writes,
            issued_at=now,
            expires_at=now + int(expires * 1e9),
            issued_by=issued_by,
        )
        if self.log is not None:
            await asyncio.to_thread(self.log.sent, command)
        future: asyncio.Future[CommandAck] = asyncio.get_running_loop().create_future()
        self._pending[command.id] = future
        ack: CommandAck | None = None
        detail = ""
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
                assert self._client is not None  # connected implies run() made it
                self._client.publish(wire.command_topic(gateway), wire.encode(command), qos=1)
                ack = await future
        except TimeoutError:
            detail = f"no ack from {gateway} within {timeout:g} s"
            if not self.connected:
                detail += " (edge not connected to the broker)"
        finally:
            self._pending.pop(command.id, None)
        return await self._finish(command, ack, detail)

    async def _finish(
        self, command: Command, ack: CommandAck | None, detail: str
    ) -> CommandOutcome:
        outcome = CommandOutcome(
            id=command.id,
            gateway=command.gateway,
            status=ack.status.value if ack else "timeout",
            writes=[msgspec.to_builtins(w) for w in command.writes],
            issued_by=command.issued_by,
            issued_at=command.issued_at,
            finished_at=wire.now_ns(),
            ack=msgspec.to_builtins(ack) if ack else None,
            detail=ack.detail if ack else detail,
        )
        if self.log is not None:
            await asyncio.to_thread(self.log.finished, outcome)
        self._log.info(
            "command_finished", id=command.id, gateway=command.gateway, status=outcome.status,
            issued_by=command.issued_by, detail=outcome.detail,
        )  # fmt: skip
        return outcome

"""Commands from the edge: validated, written under the connector's lock, read back, acked once.

- Validation against the tag config (known tag, writable, value type, min/max, and for
  Modbus a dry-run encode, so e.g. 70000 for an int16 is refused) happens for every write of a
  command before any of them is executed: a recipe with one bad value is rejected whole.
- Writes run one after the other under the owning runner's `io_lock`, so they never interleave
  with that connector's polling (or with a bus transaction on a shared RS-485 line). After the
  first failed write the rest are not attempted: a half-applied recipe is reported as such.
- At most once: the id is recorded in a small SQLite file *before* the first write, so a
  command redelivered after a crash in mid-execution is not executed a second time.
- Every write is logged (`command_write`) with the command id, issuer, value and read-back.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from factory_common import wire
from factory_common.logs import get_logger
from factory_common.sqlite import open_db
from factory_common.wire import AckStatus, Command, CommandAck, Value, Write, WriteResult
from gateway_image.firmware.connectors.base import ConnectorError, WritableConnector
from gateway_image.firmware.connectors.modbus.codec import CodecError, encode_tag
from gateway_image.firmware.connectors.modbus.config import ModbusTag
from gateway_image.firmware.runner import ConnectorRunner
from gateway_image.firmware.tag_index import TagInfo, index

KEEP_DAYS = 7.0  # executed ids are remembered this long (a redelivery is far quicker)
WRITE_TIMEOUT = 10.0  # seconds for one write, including waiting for a poll in progress
REL_TOLERANCE = 1e-6  # float32 keeps ~7 digits: 12.3 reads back as 12.300000190734863


def store_path_for(buffer_path: Path) -> Path:
    """Executed ids live next to the buffer: `buffer.sqlite` -> `buffer.commands.sqlite`."""
    return buffer_path.with_name(f"{buffer_path.stem}.commands{buffer_path.suffix or '.sqlite'}")


class ExecutedStore:
    """Ids of handled commands with their ack, in SQLite; opened on first use (no I/O before)."""

    def __init__(self, path: Path, keep_days: float = KEEP_DAYS) -> None:
        self.path = path
        self.keep_ns = int(keep_days * 86400 * 1e9)
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # calls arrive from asyncio.to_thread worker threads

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            # synchronous=FULL (open_db): an executed id must survive power loss.
            self._db = open_db(
                self.path,
                "CREATE TABLE IF NOT EXISTS executed ("
                " id TEXT PRIMARY KEY, received_at INTEGER NOT NULL, ack BLOB)",
            )
        return self._db

    def get(self, command_id: str) -> tuple[int, bytes | None] | None:
        """(received_at, encoded ack or None if execution never finished) for a known id."""
        with self._lock:
            row = (
                self._conn()
                .execute("SELECT received_at, ack FROM executed WHERE id = ?", (command_id,))
                .fetchone()
            )
        return None if row is None else (row[0], row[1])

    def begin(self, command_id: str, received_at: int) -> None:
        with self._lock:
            db = self._conn()
            db.execute("DELETE FROM executed WHERE received_at < ?", (received_at - self.keep_ns,))
            db.execute(
                "INSERT OR REPLACE INTO executed (id, received_at, ack) VALUES (?, ?, NULL)",
                (command_id, received_at),
            )

    def finish(self, command_id: str, ack: CommandAck) -> None:
        with self._lock:
            self._conn().execute(
                "UPDATE executed SET ack = ? WHERE id = ?", (wire.encode(ack), command_id)
            )

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


Runners = Callable[[], Iterable[ConnectorRunner]]


class CommandExecutor:
    """The uplink's command handler: `await executor(command)` returns the CommandAck."""

    def __init__(
        self,
        gateway_id: str,
        connector_configs: Iterable[Any],
        runners: Runners,
        store: ExecutedStore,
        *,
        write_timeout: float = WRITE_TIMEOUT,
        clock: Callable[[], int] = wire.now_ns,
    ) -> None:
        self.gateway_id = gateway_id
        self.tags = index(connector_configs)
        self.runners = runners  # looked up per command: runners are built when the gateway runs
        self.store = store
        self.write_timeout = write_timeout
        self.clock = clock
        self._running: dict[str, list[Any]] = {}  # id -> [lock, users]
        self.log = get_logger(component="commands", gateway=gateway_id)

    async def __call__(self, command: Command) -> CommandAck:
        if command.gateway != self.gateway_id:
            detail = f"command addressed to {command.gateway}, this is {self.gateway_id}"
            return self._ack(command, AckStatus.REJECTED, [], detail)
        # The same id delivered twice in quick succession: the second waits for the first.
        entry = self._running.setdefault(command.id, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                return await self._once(command)
        except sqlite3.Error as exc:
            self.log.error("command_store_failed", command=command.id, error=str(exc))
            detail = f"not executed: cannot record command ids in {self.store.path}: {exc}"
            return self._ack(command, AckStatus.FAILED, [], detail)
        finally:
            entry[1] -= 1
            if not entry[1]:
                del self._running[command.id]

    async def _once(self, command: Command) -> CommandAck:
        prior = await asyncio.to_thread(self.store.get, command.id)
        if prior is not None:
            return self._duplicate(command, *prior)
        return await self._handle_new(command)

    async def _handle_new(self, command: Command) -> CommandAck:
        received = self.clock()
        await asyncio.to_thread(self.store.begin, command.id, received)
        if received > command.expires_at:
            late = (received - command.expires_at) / 1e9
            ack = self._ack(
                command,
                AckStatus.EXPIRED,
                [],
                f"arrived {late:.3f} s after expires_at: not executed",
            )
        else:
            ack = await self._validated(command)
        try:
            await asyncio.to_thread(self.store.finish, command.id, ack)
        except sqlite3.Error as exc:  # executed: the ack must still go out
            self.log.error("command_store_failed", command=command.id, error=str(exc))
        if ack.status in (AckStatus.EXPIRED, AckStatus.REJECTED):
            self.log.warning(
                "command_refused",
                command=command.id,
                issued_by=command.issued_by,
                status=str(ack.status),
                detail=ack.detail,
            )
        return ack

    async def _validated(self, command: Command) -> CommandAck:
        if not command.writes:
            return self._ack(command, AckStatus.REJECTED, [], "command has no writes")
        problems = [self._problem(w) for w in command.writes]
        if any(problems):
            results = [
                WriteResult(
                    w.device,
                    w.tag,
                    False,
                    error=p or "not executed: another write of this command was rejected",
                )
                for w, p in zip(command.writes, problems, strict=True)
            ]
            detail = "; ".join(p for p in problems if p)
            return self._ack(command, AckStatus.REJECTED, results, detail)
        return await self._execute(command)

    async def _execute(self, command: Command) -> CommandAck:
        results: list[WriteResult] = []
        written = False  # did anything reach a device (for REJECTED vs FAILED)
        for w in command.writes:
            if results and not results[-1].ok:
                results.append(
                    WriteResult(
                        w.device, w.tag, False, error="not executed: an earlier write failed"
                    )
                )
                continue
            result, reached = await self._write(command, w)
            results.append(result)
            written = written or reached
        failures = [r for r in results if not r.ok]
        if not failures:
            return self._ack(command, AckStatus.DONE, results)
        status = AckStatus.FAILED if written else AckStatus.REJECTED
        first = failures[0]
        return self._ack(command, status, results, f"{first.device}/{first.tag}: {first.error}")

    def _problem(self, w: Write) -> str:
        """Why the config forbids this write ('' when it is allowed)."""
        info = self.tags.get((w.device, w.tag))
        where = f"{w.device}/{w.tag}"
        if info is None:
            return f"unknown tag {where}: gateway {self.gateway_id} has no such device/tag"
        if not info.writable:
            return f"{where} is not writable (its config needs `writable: true`)"
        if self._connector(info.connector) is None:
            return f"{where}: connector {info.connector} cannot write or does not run here"
        return check_value(info, w.value)

    def _connector(self, name: str) -> ConnectorRunner | None:
        for runner in self.runners():
            if runner.name == name and isinstance(runner.connector, WritableConnector):
                return runner
        return None

    async def _write(self, command: Command, w: Write) -> tuple[WriteResult, bool]:
        """One write, read back and compared; (result, whether the device may have changed)."""
        info = self.tags[(w.device, w.tag)]
        runner = self._connector(info.connector)
        assert runner is not None  # checked by _problem
        connector: WritableConnector = runner.connector  # type: ignore[assignment]
        readback: Value = None
        reached, error = True, ""
        try:
            async with asyncio.timeout(self.write_timeout):
                async with runner.io_lock:
                    readback = await connector.write(w.device, w.tag, w.value)
        except ValueError as exc:  # refused before anything went on the wire
            reached, error = False, f"refused by connector: {exc}"
        except (ConnectorError, TimeoutError, OSError) as exc:
            error = f"write failed: {exc or type(exc).__name__}"
        if not error and not same_value(info, w.value, readback):
            error = f"read back {readback!r}, expected {w.value!r}"
        result = WriteResult(w.device, w.tag, not error, readback, error)
        self.log.info(
            "command_write",
            command=command.id,
            issued_by=command.issued_by,
            device=w.device,
            tag=w.tag,
            value=w.value,
            readback=readback,
            result="ok" if result.ok else error,
        )
        return result, reached

    def _duplicate(self, command: Command, received_at: int, ack: bytes | None) -> CommandAck:
        when = datetime.fromtimestamp(received_at / 1e9, UTC).isoformat(timespec="seconds")
        if ack is None:
            detail = (
                f"already received at {when}; the gateway stopped while executing it, so its "
                "result is unknown: read the tags back before sending a new command"
            )
            return self._ack(command, AckStatus.DUPLICATE, [], detail)
        original = wire.decode(ack, CommandAck)
        detail = f"already handled at {when} with status {original.status}: not executed again"
        return self._ack(command, AckStatus.DUPLICATE, list(original.results), detail)

    def _ack(
        self, command: Command, status: AckStatus, results: list[WriteResult], detail: str = ""
    ) -> CommandAck:
        return CommandAck(
            v=wire.WIRE_VERSION,
            id=command.id,
            gateway=self.gateway_id,
            status=status,
            ts=self.clock(),
            results=results,
            detail=detail,
        )

    def close(self) -> None:
        self.store.close()


def _number(value: Value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_value(info: TagInfo, value: Value) -> str:
    """Type and range of one value against its tag ('' when fine)."""
    where = f"{info.device}/{info.tag}"
    if info.kind == "bool" and not (isinstance(value, bool) or value in (0, 1)):
        return f"{where} is a bool tag: send true or false, not {value!r}"
    if info.kind == "number" and not (_number(value) and math.isfinite(value)):  # type: ignore[arg-type]
        return f"{where} is numeric: send a finite number, not {value!r}"
    if info.kind == "str" and not isinstance(value, str):
        return f"{where} is a string tag: send text, not {value!r}"
    if value is None:
        return f"{where}: a write needs a value, not null"
    if _number(value):
        unit = f" {info.spec.unit}" if getattr(info.spec, "unit", "") else ""
        if info.min is not None and value < info.min:  # type: ignore[operator]
            return f"{where}: {value} is below its minimum {info.min:g}{unit}"
        if info.max is not None and value > info.max:  # type: ignore[operator]
            return f"{where}: {value} is above its maximum {info.max:g}{unit}"
    if isinstance(info.spec, ModbusTag):
        try:  # a dry run of the encoder: raw range of the type, string length, ...
            encode_tag(info.spec, value, 0)
        except CodecError as exc:
            return f"{where}: {exc}"
    return ""


def same_value(info: TagInfo, sent: Value, readback: Value) -> bool:
    """Whether the device holds what was sent, allowing float rounding and scaling steps."""
    if readback is None:
        return False
    if info.kind == "bool" or isinstance(sent, bool):
        return bool(sent) == bool(readback)
    if _number(sent) and _number(readback):
        a, b = float(sent), float(readback)  # type: ignore[arg-type]
        step = 0.0
        data_type = str(getattr(info.spec, "type", ""))
        if "int" in data_type:  # a scaled integer register holds whole multiples of `scale`
            step = abs(float(getattr(info.spec, "scale", 1.0))) / 2
        return abs(a - b) <= max(step, REL_TOLERANCE * max(abs(a), abs(b)), 1e-9)
    if isinstance(sent, str) and isinstance(readback, str):
        return sent.rstrip("\x00 ") == readback.rstrip("\x00 ")
    return sent == readback

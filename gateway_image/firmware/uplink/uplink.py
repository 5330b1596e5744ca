"""MQTT uplink: buffered readings out as QoS-1 batches, deleted on PUBACK; status and commands.

- Batches are contiguous seq runs read from the durable buffer, at most `inflight_batches`
  unacknowledged at once, in the order plan.SendPlan decides (by default live data
  ahead of a backlog, which is replayed in seq order, rate-limited). A failed PUBACK keeps the
  rows (MQTT 5 reason codes: a broker refusing a publish, e.g. by ACL, or answering "No
  matching subscribers", i.e. dropping it because the edge never subscribed). A successful
  one deletes them with `confirm: broker`; with `confirm: edge` (the default) rows are deleted
  only when the edge's receipt lists them, and a batch a later receipt shows lost is sent
  again (confirmations.py). With `protocol: "3.1.1"`
  a PUBACK has no reason code, so a refused publish looks delivered: use it only with brokers
  that speak nothing newer (the embedded amqtt of the simulated line).
- Reconnect: paho keeps unacknowledged QoS-1 messages and re-sends them, in order, when the
  connection is back; after a process restart the buffer itself is the source (everything still
  in it is sent again). Duplicates on the wire are fine: the edge deduplicates on (gateway, seq).
- Backoff: paho's doubling delay, with its start re-drawn at random after every connection
  loss, so a fleet of gateways does not reconnect in lockstep after a broker restart.
- Status: retained `GatewayStatus(online=True)` on connect and every `status_interval`; the
  MQTT last will is the same message with online=False.
- Threads: paho runs its network thread; every callback crosses into asyncio in one place,
  `_bridge`, with loop.call_soon_threadsafe.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from factory_common import wire
from factory_common.logs import get_logger
from gateway_image.firmware.buffer.store import BufferClosed, DurableBuffer
from gateway_image.firmware.clock import clock_synced
from gateway_image.firmware.config import MqttConfig
from gateway_image.firmware.uplink.client import (
    BACKOFF_MAX,
    BACKOFF_MIN,
    build_client,
    firmware_version,
)
from gateway_image.firmware.uplink.commands import CommandHandler, answer
from gateway_image.firmware.uplink.confirmations import Confirmations, Sent
from gateway_image.firmware.uplink.plan import SAMPLE_EVERY, SendPlan, Slice

HealthSource = Callable[[], list[wire.ConnectorHealth]]
REJECTED_RETRY = 5.0  # seconds before re-sending a batch the broker refused
GOODBYE_TIMEOUT = 3.0  # seconds a clean shutdown waits for PUBACKs before disconnecting
NO_MATCHING_SUBSCRIBERS = 0x10  # MQTT 5 PUBACK reason code (a success code, but dropped)
SWEEP_EVERY = 1.0  # seconds between deletes of everything a receipt lists


class Uplink:
    """Owns the MQTT connection of one gateway process; `run()` until cancelled."""

    def __init__(
        self,
        gateway_id: str,
        config: MqttConfig,
        buffer: DurableBuffer,
        *,
        boot: str,
        health: HealthSource = list,
        command_handler: CommandHandler | None = None,
        version: str | None = None,
        plan: SendPlan | None = None,
    ) -> None:
        self.gateway_id = wire.check_id(gateway_id)
        self.config = config
        self.buffer = buffer
        self.boot = boot
        self.health = health
        self.command_handler = command_handler
        self.version = version or firmware_version()
        self.started_at = wire.now_ns()
        self._started_mono = time.monotonic()
        self.connected = False
        self._stopping = False
        self._unreachable_logged = False
        self.batches_acked = 0
        self.batches_refused = 0
        self.batches_unrouted = 0
        self._unrouted_logged = False
        self.readings_acked = 0
        self.batches_resent = 0
        self.batches_unconfirmed = 0  # lost MAX_RESENDS times: kept in the buffer, reported
        self._inflight: dict[int, Sent] = {}  # paho mid -> the batch it carries
        self.confirmations = Confirmations()
        self._resend: list[Sent] = []  # batches a receipt showed lost, to publish again
        self._swept_at = -SWEEP_EVERY
        self.plan = plan or SendPlan.from_config(config)
        self._retry_from: int | None = None  # a refused batch: re-send from here
        self._room = asyncio.Event()  # connected and the window has room
        self._online = asyncio.Event()
        self._drained = asyncio.Event()  # no batch in flight
        self._waiters: dict[int, asyncio.Future[None]] = {}  # mids someone awaits the PUBACK of
        self._ack_tasks: set[asyncio.Task[None]] = set()
        self._acks: list[tuple[int, int]] = []  # PUBACKed seq ranges not deleted yet
        self._acking = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: mqtt.Client | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self.log = get_logger(component="uplink", gateway=gateway_id)

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Connect and keep sending until cancelled; then say goodbye (offline status)."""
        self._loop = asyncio.get_running_loop()
        self._client = client = self._make_client()
        client.connect_async(self.config.host, self.config.port, self.config.keepalive)
        client.loop_start()
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                tasks.create_task(self._send_loop(), name="uplink-send")
                tasks.create_task(self._status_loop(), name="uplink-status")
                tasks.create_task(self._measure_production(), name="uplink-rate")
        finally:
            self._tasks = None
            await self._goodbye(client)

    async def _goodbye(self, client: mqtt.Client) -> None:
        """Let in-flight batches get their PUBACK, publish offline status, disconnect."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(GOODBYE_TIMEOUT):
                if self.connected:
                    await self._drained.wait()
                    info = client.publish(
                        wire.status_topic(self.gateway_id),
                        wire.encode(self.status(online=False)),
                        qos=1,
                        retain=True,
                    )
                    published = self._waiters[info.mid] = asyncio.get_running_loop().create_future()
                    await published
        self._stopping = True
        client.disconnect()
        await asyncio.to_thread(client.loop_stop)
        self.connected = False
        # Deletions for PUBACKs already received; the caller closes the buffer after this.
        await asyncio.gather(*self._ack_tasks, return_exceptions=True)

    def _make_client(self) -> mqtt.Client:
        will = wire.encode(self.status(online=False))
        client = build_client(
            self.gateway_id, self.config, wire.status_topic(self.gateway_id), will
        )
        client.on_connect = lambda _c, _u, _f, rc, _p: self._bridge(self._on_connect, rc)
        client.on_disconnect = self._on_disconnect_thread
        client.on_connect_fail = lambda _c, _u: self._bridge(self._on_connect_fail)
        client.on_publish = lambda _c, _u, mid, rc, _p: self._bridge(self._on_publish, mid, rc)
        client.on_message = lambda _c, _u, msg: self._bridge(self._on_message, msg)
        return client

    def _bridge(self, handler: Callable[..., None], *args: Any) -> None:
        """The one crossing from paho's network thread into the event loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed between check and call
            loop.call_soon_threadsafe(handler, *args)

    def _on_disconnect_thread(
        self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any
    ) -> None:
        # Runs in paho's thread on purpose: the jittered backoff must be set before paho waits.
        jitter = random.uniform(0.5, 1.5)
        client.reconnect_delay_set(BACKOFF_MIN * jitter, BACKOFF_MAX * min(jitter, 1.0))
        self._bridge(self._on_disconnect, rc)

    # ------------------------------------------------------------------ callbacks (loop thread)

    def _on_connect(self, reason: Any) -> None:
        if reason.is_failure:
            self.log.warning("mqtt_refused", reason=str(reason))
            return
        self.connected = True
        self._unreachable_logged = False
        self.log.info("mqtt_connected", host=self.config.host, port=self.config.port)
        assert self._client is not None
        self._client.subscribe(wire.command_topic(self.gateway_id), qos=1)
        if self.config.confirm == "edge":
            self._client.subscribe(wire.stored_topic(self.gateway_id), qos=1)
        self._publish_status()
        self._online.set()
        self._update_room()

    def _on_connect_fail(self, reason: str = "cannot connect") -> None:
        # Once per outage, not per retry. A broker refusing our certificate closes the
        # connection before CONNACK: paho reports that as a disconnect, which lands here too.
        if not self._unreachable_logged:
            self._unreachable_logged = True
            cfg = self.config
            self.log.warning(
                "mqtt_unreachable", host=cfg.host, port=cfg.port, tls=bool(cfg.tls), reason=reason
            )

    def _on_disconnect(self, reason: Any) -> None:
        if self._stopping:
            self.log.info("mqtt_closed")
        elif self.connected:
            self.log.warning("mqtt_disconnected", reason=str(reason), inflight=len(self._inflight))
        else:
            self._on_connect_fail(str(reason))
        self.connected = False
        self._online.clear()
        self._update_room()

    def _on_publish(self, mid: int, reason: Any) -> None:
        waiter = self._waiters.pop(mid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        sent = self._inflight.pop(mid, None)
        if sent is None:  # a status or command ack
            return
        if reason.is_failure:
            # Not stored by the broker: keep the rows and send them again later.
            self.batches_refused += 1
            self.log.error("batch_refused", reason=str(reason), first=sent.first, last=sent.last)
            self._retry_from = min(sent.first, self._retry_from or sent.first)
        elif reason.value == NO_MATCHING_SUBSCRIBERS:
            # Accepted, but nobody (not even an offline persistent session) will ever get it:
            # the edge has never subscribed. Keep the rows until it has.
            self.batches_unrouted += 1
            if not self._unrouted_logged:
                self._unrouted_logged = True
                self.log.warning("batch_unrouted", reason=str(reason), first=sent.first)
            self._retry_from = min(sent.first, self._retry_from or sent.first)
        else:
            self._unrouted_logged = False
            if self.config.confirm == "broker" or self.confirmations.broker_acked(sent):
                self._start_ack(sent.first, sent.last)
        self._update_room()

    def _on_receipt(self, payload: bytes) -> None:
        """The edge's receipt: delete what it stored, queue again what it shows was lost."""
        try:
            receipt = wire.decode(payload, wire.Stored)
        except wire.WireError as exc:
            self.log.warning("receipt_malformed", error=str(exc))
            return
        if receipt.gateway != self.gateway_id:
            return
        outcome = self.confirmations.receipt(receipt.ranges, receipt.status_ts)
        for sent in outcome.confirmed:
            self._start_ack(sent.first, sent.last)
        now = time.monotonic()
        if now - self._swept_at >= SWEEP_EVERY and self.buffer.depth:
            # Also rows no batch of this process carried (sent before a restart) or no longer
            # watched: whatever the edge holds may go. Seq-range deletes on the primary key.
            self._swept_at = now
            for lo, hi in receipt.ranges:
                self._start_ack(lo, hi)
        for sent in outcome.lost:
            self.batches_resent += 1
            self.log.warning(
                "batch_resent", first=sent.first, last=sent.last, attempt=sent.attempts + 1
            )
            self._resend.append(sent)
        for sent in outcome.given_up:
            # Kept in the buffer (sent again after a restart); the edge may be refusing it.
            self.batches_unconfirmed += 1
            self.log.error("batch_unconfirmed", first=sent.first, last=sent.last)

    def _start_ack(self, first: int, last: int) -> None:
        self._acks.append((first, last))
        if self._acking:
            return  # the running deleter takes it with the next transaction
        self._acking = True
        # Not in the TaskGroup: a PUBACK that arrives while shutting down must still delete.
        task = asyncio.get_running_loop().create_task(self._ack_loop())
        self._ack_tasks.add(task)
        task.add_done_callback(self._ack_tasks.discard)

    async def _ack_loop(self) -> None:
        """Delete acknowledged batches, every PUBACK that arrived meanwhile in one transaction
        (a drain after an outage brings hundreds a second)."""
        try:
            while self._acks:
                ranges, self._acks = self._acks, []
                try:
                    removed = await asyncio.to_thread(self.buffer.ack_ranges, ranges)
                except (sqlite3.Error, BufferClosed) as exc:
                    # The rows stay and are sent again after a restart: a duplicate, not a loss.
                    self.log.error("ack_not_applied", ranges=ranges[:3], error=str(exc))
                    continue
                self.batches_acked += len(ranges)
                self.readings_acked += removed
        finally:
            self._acking = False  # no await since the loop's check: no PUBACK slips between

    def _on_message(self, message: mqtt.MQTTMessage) -> None:
        if message.topic == wire.stored_topic(self.gateway_id):
            self._on_receipt(message.payload)
            return
        try:
            command = wire.decode(message.payload, wire.Command)
        except wire.WireError as exc:
            self.log.warning("command_malformed", topic=message.topic, error=str(exc))
            return
        if self._tasks is not None:
            self._tasks.create_task(self._execute(command))

    async def _execute(self, command: wire.Command) -> None:
        ack = await answer(self.command_handler, command, self.gateway_id)
        if self._client is not None:
            self._client.publish(wire.ack_topic(self.gateway_id), wire.encode(ack), qos=1)

    def _update_room(self) -> None:
        if self._inflight:
            self._drained.clear()
        else:
            self._drained.set()
        if self.connected and len(self._inflight) < self.config.inflight_batches:
            self._room.set()
        else:
            self._room.clear()

    # ------------------------------------------------------------------ sending

    async def _send_loop(self) -> None:
        while True:
            await self._room.wait()
            if self._retry_from is not None:
                await asyncio.sleep(REJECTED_RETRY)
                self.plan.rewind(self._retry_from)
                self._retry_from = None
            if self._resend:
                await self._send_again(self._resend.pop(0))
                continue
            part = self.plan.next(self.buffer.last_seq, self.buffer.depth, time.monotonic())
            if not isinstance(part, Slice):  # replay tokens exhausted: wait for the bucket
                await asyncio.sleep(part)
                continue
            entries = await self._next_entries(part)
            if entries and self.connected and self._room.is_set():
                self._publish_batch(entries, part.replay)

    async def _next_entries(self, part: Slice) -> list[tuple[int, wire.Reading]]:
        """The next readings to send; waits (bounded) for data, and for a batch to fill."""
        self.buffer.committed.clear()
        entries = await self._read(part)
        if not entries and part.replay:
            self.plan.finish_replay()  # the rest of the backlog was acked or dropped meanwhile
        elif not entries:
            # Appends through put() set `committed`; the timeout covers direct append() calls.
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self.buffer.committed.wait()
        elif self._worth_waiting(entries, part):
            await asyncio.sleep(self.config.batch_max_delay)
            entries = await self._read(part)
        return _contiguous(entries)

    def _worth_waiting(self, entries: list, part: Slice) -> bool:
        """A live batch that is not full yet may wait batch_max_delay for more readings."""
        full = len(entries) >= self.config.batch_max_readings
        return not full and not part.replay and self.config.batch_max_delay > 0

    async def _read(self, part: Slice) -> list[tuple[int, wire.Reading]]:
        limit = self.config.batch_max_readings
        entries = await asyncio.to_thread(self.buffer.pending, limit, part.after)
        if part.upto is not None:
            entries = [e for e in entries if e[0] <= part.upto]
        return entries

    async def _send_again(self, lost: Sent) -> None:
        """Publish a lost batch's rows again (those still buffered), outside the send plan."""
        size = lost.last - lost.first + 1
        entries = await asyncio.to_thread(self.buffer.pending, size, lost.first - 1)
        entries = _contiguous([e for e in entries if e[0] <= lost.last])
        if entries and self.connected and self._room.is_set():
            self._publish_batch(entries, replay=True, attempts=lost.attempts + 1)
        elif entries:
            self._resend.insert(0, lost)  # disconnected meanwhile: keep it for later

    def _publish_batch(
        self, entries: list[tuple[int, wire.Reading]], replay: bool, attempts: int = 0
    ) -> None:
        """Publish one batch; `attempts` > 0 re-sends a lost one (the plan's cursors stay)."""
        assert self._client is not None
        while True:
            batch = wire.Batch(
                v=wire.WIRE_VERSION,
                gateway=self.gateway_id,
                boot=self.boot,
                first_seq=entries[0][0],
                last_seq=entries[-1][0],
                readings=[r for _, r in entries],
                sent_at=wire.now_ns(),
                replay=replay,
                clock_synced=clock_synced(),
            )
            payload = wire.encode(batch)
            if len(payload) <= wire.MAX_PAYLOAD_BYTES or len(entries) == 1:
                break
            entries = entries[: len(entries) // 2]  # the edge refuses oversized batches
        info = self._client.publish(wire.data_topic(self.gateway_id), payload, qos=1)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            # Not queued by paho: leave the cursor so the same rows are tried again.
            self.log.warning("publish_failed", rc=mqtt.error_string(info.rc))
            return
        # NO_CONN: paho queued it and sends it after the reconnect; count it as in flight.
        order = self.confirmations.next_order()
        self._inflight[info.mid] = Sent(batch.first_seq, batch.last_seq, order, attempts)
        if not attempts:
            self.plan.sent(batch.first_seq, batch.last_seq, replay)
        self._update_room()

    # ------------------------------------------------------------------ status

    def status(self, online: bool = True) -> wire.GatewayStatus:
        stats = self.buffer.stats()
        return wire.GatewayStatus(
            v=wire.WIRE_VERSION,
            gateway=self.gateway_id,
            online=online,
            ts=wire.now_ns(),
            version=self.version,
            boot=self.boot,
            started_at=self.started_at,
            uptime_s=round(time.monotonic() - self._started_mono, 3),
            buffer_depth=stats.depth,
            buffer_bytes=stats.bytes,
            last_seq=stats.last_seq,
            dropped=stats.dropped,
            connectors=self.health(),
            clock_synced=clock_synced(),
            resent=self.batches_resent,
            unconfirmed=self.batches_unconfirmed,
        )

    def _publish_status(self) -> None:
        if self._client is not None and self.connected:
            status = self.status()
            self._client.publish(
                wire.status_topic(self.gateway_id), wire.encode(status), qos=1, retain=True
            )
            # A receipt naming this status shows every batch published before it arrived.
            self.confirmations.status_sent(status.ts)

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.status_interval)
            if self.buffer.ttl is not None:
                await asyncio.to_thread(self.buffer.expire)
            self._publish_status()

    async def _measure_production(self) -> None:
        """Sample the buffer's last seq also while offline: the replay rate after an outage
        is set from the production rate during it."""
        while True:
            self.plan.production.observe(time.monotonic(), self.buffer.last_seq)
            await asyncio.sleep(SAMPLE_EVERY)

    async def wait_online(self) -> None:
        """Until connected to the broker (wrap it in asyncio.timeout)."""
        await self._online.wait()


def _contiguous(entries: list[tuple[int, wire.Reading]]) -> list[tuple[int, wire.Reading]]:
    """The leading run of consecutive seqs (drops by budget or ttl leave gaps; a Batch can't)."""
    for i in range(1, len(entries)):
        if entries[i][0] != entries[0][0] + i:
            return entries[:i]
    return entries

"""MQTT uplink: buffered readings out as QoS-1 batches, deleted on receipt; status and commands.

docs/reliability.md states what this promises. The decisions are pure objects beside it:
`SendPlan` (what to send next: live data ahead of a replayed backlog), `Window` (at most
`inflight_batches` without PUBACK; what a PUBACK's reason code means), `ReceiptPolicy` and
`Confirmations` (what an edge receipt confirms or shows lost), `batches` (contiguous runs,
size limit, status). This class only moves bytes: batches come from memory when the uplink is
caught up (buffer/recent.py), else from SQLite. paho runs its network thread; every callback
crosses into asyncio in one place, `_bridge`, with loop.call_soon_threadsafe. paho re-sends
unacknowledged QoS-1 messages after a reconnect, with its doubling back-off re-drawn at random
after every connection loss, so a fleet does not reconnect in lockstep; after a restart the
buffer is the source. With `protocol: "3.1.1"` a PUBACK has no reason code, so a refused
publish looks delivered: use it only with brokers that speak nothing newer.
On every connect it publishes, retained, the tag catalogue and the status; the MQTT last will
says only offline and who (`batches.last_will`): registered at connect, it is sent much later.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from factory_common import wire
from factory_common.logs import get_logger
from gateway_image.firmware.buffer.store import DurableBuffer
from gateway_image.firmware.clock import clock_synced
from gateway_image.firmware.config import MqttConfig
from gateway_image.firmware.uplink import batches
from gateway_image.firmware.uplink.batches import Entries, Identity, Origin
from gateway_image.firmware.uplink.client import (
    BACKOFF_MAX,
    BACKOFF_MIN,
    build_client,
    firmware_version,
)
from gateway_image.firmware.uplink.commands import CommandHandler, answer
from gateway_image.firmware.uplink.confirmations import Confirmations, Sent
from gateway_image.firmware.uplink.deletes import Deleter
from gateway_image.firmware.uplink.plan import SAMPLE_EVERY, SendPlan, Slice
from gateway_image.firmware.uplink.receipts import ReceiptPolicy
from gateway_image.firmware.uplink.window import Counters, Verdict, Window, verdict

HealthSource = Callable[[], list[wire.ConnectorHealth]]
REJECTED_RETRY = 5.0  # seconds before re-sending a batch the broker refused
GOODBYE_TIMEOUT = 3.0  # seconds a clean shutdown waits for PUBACKs before disconnecting


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
        catalogue: wire.TagCatalogue | None = None,
    ) -> None:
        self.gateway_id = wire.check_id(gateway_id)
        self.config = config
        self.buffer = buffer
        self.boot = boot
        self.health = health
        self.command_handler = command_handler
        self.catalogue = catalogue
        self.origin = Origin(self.gateway_id, boot)
        self.identity = Identity(self.origin, version or firmware_version(), wire.now_ns())
        self._started_mono = time.monotonic()
        self.connected = False
        self._stopping = False
        self._unreachable_logged = False
        self.window = Window(config.inflight_batches)
        self.receipts = ReceiptPolicy(self.window.counters)
        self.plan = plan or SendPlan.from_config(config)
        self._room = asyncio.Event()  # connected and the window has room
        self._online = asyncio.Event()
        self._drained = asyncio.Event()  # no batch in flight
        self._waiters: dict[int, asyncio.Future[None]] = {}  # mids someone awaits the PUBACK of
        self.deleter = Deleter(buffer, self.window.counters, self.gateway_id)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: mqtt.Client | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self.log = get_logger(component="uplink", gateway=gateway_id)

    # Counters, as attributes (tests and benches read them).
    @property
    def confirmations(self) -> Confirmations:
        return self.receipts.confirmations

    @property
    def counters(self) -> Counters:
        """readings_acked, batches_refused, batches_unrouted, batches_resent."""
        return self.window.counters

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
        await self.deleter.finish()  # confirmations already received; the buffer closes next

    def _make_client(self) -> mqtt.Client:
        will = wire.encode(batches.last_will(self.identity))
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
        delays = BACKOFF_MIN * jitter, BACKOFF_MAX * min(jitter, 1.0)
        client.reconnect_delay_set(*delays)  # type: ignore[arg-type]  # paho sleeps floats
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
        if self.catalogue is not None:
            catalogue = wire.encode(self.catalogue)
            self._client.publish(wire.tags_topic(self.gateway_id), catalogue, qos=1, retain=True)
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
            self.log.warning("mqtt_disconnected", reason=str(reason), inflight=len(self.window))
        else:
            self._on_connect_fail(str(reason))
        self.connected = False
        self._online.clear()
        self._update_room()

    def _on_publish(self, mid: int, reason: Any) -> None:
        waiter = self._waiters.pop(mid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        said = verdict(reason.is_failure, reason.value)
        sent, log_it = self.window.answered(mid, said)
        if sent is None:  # a status or command ack
            return
        if said is Verdict.REFUSED:  # not stored by the broker: keep the rows, send again
            self.log.error("batch_refused", reason=str(reason), first=sent.first, last=sent.last)
        elif said is Verdict.UNROUTED and log_it:
            self.log.warning("batch_unrouted", reason=str(reason), first=sent.first)
        elif said is Verdict.STORED and (
            self.config.confirm == "broker" or self.confirmations.broker_acked(sent)
        ):
            self.deleter.delete(sent.first, sent.last)
        self._update_room()

    def _on_receipt(self, payload: bytes | bytearray) -> None:
        """The edge's receipt: delete what it stored, queue again what it shows was lost."""
        try:
            receipt = wire.decode(payload, wire.Stored)
        except wire.WireError as exc:
            self.log.warning("receipt_malformed", error=str(exc))
            return
        if receipt.gateway != self.gateway_id:
            return
        actions = self.receipts.receipt(
            receipt.ranges, receipt.status_ts, time.monotonic(), self.buffer.depth
        )
        for first, last in actions.delete:
            self.deleter.delete(first, last)
        for sent in actions.resend:
            self.log.warning("batch_resent", first=sent.first, attempt=sent.attempts + 1)
        for sent in actions.given_up:
            # Kept in the buffer (sent again after a restart); the edge may be refusing it.
            self.log.error("batch_unconfirmed", first=sent.first, last=sent.last)

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
        _set(self._drained, not len(self.window))
        _set(self._room, self.window.has_room(self.connected))

    # ------------------------------------------------------------------ sending

    async def _send_loop(self) -> None:
        while True:
            await self._room.wait()
            if self.window.retry_from is not None:
                await asyncio.sleep(REJECTED_RETRY)
                retry = self.window.take_retry()
                if retry is not None:
                    self.plan.rewind(retry)
            if (lost := self.receipts.next_resend()) is not None:
                await self._send_again(lost)
                continue
            part = self.plan.next(self.buffer.last_seq, self.buffer.depth, time.monotonic())
            if not isinstance(part, Slice):  # replay tokens exhausted: wait for the bucket
                await asyncio.sleep(part)
                continue
            entries = await self._next_entries(part)
            if entries and self.connected and self._room.is_set():
                self._publish_batch(entries, part.replay)

    async def _next_entries(self, part: Slice) -> Entries:
        """The next readings to send; waits (bounded) for data, and for a batch to fill."""
        self.buffer.committed.clear()
        entries = await self._read(part)
        if not entries and part.replay:
            self.plan.finish_replay()  # the rest of the backlog was acked or dropped meanwhile
        elif not entries:
            # Group commits set `committed`; the timeout covers direct append() calls.
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self.buffer.committed.wait()
        elif batches.worth_waiting(
            len(entries), part.replay, self.config.batch_max_readings, self.config.batch_max_delay
        ):
            await asyncio.sleep(self.config.batch_max_delay)
            entries = await self._read(part)
        return batches.contiguous(entries)

    async def _read(self, part: Slice) -> Entries:
        limit = self.config.batch_max_readings
        # Caught up: what comes next was committed a moment ago and is still in memory.
        entries = self.buffer.recent(part.after, limit)
        if entries is None:
            entries = await asyncio.to_thread(self.buffer.pending, limit, part.after)
        if part.upto is not None:
            entries = [e for e in entries if e[0] <= part.upto]
        return entries

    async def _send_again(self, lost: Sent) -> None:
        """Publish a lost batch's rows again (those still buffered), outside the send plan."""
        size = lost.last - lost.first + 1
        entries = await asyncio.to_thread(self.buffer.pending, size, lost.first - 1)
        entries = batches.contiguous([e for e in entries if e[0] <= lost.last])
        if entries and self.connected and self._room.is_set():
            self._publish_batch(entries, replay=True, attempts=lost.attempts + 1)
        elif entries:
            self.receipts.resend_later(lost)

    def _publish_batch(self, entries: Entries, replay: bool, attempts: int = 0) -> None:
        """Publish one batch; `attempts` > 0 re-sends a lost one (the plan's cursors stay)."""
        assert self._client is not None
        batch, payload = batches.encode_batch(
            self.origin, entries, replay, clock_synced(), wire.now_ns()
        )
        info = self._client.publish(wire.data_topic(self.gateway_id), payload, qos=1)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            # Not queued by paho: leave the cursor so the same rows are tried again.
            self.log.warning("publish_failed", rc=mqtt.error_string(info.rc))
            return
        # NO_CONN: paho queued it and sends it after the reconnect; count it as in flight.
        order = self.confirmations.next_order()
        self.window.published(info.mid, Sent(batch.first_seq, batch.last_seq, order, attempts))
        if not attempts:
            self.plan.sent(batch.first_seq, batch.last_seq, replay)
        self._update_room()

    # ------------------------------------------------------------------ status

    def status(self, online: bool = True) -> wire.GatewayStatus:
        return batches.status(
            self.identity,
            online=online,
            now=wire.now_ns(),
            uptime_s=time.monotonic() - self._started_mono,
            stats=self.buffer.stats(),
            connectors=self.health(),
            counters=self.window.counters,
            synced=clock_synced(),
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


def _set(event: asyncio.Event, on: bool) -> None:
    (event.set if on else event.clear)()

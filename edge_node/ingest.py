"""MQTT ingest: gateway batches and status from the broker into the store, exactly once.

Delivery contract (why the edge loses nothing it acknowledged):
- The client runs with paho's `manual_ack=True`: a QoS 1 PUBACK is sent only after the
  transaction holding that message's readings has committed (synchronous=FULL). Without it,
  paho acknowledges as soon as on_message returns, and a crash before the commit would lose
  messages the gateway already deleted from its buffer.
- The session is persistent (MQTT 3.1.1, clean_session=False, a fixed client id): while the
  edge is down or reconnecting, the broker keeps queuing QoS 1 messages for it and redelivers
  unacknowledged ones. Limits: the broker's own queue limits (Mosquitto max_queued_messages)
  and its persistence setting decide what survives a broker restart; those are broker config.
- Redelivery means duplicates; the store drops them by (gateway, seq), so at-least-once on
  the wire becomes exactly-once in the store.
- A PUBACK belongs to one connection: message ids of an older connection are never acked on
  a newer one (the broker redelivers those messages and the store drops the copies).
- After each commit, every gateway heard from in it gets a `Stored` receipt (receipts.py): the
  end-to-end confirmation its buffer waits for before deleting anything.
- A batch claiming seqs its gateway cannot have issued yet is refused before the store sees
  it (seqcheck.py), so it cannot make the real readings with those seqs drop as duplicates.
  Not listed in a receipt, a genuine batch refused that way is sent again by its gateway.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_node.config import EdgeConfig
from edge_node.receipts import Receipts
from edge_node.seqcheck import Jump, Known, SeqCheck
from edge_node.store import Store, WriteResult
from factory_common.logs import get_logger
from factory_common.mqtt_settings import apply_login_and_tls
from factory_common.wire import (
    Batch,
    GatewayStatus,
    TagCatalogue,
    TopicKind,
    WireError,
    decode,
    encode,
    now_ns,
    parse_topic,
    stored_topic,
    subscription,
)

# What a flush's worker thread reports: per message written, and those the store refused.
_Written = tuple[list[WriteResult], list[tuple[Batch | GatewayStatus | TagCatalogue, Exception]]]


@dataclass(frozen=True, slots=True)
class Incoming:
    """One MQTT message handed from paho's thread to the asyncio loop."""

    generation: int  # which connection delivered it: acks are per connection
    topic: str
    payload: bytes | bytearray
    mid: int
    qos: int


@dataclass
class IngestStats:
    connected: bool = False
    connects: int = 0
    messages: int = 0
    batches: int = 0
    statuses: int = 0
    readings_stored: int = 0
    readings_duplicate: int = 0
    receipts: int = 0
    observer_errors: int = 0
    flushes: int = 0
    last_flush_ms: float = 0.0
    last_flush_at: int = 0
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)  # (gateway, reason)

    def as_dict(self) -> dict[str, Any]:
        rejected: dict[str, dict[str, int]] = {}
        for (gateway, reason), count in sorted(self.rejected.items()):
            rejected.setdefault(gateway, {})[reason] = count
        return {
            "mqtt_connected": self.connected,
            "connects": self.connects,
            "messages": self.messages,
            "batches": self.batches,
            "statuses": self.statuses,
            "readings_stored": self.readings_stored,
            "readings_duplicate": self.readings_duplicate,
            "receipts": self.receipts,
            "observer_errors": self.observer_errors,
            "flushes": self.flushes,
            "last_flush_ms": round(self.last_flush_ms, 3),
            "last_flush_at": self.last_flush_at,
            "rejected_total": sum(self.rejected.values()),
            "rejected": rejected,
        }


def rejection_reason(error: WireError) -> str:
    """Group wire errors into a few counters; wire.py words them, so match its wording here."""
    text = str(error)
    if "wire version" in text:
        return "wrong_version"
    if "exceeds" in text:
        return "too_large"
    return "malformed"


# (gateway, boot) pairs remembered for logging once: a forger can make up any number of boots.
MAX_LOGGED_BOOTS = 1024

_MODELS: dict[TopicKind, type[Batch] | type[GatewayStatus] | type[TagCatalogue]] = {
    TopicKind.DATA: Batch,
    TopicKind.STATUS: GatewayStatus,
    TopicKind.TAGS: TagCatalogue,
}


class Ingest:
    """Subscribes to every gateway's data and status topics and writes them to the store."""

    def __init__(self, config: EdgeConfig, store: Store, stats: IngestStats | None = None) -> None:
        self.config = config
        self.store = store
        self.stats = stats or IngestStats()
        self._queue: asyncio.Queue[Incoming] = asyncio.Queue()
        self._arrived = asyncio.Event()
        self._generation = 0
        self._unreachable_logged = False
        self._logged: set[tuple[str, str]] = set()
        self._logged_boots: set[tuple[str, str, str]] = set()
        self._client: mqtt.Client | None = None
        # Bound here, not at import: a logger bound before logs.configure() prints to stdout.
        self._log = get_logger(component="ingest")
        self._writing: asyncio.Future[_Written] | None = None
        # Called with the batches of each committed flush (monitoring, rules): each must only
        # hand them off (edge_node/alarms/feed.py: a bounded queue), never block or raise.
        self.observers: list[Callable[[Sequence[Batch]], None]] = []
        self.receipts = Receipts(config.edge.id)
        self.seqs = SeqCheck()
        self._seeded: set[str] = set()  # gateways whose seqs were looked up in the store

    # ------------------------------------------------------------ paho side (its thread)

    def _make_client(self, loop: asyncio.AbstractEventLoop) -> mqtt.Client:
        cfg = self.config.mqtt
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.config.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        apply_login_and_tls(client, self.config.mqtt)
        client.reconnect_delay_set(cfg.reconnect_min, cfg.reconnect_max)  # type: ignore[arg-type]

        def bridge(item: Incoming | bool) -> None:
            # The one crossing from paho's network thread into the asyncio loop.
            loop.call_soon_threadsafe(self._on_loop, item)

        def on_connect(c: mqtt.Client, _u: object, flags: Any, reason: Any, _p: object) -> None:
            if reason.is_failure:
                bridge(False)
                return
            self._generation += 1
            kinds = (TopicKind.DATA, TopicKind.STATUS, TopicKind.TAGS)
            c.subscribe([(subscription(k), 1) for k in kinds])
            bridge(True)

        def on_disconnect(_c: mqtt.Client, _u: object, _f: object, _r: object, _p: object) -> None:
            bridge(False)

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            bridge(Incoming(self._generation, msg.topic, msg.payload, msg.mid, msg.qos))

        client.on_connect = on_connect
        client.on_connect_fail = lambda _c, _u: bridge(False)  # broker down: paho retries
        client.on_disconnect = on_disconnect
        client.on_message = on_message
        return client

    # ------------------------------------------------------------ asyncio side

    def _on_loop(self, item: Incoming | bool) -> None:
        if isinstance(item, Incoming):
            self._queue.put_nowait(item)  # bounded by the broker's QoS 1 in-flight window
            self._arrived.set()
            return
        cfg = self.config.mqtt
        where = {"host": cfg.host, "port": cfg.port, "client_id": self.config.client_id}
        if item != self.stats.connected:
            self.stats.connected = item
            self.stats.connects += int(item)
            self._log.info("mqtt_connected" if item else "mqtt_disconnected", **where)
            self._unreachable_logged = False
        elif not item and not self._unreachable_logged:
            # Once per outage, not per retry: paho keeps retrying with backoff.
            self._unreachable_logged = True
            self._log.warning("mqtt_unreachable", **where, retrying_every_max_s=cfg.reconnect_max)

    async def run(self) -> None:
        """Connect (retrying with backoff in paho's thread) and ingest until cancelled."""
        client = self._client = self._make_client(asyncio.get_running_loop())
        cfg = self.config.mqtt
        client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive)
        client.loop_start()
        try:
            while True:
                await self._flush(await self._collect())
        finally:
            if self._writing is not None and not self._writing.done():
                await asyncio.wait([self._writing], timeout=30)  # before the store closes
            client.disconnect()
            client.loop_stop()

    async def _collect(self) -> list[Incoming]:
        """Wait for a message, then gather more for up to flush_interval or flush_messages.

        Timeouts wait on an Event, never on queue.get(): a get cancelled by its timeout at
        the wrong moment is the one way a message could be taken and then dropped."""
        cfg = self.config.store
        items = [await self._queue.get()]
        deadline = asyncio.get_running_loop().time() + cfg.flush_interval
        while True:
            while not self._queue.empty() and len(items) < cfg.flush_messages:
                items.append(self._queue.get_nowait())
            remaining = deadline - asyncio.get_running_loop().time()
            if len(items) >= cfg.flush_messages or remaining <= 0:
                return items
            self._arrived.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()
            except TimeoutError:
                return items

    async def _flush(self, items: list[Incoming]) -> None:
        batches, statuses, catalogues = self._decode_all(items)
        started = asyncio.get_running_loop().time()
        # Shielded: a cancelled ingest still lets the commit in progress finish (see run()).
        self._writing = asyncio.ensure_future(
            asyncio.to_thread(self._write, batches, statuses, catalogues)
        )
        results, refused = await asyncio.shield(self._writing)
        # Counters change only here, in the loop thread: the worker thread just reports.
        for result in results:
            self.stats.readings_stored += result.stored
            self.stats.readings_duplicate += result.duplicates
        for message, error in refused:
            self._reject(message.gateway, "unstorable", f"{type(error).__name__}: {error}")
        if refused:
            dropped = {id(message) for message, _ in refused}
            batches = [b for b in batches if id(b) not in dropped]
            statuses = [s for s in statuses if id(s) not in dropped]
        self.stats.flushes += 1
        self.stats.last_flush_ms = (asyncio.get_running_loop().time() - started) * 1000
        self.stats.last_flush_at = now_ns()
        client = self._client
        # Only now, after the commit (module docstring), and in arrival order as MQTT 3.1.1
        # section 4.6 requires of PUBACKs. Refused messages are acknowledged too: redelivered,
        # they would be refused again, forever.
        for item in items:
            if client is not None and item.qos > 0 and item.generation == self._generation:
                client.ack(item.mid, item.qos)
        self._send_receipts(batches, statuses)
        self._notify(batches)

    def _notify(self, batches: list[Batch]) -> None:
        """Hand the committed batches on; a fault in one observer (monitoring, rules) must not
        stop ingest, nor the other observers."""
        for observer in self.observers:
            try:
                observer(batches)
            except Exception as exc:  # isolation is the point: counted, logged once each
                self.stats.observer_errors += 1
                name = getattr(observer, "__qualname__", repr(observer))
                if ("observer", name) not in self._logged:
                    self._logged.add(("observer", name))
                    self._log.error("observer_failed", observer=name, error=repr(exc)[:300])

    def _send_receipts(self, batches: list[Batch], statuses: list[GatewayStatus]) -> None:
        """One retained receipt per gateway in this (committed) flush, duplicates included:
        a gateway re-sending what the edge already holds is waiting for exactly this."""
        for status in statuses:
            self.receipts.status_stored(status.gateway, status.ts)
        client = self._client
        if client is None:
            return
        for gateway in dict.fromkeys([b.gateway for b in batches] + [s.gateway for s in statuses]):
            receipt = self.receipts.receipt(gateway, self.store.received(gateway))
            client.publish(stored_topic(gateway), encode(receipt), qos=1, retain=True)
            self.stats.receipts += 1

    def _write(
        self,
        batches: list[Batch],
        statuses: list[GatewayStatus],
        catalogues: list[TagCatalogue] | None = None,
    ) -> tuple[list[WriteResult], list[tuple[Batch | GatewayStatus | TagCatalogue, Exception]]]:
        """Runs in a worker thread so HTTP requests are served while the commit syncs.
        Returns the write results and the messages the store refused, with why."""
        catalogues = catalogues or []
        try:
            return [self.store.write(batches, statuses, catalogues)], []
        except sqlite3.OperationalError:
            raise  # the disk or the database, not a message: nothing may be acknowledged
        except Exception:  # some message the store cannot hold; found below
            pass
        # Store the messages one by one and refuse only the offenders, rather than failing
        # the whole flush (and having it redelivered) forever: one gateway's bad message
        # must not stop ingest for the line.
        results: list[WriteResult] = []
        refused: list[tuple[Batch | GatewayStatus | TagCatalogue, Exception]] = []
        messages: list[Batch | GatewayStatus | TagCatalogue] = [*batches, *statuses, *catalogues]
        for message in messages:
            try:
                if isinstance(message, Batch):
                    results.append(self.store.write([message]))
                elif isinstance(message, TagCatalogue):
                    results.append(self.store.write([], [], [message]))
                else:
                    results.append(self.store.write([], [message]))
            except sqlite3.OperationalError:
                raise
            except Exception as exc:  # counted and logged by the caller
                refused.append((message, exc))
        return results, refused

    def _decode_all(
        self, items: list[Incoming]
    ) -> tuple[list[Batch], list[GatewayStatus], list[TagCatalogue]]:
        batches: list[Batch] = []
        statuses: list[GatewayStatus] = []
        catalogues: list[TagCatalogue] = []
        for item in items:
            self.stats.messages += 1
            try:
                gateway, kind = parse_topic(item.topic)
            except WireError as exc:
                self._reject("?", "bad_topic", str(exc))
                continue
            if kind in (TopicKind.STATUS, TopicKind.TAGS) and not item.payload:
                continue  # a retained message being cleared (fleet removed the gateway)
            message = self._decode(gateway, kind, item.payload)
            if isinstance(message, Batch | GatewayStatus) and gateway not in self._seeded:
                self._seeded.add(gateway)
                self.seqs.seed(gateway, self._known_in_store(gateway))
            if isinstance(message, Batch):
                self.stats.batches += 1
                jump = self.seqs.batch(gateway, message.last_seq, now_ns())
                if jump is None:
                    batches.append(message)
                else:
                    self._refuse_jump(message, jump)
            elif isinstance(message, GatewayStatus):
                statuses.append(message)
                self.stats.statuses += 1
                self.seqs.status(gateway, message.ts, message.last_seq, now_ns())
            elif isinstance(message, TagCatalogue):
                catalogues.append(message)
        return batches, statuses, catalogues

    def _decode(
        self, gateway: str, kind: TopicKind, payload: bytes | bytearray
    ) -> Batch | GatewayStatus | TagCatalogue | None:
        model = _MODELS.get(kind, GatewayStatus)
        try:
            message = decode(payload, model)
        except WireError as exc:
            self._reject(gateway, rejection_reason(exc), str(exc))
            return None
        if message.gateway != gateway:
            # A gateway must not write into another gateway's sequence space.
            self._reject(gateway, "gateway_mismatch", f"payload says {message.gateway!r}")
            return None
        return message

    def _known_in_store(self, gateway: str) -> Known | None:
        """What the store says the gateway issued: its stored status's last_seq (when received)
        or its highest stored seq (when last heard), whichever is higher."""
        found: list[Known] = []
        ranges = self.store.received(gateway)
        if ranges:
            found.append(Known(ranges[-1][1], self.store.heard().get(gateway, now_ns())))
        for record in self.store.gateways():
            if record.gateway != gateway:
                continue
            try:
                status = decode(record.payload, GatewayStatus)
            except WireError:
                break  # stored by an older edge: the ledger alone
            if status.ts:  # not a last will
                found.append(Known(status.last_seq, record.received_at))
        return max(found, key=lambda k: k.seq, default=None)

    def _refuse_jump(self, batch: Batch, jump: Jump) -> None:
        """Counted per gateway like every refusal; logged once per gateway and boot."""
        self.stats.rejected[(batch.gateway, "seq_jump")] += 1
        key = ("seq_jump", batch.gateway, batch.boot)
        if key in self._logged_boots:
            return
        if len(self._logged_boots) >= MAX_LOGGED_BOOTS:  # boots are the sender's word
            self._logged_boots.clear()
        self._logged_boots.add(key)
        self._log.warning(
            "seq_jump_refused",
            gateway=batch.gateway,
            boot=batch.boot[:100],
            first_seq=batch.first_seq,
            last_seq=batch.last_seq,
            known_seq=None if jump.known is None else jump.known.seq,
            bound=jump.bound,
        )

    def _reject(self, gateway: str, reason: str, detail: str) -> None:
        self.stats.rejected[(gateway, reason)] += 1
        if (gateway, reason) not in self._logged:  # once per gateway and reason, not per message
            self._logged.add((gateway, reason))
            self._log.warning(
                "payload_rejected", gateway=gateway, reason=reason, detail=detail[:300]
            )

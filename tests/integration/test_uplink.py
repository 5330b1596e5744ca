"""The uplink against a real Mosquitto: batches on the wire, deleted only on PUBACK, outages."""

from __future__ import annotations

import asyncio
import queue
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from factory_common import wire
from gateway_image.firmware.buffer import DurableBuffer
from gateway_image.firmware.config import MqttConfig
from gateway_image.firmware.uplink import Uplink
from gateway_image.firmware.uplink.plan import SendPlan
from tests.support.broker import Mosquitto
from tests.support.processes import wait_until
from tests.support.requirements import require_binary

GW = "test-gw1"


class Listener:
    """A plain paho subscriber collecting messages per topic (thread -> queue)."""

    def __init__(self, port: int, topics: list[str], session: str = "") -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._expected = len(topics)
        # A named session survives a broker restart (with persistence), like the edge's must.
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=session or f"listener-{time.time_ns()}",
            clean_session=not session,
        )
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_message = lambda _c, _u, m: self.messages.put(m)
        self.client.on_connect = lambda c, _u, _f, _rc, _p: [c.subscribe(t, qos=1) for t in topics]
        # Ready only once the broker has every subscription: a batch published before that is
        # routed to nobody, and the test would be timing the uplink's unrouted retry instead.
        self._acked = 0
        self._subscribed = threading.Event()
        self.client.on_subscribe = self._on_subscribe
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self._subscribed.wait(30):
            raise TimeoutError(f"the broker did not acknowledge subscriptions to {topics}")

    def _on_subscribe(self, *_: object) -> None:
        self._acked += 1
        if self._acked >= self._expected:
            self._subscribed.set()

    def get(self, timeout: float = 5.0) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def listener(mosquitto: Mosquitto) -> Iterator[Listener]:
    ls = Listener(mosquitto.port, [wire.data_topic(GW), wire.status_topic(GW)])
    yield ls
    ls.close()


def reading(i: int) -> wire.Reading:
    return wire.Reading(device="bath1", tag="temperature", ts=1_700_000_000 * 10**9 + i, value=i)


def mqtt_config(port: int, **kw: object) -> MqttConfig:
    """PUBACK semantics (`confirm: broker`): no edge sends receipts here. The end-to-end mode
    has its own tests (test_receipts.py)."""
    kw.setdefault("confirm", "broker")
    return MqttConfig(port=port, status_interval=0.5, batch_max_delay=0.05, **kw)  # type: ignore[arg-type]


async def online(uplink: Uplink, within: float) -> None:
    async with asyncio.timeout(within):
        await uplink.wait_online()


async def drained(buffer: DurableBuffer, within: float) -> None:
    await asyncio.to_thread(wait_until, lambda: buffer.depth == 0, within, "buffer drained")


async def collect_batches(listener: Listener, count: int, within: float) -> list[wire.Batch]:
    """Readings until `count` distinct seqs have arrived (duplicates are allowed on the wire)."""
    batches: list[wire.Batch] = []
    seen: set[int] = set()
    deadline = time.monotonic() + within
    while len(seen) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"only {len(seen)} of {count} readings arrived"
        try:
            msg = await asyncio.to_thread(listener.get, min(remaining, 1.0))
        except queue.Empty:
            continue
        if msg.topic == wire.data_topic(GW):
            batch = wire.decode(msg.payload, wire.Batch)
            batches.append(batch)
            seen.update(batch.seqs())
    return batches


async def test_batches_arrive_and_leave_buffer_on_puback(
    tmp_path: Path, mosquitto: Mosquitto, listener: Listener
) -> None:
    buffer = DurableBuffer.open(tmp_path / "b.sqlite", max_bytes=10**8)
    uplink = Uplink(GW, mqtt_config(mosquitto.port, batch_max_readings=100), buffer, boot="b1")
    task = asyncio.create_task(uplink.run())
    await online(uplink, 5)
    first, _ = await buffer.put([reading(i) for i in range(250)])
    batches = await collect_batches(listener, 250, within=10)
    assert all(len(b.readings) <= 100 and b.gateway == GW and b.boot == "b1" for b in batches)
    got = {s: r for b in batches for s, r in zip(b.seqs(), b.readings, strict=True)}
    assert got == {first + i: reading(i) for i in range(250)}
    await drained(buffer, 5)
    assert uplink.counters.readings_acked == 250
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    buffer.close()


async def test_rows_stay_until_broker_acknowledges(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """Broker down from the start: nothing can be acknowledged, so nothing leaves the buffer."""
    mosquitto.stop()
    buffer = DurableBuffer.open(tmp_path / "b.sqlite", max_bytes=10**8)
    uplink = Uplink(GW, mqtt_config(mosquitto.port), buffer, boot="b1")
    task = asyncio.create_task(uplink.run())
    await buffer.put([reading(i) for i in range(50)])
    await asyncio.sleep(1.0)
    assert buffer.depth == 50
    mosquitto.start()
    edge = Listener(mosquitto.port, [wire.data_topic(GW)])  # else the broker would discard them
    await online(uplink, 10)
    await drained(buffer, 15)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    edge.close()
    buffer.close()


async def test_batches_nobody_subscribed_to_stay_buffered_until_someone_does(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """MQTT 5: a PUBACK 'No matching subscribers' means the broker dropped the batch."""
    buffer = DurableBuffer.open(tmp_path / "b.sqlite", max_bytes=10**8)
    uplink = Uplink(GW, mqtt_config(mosquitto.port), buffer, boot="b1")
    task = asyncio.create_task(uplink.run())
    await buffer.put([reading(i) for i in range(50)])
    await online(uplink, 10)
    await asyncio.to_thread(wait_until, lambda: uplink.counters.batches_unrouted, 5, "unrouted")
    assert buffer.depth == 50 and uplink.counters.readings_acked == 0
    edge = Listener(mosquitto.port, [wire.data_topic(GW)])
    try:
        batches = await collect_batches(edge, 50, within=15)
        assert {s for b in batches for s in b.seqs()} == set(
            range(buffer.last_seq - 49, buffer.last_seq + 1)
        )
        await drained(buffer, 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        edge.close()
        buffer.close()


@pytest.fixture
def persistent_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """Sessions survive a restart, so the test's subscriber misses nothing while it is down."""
    binary = require_binary("mosquitto", "install mosquitto")
    workdir = tmp_path / "persistent-mosquitto"
    broker = Mosquitto(binary, workdir, f"persistence true\npersistence_location {workdir}/\n")
    broker.start()
    yield broker
    broker.stop()


async def test_broker_outage_loses_nothing_and_keeps_order(
    tmp_path: Path, persistent_broker: Mosquitto
) -> None:
    broker = persistent_broker
    listener = Listener(broker.port, [wire.data_topic(GW)], session="outage-listener")
    buffer = DurableBuffer.open(tmp_path / "b.sqlite", max_bytes=10**8, sync_interval=0.01)
    config = mqtt_config(broker.port, batch_max_readings=50, inflight_batches=4)
    uplink = Uplink(GW, config, buffer, boot="b1")
    task = asyncio.create_task(uplink.run())
    await online(uplink, 5)
    n, first = 0, None
    for step in range(100):  # a burst of readings every ~30 ms, the broker down for ~1.5 s
        f, _ = await buffer.put([reading(n + i) for i in range(5)])
        first = f if first is None else first
        n += 5
        if step == 20:
            broker.stop()
        if step == 70:
            broker.start()
        await asyncio.sleep(0.02)
    assert first is not None
    batches = await collect_batches(listener, n, within=20)
    listener.close()
    got = {s: r for b in batches for s, r in zip(b.seqs(), b.readings, strict=True)}
    assert got == {first + i: reading(i) for i in range(n)}
    # In order: ignoring re-sent duplicates, each batch starts where the previous new one ended.
    new_starts = []
    high = first - 1
    for b in batches:
        if b.last_seq > high:
            new_starts.append(b.first_seq)
            assert b.first_seq <= high + 1, "a gap: later readings overtook earlier ones"
            high = b.last_seq
    await drained(buffer, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    buffer.close()


async def test_status_retained_and_commands_rejected_without_handler(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    buffer = DurableBuffer.open(tmp_path / "b.sqlite", max_bytes=10**8)
    tags = [wire.TagInfo("bath1", "temperature", wire.TagType.FLOAT, unit="°C")]
    catalogue = wire.TagCatalogue(v=wire.WIRE_VERSION, gateway=GW, ts=1, tags=tags)
    uplink = Uplink(
        GW, mqtt_config(mosquitto.port), buffer, boot="b1", version="9.9", catalogue=catalogue
    )
    task = asyncio.create_task(uplink.run())
    await online(uplink, 5)
    await buffer.put([reading(1)])
    ls = Listener(mosquitto.port, [wire.tags_topic(GW)])
    try:  # retained: a subscriber arriving later still gets it
        msg = await asyncio.to_thread(ls.get)
        assert msg.retain and wire.decode(msg.payload, wire.TagCatalogue) == catalogue
    finally:
        ls.close()
    ls = Listener(mosquitto.port, [wire.status_topic(GW), wire.ack_topic(GW)])
    try:
        status = wire.decode((await asyncio.to_thread(ls.get)).payload, wire.GatewayStatus)
        assert status.online and status.version == "9.9" and status.boot == "b1"
        command = wire.Command(
            v=1, id="c1", gateway=GW, writes=[], issued_at=wire.now_ns(), expires_at=0
        )
        ls.client.publish(wire.command_topic(GW), wire.encode(command), qos=1)
        ls.client.publish(wire.command_topic(GW), b"{not json", qos=1)  # ignored, no crash
        while (msg := await asyncio.to_thread(ls.get)).topic != wire.ack_topic(GW):
            pass
        ack = wire.decode(msg.payload, wire.CommandAck)
        assert (ack.id, ack.status, ack.detail) == ("c1", "rejected", "commands not enabled")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        while (msg := await asyncio.to_thread(ls.get)).topic != wire.status_topic(GW):
            pass
        assert not wire.decode(msg.payload, wire.GatewayStatus).online  # clean goodbye
    finally:
        ls.close()
        buffer.close()


SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from gateway_image.firmware.buffer import DurableBuffer
    from gateway_image.firmware.config import MqttConfig
    from gateway_image.firmware.uplink import Uplink

    async def main():
        buffer = DurableBuffer.open(Path(sys.argv[2]), max_bytes=10**8)
        uplink = Uplink(sys.argv[3], MqttConfig(port=int(sys.argv[1]), keepalive=5),
                        buffer, boot="doomed")
        task = asyncio.create_task(uplink.run())
        await asyncio.wait_for(uplink.wait_online(), 10)
        print("online", flush=True)
        await task

    asyncio.run(main())
    """
)


def test_last_will_is_retained_offline_status_after_kill9(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(mosquitto.port), str(tmp_path / "b.sqlite"), GW],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert proc.stdout is not None
        while (line := proc.stdout.readline()) != b"online\n":  # log lines come first
            assert line, "the gateway script exited before coming online"
        proc.kill()
        proc.wait()
        # The broker notices the dead socket at once (RST) and publishes the will.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            ls = Listener(mosquitto.port, [wire.status_topic(GW)])
            try:
                status = wire.decode(ls.get(timeout=3).payload, wire.GatewayStatus)
            finally:
                ls.close()
            if not status.online:
                assert status.boot == "doomed"
                # Registered at connect, sent at death: no counters that would be stale then.
                assert (status.ts, status.uptime_s, status.connectors) == (0, 0.0, [])
                return
            time.sleep(0.3)
        raise AssertionError("no retained offline status after kill -9")
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_live_readings_overtake_a_backlog(
    tmp_path: Path, mosquitto: Mosquitto, listener: Listener
) -> None:
    """Live data first: after an outage, current readings go ahead of the (rate-limited) replay."""
    buffer = DurableBuffer.open(tmp_path / "b.sqlite", max_bytes=10**8, sync_interval=0.01)
    _, backlog_last = buffer.append([reading(i) for i in range(4000)])
    plan = SendPlan(live_first=True, backlog=1000, replay_rate=4000, burst=200)
    config = mqtt_config(mosquitto.port, batch_max_readings=200, inflight_batches=2)
    uplink = Uplink(GW, config, buffer, boot="b1", plan=plan)
    task = asyncio.create_task(uplink.run())
    await online(uplink, 5)
    live_first, _ = await buffer.put([reading(10_000 + i) for i in range(10)])
    batches = await collect_batches(listener, 4010, within=15)
    live = [i for i, b in enumerate(batches) if b.first_seq >= live_first]
    replayed = [i for i, b in enumerate(batches) if b.last_seq <= backlog_last]
    assert live and live[0] < replayed[-1], "the live readings waited for the whole backlog"
    assert all(batches[i].replay for i in replayed)
    assert not any(batches[i].replay for i in live)
    await drained(buffer, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    buffer.close()


async def test_an_uplink_several_commits_behind_catches_up_from_memory(
    tmp_path: Path, mosquitto: Mosquitto, listener: Listener
) -> None:
    """Readings committed while the uplink is busy go out from memory, not read back from
    SQLite: that costs several times as much, and an uplink on it falls further behind."""
    buffer = DurableBuffer.open(tmp_path / "b.sqlite", max_bytes=10**8)
    uplink = Uplink(GW, mqtt_config(mosquitto.port), buffer, boot="b1")  # the default plan
    task = asyncio.create_task(uplink.run())
    await online(uplink, 5)
    await buffer.put([reading(0)])  # the first read after a start is from SQLite
    await collect_batches(listener, 1, within=10)
    from_disk: list[int | None] = []
    read_disk = buffer.pending

    def pending(limit: int, after_seq: int | None = None) -> list[tuple[int, wire.Reading]]:
        from_disk.append(after_seq)
        return read_disk(limit, after_seq)

    buffer.pending = pending  # type: ignore[method-assign]
    buffer.offer([reading(i) for i in range(1, 20_001)])  # four group commits' worth at once
    await collect_batches(listener, 20_000, within=30)
    assert from_disk == []
    await drained(buffer, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    buffer.close()

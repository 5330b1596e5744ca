"""Live data before backlog, measured on the wire after a broker outage (default config).

A subscriber with a persistent session sees every batch in broker order: the first batch
after the outage must carry live readings, live batches must keep coming while the backlog is
replayed, and the replay must drain at least 10x faster than readings are produced.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from factory_common import wire
from gateway_image.firmware.buffer import DurableBuffer
from gateway_image.firmware.config import MqttConfig
from gateway_image.firmware.uplink import Uplink
from tests.fault.rig import note
from tests.integration.test_uplink import Listener
from tests.support.broker import Mosquitto

GW = "live-gw1"
BACKLOG = 20_000  # readings waiting when the broker comes back
RATE = 500  # readings/s produced throughout
T0 = 1_700_000_000 * 10**9


def reading(i: int) -> wire.Reading:
    return wire.Reading(device="bath1", tag="temperature", ts=T0 + i * 10**6, value=float(i))


async def produce(buffer: DurableBuffer, start: int) -> None:
    """RATE readings/s through the connectors' sink, on a 0.1 s schedule, until cancelled."""
    loop = asyncio.get_running_loop()
    i, step, tick = start, RATE // 10, loop.time()
    while True:
        await buffer.put([reading(i + k) for k in range(step)])
        i += step
        tick += 0.1
        await asyncio.sleep(max(0.0, tick - loop.time()))


def arrivals(
    messages: queue.Queue[mqtt.MQTTMessage], until_seq: int, within: float
) -> list[tuple[float, wire.Batch]]:
    """(arrival time, batch) in broker order until seq `until_seq` and all before it arrived."""
    got: list[tuple[float, wire.Batch]] = []
    seen: set[int] = set()
    deadline = time.monotonic() + within
    while not (seen and max(seen) >= until_seq and len(seen) == max(seen) - min(seen) + 1):
        message = messages.get(timeout=max(0.1, deadline - time.monotonic()))
        batch = wire.decode(message.payload, wire.Batch)
        got.append((time.monotonic(), batch))
        seen.update(range(batch.first_seq, batch.last_seq + 1))
    return got


async def test_after_an_outage_live_goes_first_and_the_replay_drains_10x_faster(
    tmp_path: Path, persistent_broker: Mosquitto
) -> None:
    listener = Listener(persistent_broker.port, [wire.data_topic(GW)], session="live-listener")
    await asyncio.sleep(0.5)  # subscribed: the broker now queues for this session
    persistent_broker.stop()
    buffer = DurableBuffer.open(tmp_path / "buffer.sqlite", max_bytes=10**9)
    _, backlog_last = buffer.append([reading(i) for i in range(BACKLOG)])
    config = MqttConfig(port=persistent_broker.port, batch_max_delay=0.05)
    assert config.live_first and config.replay_rate == "auto"  # the defaults under test
    uplink = Uplink(GW, config, buffer, boot="b")
    producer = asyncio.create_task(produce(buffer, BACKLOG))
    sender = asyncio.create_task(uplink.run())
    try:
        await asyncio.sleep(3.0)  # the outage: production goes on, the rate is measured
        await asyncio.to_thread(persistent_broker.start)
        async with asyncio.timeout(15):
            await uplink.wait_online()
        split = buffer.last_seq  # about where the plan splits live from backlog
        got = await asyncio.to_thread(arrivals, listener.messages, split + 2 * RATE, 30.0)
    finally:
        producer.cancel()
        sender.cancel()
        await asyncio.gather(producer, sender, return_exceptions=True)
        listener.close()
        buffer.close()
    start, opening = got[0]
    assert not opening.replay and opening.first_seq > backlog_last, "a live batch goes first"
    replays = [(t, b) for t, b in got if b.replay]
    replayed = sum(len(b.readings) for _, b in replays)
    assert replays and replayed >= BACKLOG
    seqs = [b.first_seq for _, b in replays]
    assert seqs == sorted(seqs), "the backlog is replayed in seq order"
    drain_s = replays[-1][0] - start
    rate = replayed / drain_s
    produced = uplink.plan.production.value or 0.0  # measured over the whole test
    live_times = [t for t, b in got if not b.replay and t <= replays[-1][0]]
    assert len(live_times) >= 2, "live batches kept coming during the replay"
    longest_wait = max(b - a for a, b in itertools.pairwise(live_times))
    note(
        f"live first: backlog {replayed} readings replayed in {drain_s:.2f} s = {rate:,.0f}/s "
        f"({rate / produced:.0f}x production of {produced:.0f}/s); live batches every <= "
        f"{longest_wait:.2f} s meanwhile; replay rate in force {uplink.plan.rate():,.0f}/s"
    )
    assert produced >= 0.8 * RATE
    assert rate >= 10 * produced
    assert longest_wait < 1.0, "the replay starved live data"

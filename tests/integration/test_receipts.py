"""End to end confirmation (`mqtt.confirm: edge`) with a real Mosquitto, uplink and edge ingest:
readings leave the gateway buffer only when the edge's receipt lists them, and a batch the
broker acknowledged but the edge never stored is noticed and sent again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

from edge_node.config import parse_edge_config
from edge_node.ingest import Incoming, Ingest
from edge_node.store import Store
from factory_common import wire
from gateway_image.firmware.buffer import DurableBuffer
from gateway_image.firmware.uplink import Uplink
from tests.integration.test_uplink import Listener, mqtt_config, online, reading
from tests.support.broker import Mosquitto
from tests.support.processes import wait_until

GW = "receipt-gw1"


class LossyIngest(Ingest):
    """The real ingest, except that the first delivery of one batch vanishes before the
    commit: to the gateway, exactly what a broker losing an acknowledged message looks like."""

    def __init__(self, *args: object, lose_seq: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lose_seq = lose_seq
        self.lost: list[tuple[int, int]] = []

    def _decode_all(self, items: list[Incoming]) -> tuple[list[wire.Batch], list, list]:
        batches, statuses, catalogues = super()._decode_all(items)
        for batch in batches:
            if not self.lost and batch.first_seq <= self.lose_seq <= batch.last_seq:
                self.lost.append((batch.first_seq, batch.last_seq))
                batches.remove(batch)
                break
        return batches, statuses, catalogues


@contextlib.asynccontextmanager
async def running(coroutine: object) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.ensure_future(coroutine)  # type: ignore[arg-type]
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def edge_config(port: int, client_id: str):
    return parse_edge_config(
        f"edge: {{id: e1}}\nmqtt: {{port: {port}, client_id: {client_id}}}\n"
        "store: {flush_interval: 0.05}\n"
    )


def stored_once(store: Store, count: int) -> bool:
    series = [s for s in store.series() if s.gateway == GW]
    data = store.history(series, 0, 2**63 - 1)
    ts = np.concatenate([d.ts for d in data]) if data else np.array([])
    return len(ts) == count and len(np.unique(ts)) == count


async def until(condition: object, within: float, what: str) -> None:
    await asyncio.to_thread(wait_until, condition, within, what)  # type: ignore[arg-type]


async def test_a_batch_lost_after_the_puback_is_sent_again_and_stored_once(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    store = Store(tmp_path / "edge.sqlite")
    buffer = DurableBuffer.open(tmp_path / "b.sqlite", max_bytes=10**8)
    first, _ = await buffer.put([reading(i) for i in range(1)])
    ingest = LossyIngest(edge_config(mosquitto.port, "edge-r1"), store, lose_seq=first + 120)
    config = mqtt_config(mosquitto.port, batch_max_readings=50, confirm="edge")
    uplink = Uplink(GW, config, buffer, boot="b1")
    async with running(ingest.run()), running(uplink.run()):
        await until(lambda: ingest.stats.connected, 5, "edge connected")
        await online(uplink, 5)
        for chunk in range(6):
            await buffer.put([reading(1 + chunk * 50 + i) for i in range(50)])
            await asyncio.sleep(0.1)
        await until(lambda: buffer.depth == 0, 15, "every reading confirmed by the edge")
        assert ingest.lost, "the injected loss never happened"
        assert store.received(GW) == [(first, first + 300)]
        assert stored_once(store, 301)
        assert uplink.counters.batches_resent >= 1
        assert uplink.counters.readings_acked == 301
    buffer.close()
    store.close()


async def test_rows_stay_after_the_puback_until_an_edge_stores_them(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """Another subscriber takes the batches, so the broker acknowledges them, but no edge has
    stored them: they stay. An edge that appears later (it never had a session, so the broker
    never queued them for it) gets them re-sent once its receipt for a later status shows them
    missing."""
    other = Listener(mosquitto.port, [wire.data_topic(GW)])
    store = Store(tmp_path / "edge.sqlite")
    buffer = DurableBuffer.open(tmp_path / "b.sqlite", max_bytes=10**8)
    uplink = Uplink(GW, mqtt_config(mosquitto.port, confirm="edge"), buffer, boot="b1")
    try:
        async with running(uplink.run()):
            await online(uplink, 5)
            first, _ = await buffer.put([reading(i) for i in range(100)])
            await asyncio.to_thread(other.get, 5)  # published and acknowledged by the broker
            await asyncio.sleep(1.0)
            assert buffer.depth == 100 and uplink.counters.readings_acked == 0
            ingest = Ingest(edge_config(mosquitto.port, "edge-r2"), store)
            async with running(ingest.run()):
                await until(lambda: buffer.depth == 0, 15, "the late edge to confirm all")
            assert store.received(GW) == [(first, first + 99)]
            assert stored_once(store, 100)
    finally:
        other.close()
        buffer.close()
        store.close()


async def test_readings_nobody_could_route_reach_an_edge_that_subscribes_late(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """Readings flow while no edge has ever subscribed: every batch comes back "No matching
    subscribers" and is sent again 5 s later; by then a backlog has built up, so live readings
    go first, and the retry after that starts at the first live seq. The edge subscribes only
    then: the readings below that seq (a backlog nothing routed) must reach it as well."""
    store = Store(tmp_path / "edge.sqlite")
    buffer = DurableBuffer.open(tmp_path / "b.sqlite", max_bytes=10**8)
    config = mqtt_config(mosquitto.port, confirm="edge", batch_max_readings=100, backlog=500)
    uplink = Uplink(GW, config, buffer, boot="b1")
    rewinds: list[int] = []
    rewind = uplink.plan.rewind

    def watched_rewind(seq: int) -> None:
        rewinds.append(seq)
        rewind(seq)

    uplink.plan.rewind = watched_rewind  # type: ignore[method-assign]
    commits: list[tuple[int, int]] = []
    stop = asyncio.Event()

    async def produce() -> None:
        """33 readings every 0.1 s: a second of them is more than a batch, not whole ones."""
        loop = asyncio.get_running_loop()
        i, tick = 0, loop.time()
        while not stop.is_set():
            commits.append(await buffer.put([reading(i + k) for k in range(33)]))
            i += 33
            tick += 0.1
            await asyncio.sleep(max(0.0, tick - loop.time()))

    try:
        async with running(uplink.run()), running(produce()) as producer:
            await online(uplink, 5)
            await until(lambda: commits, 5, "the first commit")
            first = commits[0][0]
            await until(lambda: any(seq > first for seq in rewinds), 40, "a retry past the first")
            ingest = Ingest(edge_config(mosquitto.port, "edge-r3"), store)
            async with running(ingest.run()):
                await until(lambda: ingest.stats.connected, 5, "edge connected")
                so_far = len(commits)
                await until(lambda: len(commits) > so_far + 20, 10, "live readings meanwhile")
                stop.set()
                await producer
                last = commits[-1][1]
                await until(lambda: buffer.depth == 0, 30, "every reading confirmed by the edge")
                assert store.received(GW) == [(first, last)]
                assert stored_once(store, last - first + 1)
    finally:
        buffer.close()
        store.close()

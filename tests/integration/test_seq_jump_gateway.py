"""Seq jumps with a real gateway uplink, Mosquitto and edge ingest (`mqtt.confirm: edge`).

A genuine gateway whose new buffer file restarts its counter far above the old seqs (a lost
SD card) is stored: its status comes first on connect. When that status is lost, its batches
look early and are refused; the gateway sends them again once a receipt names a later status,
and nothing is lost.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge_node.ingest import Incoming, Ingest
from edge_node.store import Store
from factory_common import wire
from gateway_image.firmware.buffer import DurableBuffer
from gateway_image.firmware.uplink import Uplink
from tests.integration.test_receipts import edge_config, running, stored_once, until
from tests.integration.test_uplink import mqtt_config, online, reading
from tests.support.broker import Mosquitto

GW = "receipt-gw1"  # stored_once() counts this gateway's readings
OLD_START = 1000  # the old buffer's first seq: its counter started long ago


class StatusLosingIngest(Ingest):
    """The real ingest, except that the first status of one boot vanishes before the store
    sees it, as if lost on the way: that boot's batches then come before its status."""

    def __init__(self, *args: object, lose_boot: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lose_boot = lose_boot
        self.lost = False

    def _decode_all(self, items: list[Incoming]) -> tuple[list[wire.Batch], list, list]:
        kept = []
        for item in items:
            if self._lose(item):
                self.lost = True
                continue
            kept.append(item)
        return super()._decode_all(kept)

    def _lose(self, item: Incoming) -> bool:
        if self.lost or item.topic != wire.status_topic(GW) or not item.payload:
            return False
        return wire.decode(item.payload, wire.GatewayStatus).boot == self.lose_boot


def _old_buffer(path: Path) -> DurableBuffer:
    """A buffer whose counter started long ago, far below today's clock in microseconds."""
    DurableBuffer.open(path, max_bytes=10**8).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('next_seq', ?)", (OLD_START,))
    conn.close()
    return DurableBuffer.open(path, max_bytes=10**8)


@pytest.mark.parametrize("status_lost", [False, True])
async def test_a_new_buffer_after_a_restart_is_stored_even_when_its_status_is_lost(
    tmp_path: Path, mosquitto: Mosquitto, status_lost: bool
) -> None:
    store = Store(tmp_path / "edge.sqlite")
    lose = "b2" if status_lost else "none"
    ingest = StatusLosingIngest(edge_config(mosquitto.port, "edge-sj"), store, lose_boot=lose)
    config = mqtt_config(mosquitto.port, batch_max_readings=50, confirm="edge")
    old = _old_buffer(tmp_path / "old.sqlite")
    new = DurableBuffer.open(tmp_path / "new.sqlite", max_bytes=10**8)
    try:
        async with running(ingest.run()):
            await until(lambda: ingest.stats.connected, 5, "edge connected")
            async with running(Uplink(GW, config, old, boot="b1").run()):
                await old.put([reading(i) for i in range(100)])
                await until(lambda: old.depth == 0, 15, "the old buffer confirmed")
            # The restart with a new buffer file: its seqs start at the clock in microseconds.
            first, _ = await new.put([reading(100 + i) for i in range(100)])
            assert first > OLD_START + 10**9
            uplink = Uplink(GW, config, new, boot="b2")
            async with running(uplink.run()):
                await online(uplink, 5)
                await until(lambda: new.depth == 0, 30, "the new buffer confirmed")
            assert ingest.lost == status_lost
            refused = ingest.stats.rejected[(GW, "seq_jump")]
            assert (refused > 0) == status_lost, f"{refused} batches refused as seq jumps"
            if status_lost:
                assert uplink.counters.batches_resent >= 1
            ranges = [(OLD_START, OLD_START + 99), (first, first + 99)]
            assert store.received(GW) == ranges
            assert stored_once(store, 200)
    finally:
        old.close()
        new.close()
        store.close()

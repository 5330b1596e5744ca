"""A buffer file cut at a random byte (power cut mid-write, bad SD card): the real gateway
process starts, quarantines the damaged file, sends every reading that was intact, and
reports the rest as dropped["corrupt"] in its status, which the edge shows."""

from __future__ import annotations

import os
import random

import pytest
import yaml

from factory_common import wire
from gateway_image.firmware.buffer import DurableBuffer
from tests.fault.rig import Rig, edge_holdings, note

N = 6000
T0 = 1_700_000_000 * 10**9


def reading(i: int) -> wire.Reading:
    return wire.Reading(device="bath1", tag="level", ts=T0 + i * 10**6, value=float(i))


def write_buffer(rig: Rig) -> int:
    """N readings in six commits, as a gateway that could not send them would leave them."""
    buffer = DurableBuffer.open(rig.buffer_path, max_bytes=10**9)
    try:
        first = buffer.last_seq + 1
        for start in range(0, N, 1000):
            buffer.append([reading(i) for i in range(start, start + 1000)])
    finally:
        buffer.close()
    return first


@pytest.mark.slow
@pytest.mark.parametrize("case", range(3))
def test_gateway_starts_on_a_truncated_buffer_and_reports_what_was_lost(
    rig: Rig, case: int
) -> None:
    seed = int(os.environ.get("FAULT_SEED", random.randrange(10**6))) + case
    rig.edge()
    # No connector: only the buffer's readings are sent (a connector left without its device
    # would add one "connector down" reading per tag).
    config = rig.write_gateway_config()
    config.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()), "connectors": []}))
    first = write_buffer(rig)
    size = rig.buffer_path.stat().st_size
    # Inside SQLite's 100-byte header nothing says how many readings the file held; from
    # there on the header's copy of the depth does (tests/unit/test_buffer.py).
    cut = random.Random(seed).randrange(100, size)
    with rig.buffer_path.open("r+b") as f:
        f.truncate(cut)
    note(f"buffer of {size:,} bytes cut at byte {cut:,} (seed {seed})")
    gateway = rig.gateway()
    api = rig.api()
    try:

        def drained_status() -> dict | None:
            status = rig.gateway_status(api)
            return status if status and status.get("buffer_depth", 0) == 0 else None

        status = rig.wait(drained_status, 60, "the gateway's status at the edge, buffer empty")
    finally:
        api.close()
    lost = status.get("dropped", {}).get("corrupt", 0)
    held = edge_holdings(rig.store_path)
    assert held.ranges == [] or (held.ranges[0][0] >= first and held.ranges[-1][1] < first + N)
    rig.wait(lambda: edge_holdings(rig.store_path).seqs + lost == N, 30, "every kept reading")
    held = edge_holdings(rig.store_path)
    note(f"kept {held.readings:,} readings; the edge shows dropped={status.get('dropped')}")
    assert held.readings == held.seqs and held.repeated == 0
    assert list(rig.gateway_dir.glob("buffer.sqlite.corrupt-*")), "the damaged file is kept"
    assert '"buffer_corrupt"' in gateway.log()
    assert gateway.alive

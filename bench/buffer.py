"""Benchmark (not a test): the gateway buffer's fsync'd write throughput and its drain rate,
each beside a naive one-row-per-transaction SQLite buffer measured in the same run.

    .venv/bin/python bench/buffer.py [--seconds 5] [--no-record]

Write: 200 producers (connector runners) put 31 readings at a time (one poll of the example
line) into the DurableBuffer, which group-commits them (sync_interval 0.1 s, synchronous=FULL,
so every commit is fsync'd before put() returns). Baseline: the same rows, each its own INSERT
and COMMIT under the same pragmas, as a buffer without group commit does it.
Drain: what the uplink does per batch, without the network: read the next 500 readings in seq
order, decode them, delete them as acknowledged (all PUBACKs that arrived together in one
transaction, synchronous=NORMAL: a lost ack only re-sends). Baseline: read, delete and commit
one row at a time, under the same pragmas.
Results go to docs/benchmarks.md under "## Gateway buffer".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from factory_common import wire  # noqa: E402
from gateway_image.firmware.buffer import DurableBuffer  # noqa: E402
from gateway_image.firmware.buffer.format import (  # noqa: E402
    SCHEMA,
    connect,
    decode_reading,
    encode_reading,
)

DOC = ROOT / "docs" / "benchmarks.md"
HEADING = "## Gateway buffer"
POLL = 31  # readings per poll (the example anodizing line)
PRODUCERS = 200  # enough waiting callers to keep the group commit full
DRAIN_ROWS = 100_000


def poll(i: int) -> list[wire.Reading]:
    ts = time.time_ns()
    return [
        wire.Reading(device="bath1", tag=f"t{k}", ts=ts, value=float(i + k)) for k in range(POLL)
    ]


async def buffer_writes(path: Path, seconds: float) -> float:
    buffer = DurableBuffer.open(path, max_bytes=10**10)
    stop = time.monotonic() + seconds
    count = 0

    async def producer() -> None:
        nonlocal count
        i = 0
        while time.monotonic() < stop:
            await buffer.put(poll(i))
            count += POLL
            i += 1

    started = time.monotonic()
    await asyncio.gather(*(producer() for _ in range(PRODUCERS)))
    elapsed = time.monotonic() - started
    await buffer.aclose()
    return count / elapsed


def naive_writes(path: Path, seconds: float) -> float:
    conn = connect(path)
    conn.executescript(SCHEMA)
    stop, count, seq = time.monotonic() + seconds, 0, 0
    started = time.monotonic()
    while time.monotonic() < stop:
        for reading in poll(count):
            conn.execute("BEGIN")
            conn.execute(
                "INSERT INTO readings VALUES (?, ?, ?)",
                (seq, time.time_ns(), encode_reading(reading)),
            )
            conn.execute("COMMIT")
            seq += 1
        count += POLL
    elapsed = time.monotonic() - started
    conn.close()
    return count / elapsed


def fill(path: Path, rows: int) -> DurableBuffer:
    buffer = DurableBuffer.open(path, max_bytes=10**10)
    for start in range(0, rows, 5000):
        buffer.append([r for i in range(start, start + 5000, POLL) for r in poll(i)][:5000])
    return buffer


def buffer_drain(path: Path) -> float:
    buffer = fill(path, DRAIN_ROWS)
    total, after, started = buffer.depth, None, time.monotonic()
    while True:
        batch = buffer.pending(500, after)
        if not batch:
            break
        after = batch[-1][0]
        buffer.ack_ranges([(batch[0][0], after)])
    elapsed = time.monotonic() - started
    assert buffer.depth == 0
    buffer.close()
    return total / elapsed


def naive_drain(path: Path, seconds: float) -> float:
    buffer = fill(path, DRAIN_ROWS)
    buffer.close()
    conn = connect(path)
    conn.execute("PRAGMA synchronous=NORMAL")  # as the buffer's ack: only batching differs
    stop, count, started = time.monotonic() + seconds, 0, time.monotonic()
    while time.monotonic() < stop:
        row = conn.execute("SELECT seq, body FROM readings ORDER BY seq LIMIT 1").fetchone()
        if row is None:
            break
        decode_reading(row[1])
        conn.execute("BEGIN")
        conn.execute("DELETE FROM readings WHERE seq = ?", (row[0],))
        conn.execute("COMMIT")
        count += 1
    elapsed = time.monotonic() - started
    conn.close()
    return count / elapsed


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    python = platform.python_version()
    return f"`{platform.platform()}`, {os.cpu_count()} CPUs ({cpu}), Python {python}"


def record(text: str) -> None:
    doc = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if HEADING not in doc:
        doc = doc.rstrip("\n") + f"\n\n{HEADING}\n\nProduced by `bench/buffer.py`.\n"
    start = doc.index(HEADING)
    nxt = doc.find("\n## ", start + len(HEADING))
    end = len(doc) if nxt == -1 else nxt
    doc = doc[:end].rstrip("\n") + "\n\n" + text + "\n" + doc[end:]
    DOC.write_text(doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    (ROOT / "build").mkdir(exist_ok=True)  # the real disk (a tmpfs /tmp would fake fsync)
    with tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp:
        d = Path(tmp)
        write = asyncio.run(buffer_writes(d / "w.sqlite", args.seconds))
        write_naive = naive_writes(d / "wn.sqlite", args.seconds)
        drain = buffer_drain(d / "d.sqlite")
        drain_naive = naive_drain(d / "dn.sqlite", args.seconds)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"### Run {stamp}\n\n"
        f"Machine: {machine()}. Files on the machine's disk (every commit fsync'd: "
        f"synchronous=FULL, WAL), {args.seconds:.0f} s per write row, {PRODUCERS} producers of "
        f"{POLL} readings, {DRAIN_ROWS:,} rows drained. The naive baseline's rate is this disk's "
        "cost of one commit: an SD card's fsync is 10-100x slower, the group commit's share of "
        "it is not.\n\n"
        "| what | DurableBuffer | naive: one row per transaction | ratio |\n"
        "|---|---:|---:|---:|\n"
        f"| write, readings/s (fsync'd before put() returns) | {write:,.0f} | "
        f"{write_naive:,.0f} | {write / write_naive:.0f}x |\n"
        f"| drain, readings/s (read in order, delete as acked) | {drain:,.0f} | "
        f"{drain_naive:,.0f} | {drain / drain_naive:.0f}x |\n"
    )
    print(text)
    if not args.no_record:
        record(text)


if __name__ == "__main__":
    main()

"""Benchmark (not a test): what end-to-end receipts cost. A gateway drains a backlog into the
edge with `mqtt.confirm: edge` (readings deleted when the edge's receipt lists them) and, in
the same run as the baseline, with `confirm: broker` (deleted on the broker's PUBACK).

    .venv/bin/python bench/confirm.py [--readings 300000] [--no-record]

Real processes on a private Mosquitto: `edge-node run --role ingest` (default settings) and
`gateway run` started on a buffer already holding the backlog (31-tag polls of the example
line), its only connector pointing at a closed port, `live_first: false` (no live data to put
first, so the replay is not paced). Measured per mode: seconds until the edge has stored
every reading (its seq ledger, read-only), and until the gateway buffer is empty, both from
the moment the edge stored its first reading. Results go to docs/benchmarks.md, "## Edge".
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import yaml  # noqa: E402
from bench_report import machine, now, record_section  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402

from factory_common import wire  # noqa: E402
from gateway_image.firmware.buffer import DurableBuffer  # noqa: E402
from tests.fault.rig import buffer_meta, received_ranges  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402
from tests.support.ports import free_port, wait_for_port  # noqa: E402

console = Console()
GW = "bench-confirm"
POLL = 31


def fill_buffer(path: Path, readings: int) -> tuple[int, int]:
    """The backlog: `readings` readings in polls of 31; returns (first seq, last seq)."""
    buffer = DurableBuffer.open(path, max_bytes=10**10)
    ts = time.time_ns() - 86_400 * 10**9
    first = last = None
    for start in range(0, readings, 31_000):
        rows = [
            wire.Reading(device="bath1", tag=f"t{i % POLL}", ts=ts + i * 10**6, value=float(i))
            for i in range(start, min(start + 31_000, readings))
        ]
        lo, hi = buffer.append(rows)
        first = lo if first is None else first
        last = hi
    buffer.close()
    assert first is not None and last is not None
    return first, last


def ledger_top(store: Path) -> int:
    """The highest seq of the edge's first received range (its contiguous progress)."""
    ranges = received_ranges(store, GW)
    return ranges[0][1] if ranges else 0


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)


def run_mode(binary: str, confirm: str, readings: int, work: Path) -> dict[str, float]:
    work.mkdir(parents=True)
    broker = Mosquitto(binary, work / "broker")
    broker.start()
    edge_dir, gw_dir = work / "edge", work / "gateway"
    edge_dir.mkdir()
    gw_dir.mkdir()
    http = free_port()
    (edge_dir / "edge.yaml").write_text(
        f"edge: {{id: bench-edge}}\nmqtt: {{port: {broker.port}, client_id: edge-confirm}}\n"
        f"store: {{path: edge.sqlite}}\nhttp: {{host: 127.0.0.1, port: {http}}}\n"
        "auth: {enabled: false}\n"
    )
    first, last = fill_buffer(gw_dir / "buffer.sqlite", readings)
    config = {
        "gateway": {"id": GW},
        "mqtt": {"port": broker.port, "confirm": confirm, "live_first": False},
        "buffer": {"path": "buffer.sqlite", "max_bytes": "10GiB"},
        "connectors": [
            {
                "type": "modbus_tcp", "name": "plc", "host": "127.0.0.1", "port": free_port(),
                "devices": [{"name": "d1", "unit": 1, "tags": [
                    {"name": "x", "table": "holding", "address": 0, "type": "uint16"}]}],
            }
        ],
    }  # fmt: skip
    (gw_dir / "gateway.yaml").write_text(yaml.safe_dump(config))
    bin_dir = Path(sys.executable).parent
    edge = start(
        [str(bin_dir / "edge-node"), "run", str(edge_dir / "edge.yaml"), "--data-dir",
         str(edge_dir), "--role", "ingest", "--json-logs"], work / "edge.log",
    )  # fmt: skip
    gateway = None
    try:
        wait_for_port(http, timeout=30)
        time.sleep(1.0)  # subscribed (its persistent session exists from here on)
        began = time.monotonic()
        gateway = start(
            [str(bin_dir / "gateway"), "run", str(gw_dir / "gateway.yaml"), "--data-dir",
             str(gw_dir), "--log-json"], work / "gateway.log",
        )  # fmt: skip
        stored_at = emptied_at = None
        # The clock starts at the first reading stored: process start-up is not the drain.
        while ledger_top(edge_dir / "edge.sqlite") == 0:
            if time.monotonic() - began > 60:
                raise SystemExit(f"confirm: {confirm}: nothing arrived in 60 s; see {work}")
            time.sleep(0.01)
        began = time.monotonic()
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"confirm: {confirm}", total=last - first + 1)
            while stored_at is None or emptied_at is None:
                if time.monotonic() - began > 600:
                    raise SystemExit(f"confirm: {confirm}: not drained after 600 s; see {work}")
                top = ledger_top(edge_dir / "edge.sqlite")
                progress.update(task, completed=max(0, top - first + 1))
                now_s = time.monotonic() - began
                if stored_at is None and top >= last:
                    stored_at = now_s
                if emptied_at is None and buffer_meta(gw_dir / "buffer.sqlite").get("depth") == 0:
                    emptied_at = now_s
                time.sleep(0.02)
    finally:
        for process in (gateway, edge):
            if process is not None:
                process.terminate()
                process.wait(30)
        broker.stop()
    return {"stored": stored_at, "emptied": emptied_at, "readings": last - first + 1}


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median time to everything stored, and the spread of that time."""
    ordered = sorted(runs, key=lambda r: r["stored"])
    low, high = ordered[0]["stored"], ordered[-1]["stored"]
    return {**ordered[len(ordered) // 2], "low": low, "high": high}


def markdown(readings: int, repeat: int, results: dict[str, dict[str, float]]) -> str:
    rows = "\n".join(
        f"| `confirm: {mode}` | {r['stored']:.2f} s ({r['low']:.2f}-{r['high']:.2f}) "
        f"| {r['readings'] / r['stored']:,.0f} "
        f"| {r['emptied']:.2f} s |"
        for mode, r in results.items()
    )
    edge, broker = results["edge"], results["broker"]
    return f"""### End-to-end receipts: what deleting only on the edge's word costs

`.venv/bin/python bench/confirm.py --readings {readings} --repeat {repeat}` ({now()}).
Machine: {machine()}.
A gateway process drains a backlog of {readings:,} buffered readings into the edge process
(`--role ingest`, default settings) through a private Mosquitto; {repeat} runs per mode,
alternating, in one invocation; the median run is shown (the range of the first column in
brackets).

| mode | every reading stored at the edge (range) | readings/s | gateway buffer empty |
|---|---|---|---|
{rows}

With receipts the drain takes {edge["stored"] / broker["stored"]:.2f}x the time of the PUBACK-only
baseline. The buffer empties {edge["emptied"] - edge["stored"]:.2f} s after the edge has everything
(the last receipt's round trip); with `confirm: broker` it empties
{broker["stored"] - broker["emptied"]:.2f} s *before* the edge has everything, and that interval is
what a broker crash could lose."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode, alternating")
    parser.add_argument("--no-record", action="store_true", help="do not write docs/benchmarks.md")
    args = parser.parse_args()
    binary = shutil.which("mosquitto")
    if binary is None:
        raise SystemExit("mosquitto is not installed: apt-get install mosquitto")
    runs: dict[str, list[dict[str, float]]] = {"edge": [], "broker": []}
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="bench_confirm_") as tmp:
        for i in range(args.repeat):  # alternating, so drift on the machine hits both alike
            for mode in runs:
                runs[mode].append(run_mode(binary, mode, args.readings, Path(tmp) / f"{mode}{i}"))
    results = {mode: median_run(found) for mode, found in runs.items()}
    text = markdown(args.readings, args.repeat, results)
    console.print(text)
    if not args.no_record:
        record_section("confirm", text)
        console.print("recorded in docs/benchmarks.md")


if __name__ == "__main__":
    main()

"""Modbus RTU poll cycle through a paced pty "wire", for bench/gateway_throughput.py.

A socat pty pair moves bytes instantly; here two pairs are joined by a process that delays
every byte by its character time at the configured baud rate, so the gateway's modbus_rtu
connector meets the same wire time as on a real RS-485 line.

Timed two ways: the connector's poll() alone, and the gateway's real path, a ConnectorRunner
polling flat out whose sink offers each poll to a DurableBuffer (default settings) as the
gateway's does (cycle = time between successive hand-overs; every reading handed over must be
committed by the end, or the run fails). The floor is what the wire and
the simulated slave allow: every request and response frame, plus the gateway's own
inter-frame silence before each request; the pymodbus slave answers at once, without the
3.5-character silence a strict RTU slave keeps, so the floor does not count one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway_image.firmware.connectors.modbus.common import plan_all  # noqa: E402

RTU_REGISTERS = 100  # one request per register at 9600 baud already takes seconds a cycle
COALESCED, PER_REGISTER = "coalesced (125 regs/request)", "1 request per register"
RTU_CYCLES = {COALESCED: 20, PER_REGISTER: 3}


def serve_wire(a: str, b: str, char_s: float) -> None:
    """Forward bytes between two ptys, each taking `char_s` on the line (a serial cable)."""
    fds = [os.open(path, os.O_RDWR | os.O_NOCTTY) for path in (a, b)]

    def pump(src: int, dst: int) -> None:
        free_at = 0.0
        while data := os.read(src, 4096):
            now = time.monotonic()
            free_at = max(now, free_at) + len(data) * char_s
            time.sleep(free_at - now)
            os.write(dst, data)

    threads = [
        threading.Thread(target=pump, args=pair) for pair in ((fds[0], fds[1]), (fds[1], fds[0]))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def serve_rtu(port: str, baud: int, registers: int) -> None:
    from pymodbus.framer import FramerType
    from pymodbus.server import ModbusSerialServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    blocks = (
        [SimData(address=65000, values=[False], datatype=DataType.BITS)],
        [SimData(address=65000, values=[False], datatype=DataType.BITS)],
        [SimData(address=0, values=list(range(registers)), datatype=DataType.REGISTERS)],
        [SimData(address=65000, values=[0], datatype=DataType.REGISTERS)],
    )

    async def main() -> None:
        server = ModbusSerialServer(
            [SimDevice(1, simdata=blocks)],
            framer=FramerType.RTU,
            port=port,
            baudrate=baud,
            parity="N",  # Linux ptys refuse parity bits
        )
        await server.serve_forever()

    asyncio.run(main())


def rtu_config(port: str, baud: int, max_regs: int, gap: int) -> object:
    from gateway_image.firmware.connectors.modbus.config import ModbusRtuConfig

    tags = [
        {"name": f"r{i}", "table": "holding", "address": i, "type": "uint16"}
        for i in range(RTU_REGISTERS)
    ]
    return ModbusRtuConfig.model_validate(
        {
            "type": "modbus_rtu",
            "name": "bus",
            "port": port,
            "baudrate": baud,
            "parity": "N",
            "max_registers": max_regs,
            "max_gap": gap,
            "devices": [{"name": "meter", "unit": 1, "timeout": 2.0, "tags": tags}],
        }
    )


def rtu_minimum_s(config: object) -> tuple[int, float]:
    """(requests, seconds) of one cycle at the floor: per request an 8-byte request and a
    5+2n byte response on the wire, and the gateway's silence before the request (the
    simulated slave keeps none before its answer)."""
    from gateway_image.firmware.connectors.modbus.rtu import char_time, inter_frame_silence

    plan = plan_all(config.devices, config.max_registers, config.max_gap)  # type: ignore[attr-defined]
    char, silence = char_time(config), inter_frame_silence(config)  # type: ignore[arg-type]
    wire_s = sum((8 + 5 + 2 * p.request.count) * char + silence for p in plan)
    return len(plan), wire_s


async def measure_rtu(config: object, cycles: int) -> list[float]:
    from gateway_image.firmware.connectors.modbus.rtu import ModbusRtuConnector

    connector = ModbusRtuConnector(config)  # type: ignore[arg-type]
    await connector.open()
    try:
        await ready(connector)
        durations = []
        for _ in range(cycles):
            started = time.perf_counter()
            readings = await connector.poll()
            durations.append(time.perf_counter() - started)
            check(readings)
        return durations
    finally:
        await connector.close()


async def ready(connector: object, patience: float = 60.0) -> None:
    """Poll until the slave answers every register (the helper processes start slowly on a
    loaded machine; a slave that missed a poll is skipped until its retry time)."""
    deadline = time.monotonic() + patience
    while True:
        readings = await connector.poll()  # type: ignore[attr-defined]
        if whole(readings):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the RTU slave did not answer within {patience:.0f} s")
        await asyncio.sleep(0.5)


def check(readings: list) -> None:
    if not whole(readings):
        raise RuntimeError(f"RTU poll returned {len(readings)} readings, not all good")


def whole(readings: list) -> bool:
    return len(readings) == RTU_REGISTERS and all(r.quality == "good" for r in readings)


async def measure_runner(config: object, cycles: int, work: Path) -> list[float]:
    """Seconds between successive hand-overs of a runner polling flat out into the buffer."""
    from gateway_image.firmware.app import buffer_sink
    from gateway_image.firmware.buffer import DurableBuffer
    from gateway_image.firmware.config.gateway import BufferConfig
    from gateway_image.firmware.connectors.modbus.rtu import ModbusRtuConnector
    from gateway_image.firmware.runner import ConnectorRunner

    buffer = DurableBuffer.from_config(BufferConfig(), work / "buffer.sqlite")
    stamps: list[float] = []
    partial: list[int] = []  # a poll that did not read every register: the figure is void
    handed = 0
    enough = asyncio.Event()
    # The gateway's own sink (app.py): it offers, so the runner polls again at once. An
    # awaited buffer.put would hold each poll until the next group commit (sync_interval,
    # 0.1 s), a wait the gateway never has.
    hand_over = buffer_sink(buffer)

    async def sink(readings: list) -> None:
        nonlocal handed
        stamps.append(time.perf_counter())
        partial.extend([] if whole(readings) else [len(readings)])
        await hand_over(readings)
        handed += len(readings)
        if len(stamps) > cycles + 1:
            enough.set()

    connector = ModbusRtuConnector(config)  # type: ignore[arg-type]
    runner = ConnectorRunner(
        connector, sink, gateway="bench", connector_type="modbus_rtu", interval=0.001
    )
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(enough.wait(), 60 + 5 * cycles)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await connector.close()
        await buffer.flush()
        committed = buffer.depth
        await buffer.aclose()
    if partial:
        raise RuntimeError(f"RTU polls through the runner read {partial} of {RTU_REGISTERS}")
    if committed != handed:  # the buffer kept up: every reading handed over reached the disk
        raise RuntimeError(f"handed {handed} readings to the buffer, {committed} committed")
    return [b - a for a, b in pairwise(stamps[1:])]  # the first hand-over: warm-up


def run_rtu(name: str, baud: int, max_regs: int, gap: int) -> RtuResult:
    from tests.support.ptypair import PtyPair

    with tempfile.TemporaryDirectory(prefix="bench-rtu-") as tmp:
        gw_side = PtyPair(Path(tmp) / "p1")
        dev_side = PtyPair(Path(tmp) / "p2")
        for pair in (gw_side, dev_side):
            pair.a.parent.mkdir()
            pair.start()
        config = rtu_config(str(gw_side.a), baud, max_regs, gap)
        requests, minimum = rtu_minimum_s(config)
        from gateway_image.firmware.connectors.modbus.rtu import char_time

        me = [sys.executable, __file__]
        wire_proc = subprocess.Popen(
            [*me, "--serve-wire", str(gw_side.b), str(dev_side.a), repr(char_time(config))],  # type: ignore[arg-type]
            stdout=subprocess.DEVNULL,
        )
        server = subprocess.Popen(
            [*me, "--serve-rtu", str(dev_side.b), str(baud), str(RTU_REGISTERS)],
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.0)
            alone = asyncio.run(measure_rtu(config, RTU_CYCLES[name]))
            runner = asyncio.run(measure_runner(config, RTU_CYCLES[name], Path(tmp)))
        finally:
            for proc in (server, wire_proc):
                proc.kill()  # helpers with no state worth a clean shutdown
                proc.wait()
            for pair in (gw_side, dev_side):
                pair.stop()
    return RtuResult(name, baud, requests, minimum, statistics.median(alone),
                     statistics.median(runner))  # fmt: skip


@dataclass(frozen=True)
class RtuResult:
    name: str
    baud: int
    requests: int
    floor_s: float
    alone_s: float  # connector.poll() alone
    runner_s: float  # through the runner and the buffer


def rtu_markdown(results: list[RtuResult]) -> list[str]:
    """The RTU table and what it means, for docs/benchmarks.md."""

    def ms(seconds: float, floor: float) -> str:
        return f"{seconds * 1000:,.1f} ms ({seconds / floor:.2f}x)"

    lines = [
        f"Modbus RTU poll cycle, {RTU_REGISTERS} uint16 registers on one slave, 8N1 (ptys refuse"
        " parity; 8E1 adds 10% wire time), median of several cycles, against the floor the wire"
        " and the simulated slave allow (frames, plus the gateway's inter-frame silence before"
        " each request; the pymodbus slave answers without a silence of its own). Through the"
        " runner and buffer = the gateway's real path: a ConnectorRunner polling flat out, each"
        " poll handed to the DurableBuffer at default settings as the gateway's sink does (it"
        " returns at once; the group commit takes the readings behind it, all committed by the"
        " end of the run); cycle = time between hand-overs.",
        "",
        "| configuration | baud | requests/cycle | floor | connector poll() alone"
        " | through the runner and buffer |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.baud} | {r.requests} | {r.floor_s * 1000:,.1f} ms"
            f" | {ms(r.alone_s, r.floor_s)} | {ms(r.runner_s, r.floor_s)} |"
        )
    return lines


def rtu_connector_available() -> bool:
    from gateway_image.firmware.connectors.registry import BUILDERS

    return "modbus_rtu" in BUILDERS


def main() -> None:
    parser = argparse.ArgumentParser(description="helper processes of the RTU benchmark")
    parser.add_argument("--serve-wire", nargs=3)
    parser.add_argument("--serve-rtu", nargs=3)
    args = parser.parse_args()
    if args.serve_wire:
        serve_wire(args.serve_wire[0], args.serve_wire[1], float(args.serve_wire[2]))
    elif args.serve_rtu:
        serve_rtu(args.serve_rtu[0], int(args.serve_rtu[1]), int(args.serve_rtu[2]))


if __name__ == "__main__":
    main()

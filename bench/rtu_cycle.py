"""Modbus RTU poll cycle through a paced pty "wire", for bench/gateway_throughput.py.

A socat pty pair moves bytes instantly; here two pairs are joined by a process that delays
every byte by its character time at the configured baud rate, so the gateway's modbus_rtu
connector meets the same wire time as on a real RS-485 line.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway_image.firmware.connectors.modbus.common import plan_all  # noqa: E402

RTU_REGISTERS = 100  # a full baseline cycle at 9600 baud already takes seconds
RTU_CYCLES = {"coalesced (125 regs/request)": 20, "baseline: 1 request/register": 3}


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
    """(requests, wire seconds) of one cycle: 8-byte request, 5+2n byte response, silences."""
    from gateway_image.firmware.connectors.modbus.rtu import char_time, inter_frame_silence

    plan = plan_all(config.devices, config.max_registers, config.max_gap)  # type: ignore[attr-defined]
    char, silence = char_time(config), inter_frame_silence(config)  # type: ignore[arg-type]
    wire_s = sum((8 + 5 + 2 * p.request.count) * char + 2 * silence for p in plan)
    return len(plan), wire_s


async def measure_rtu(config: object, cycles: int) -> list[float]:
    from gateway_image.firmware.connectors.modbus.rtu import ModbusRtuConnector

    connector = ModbusRtuConnector(config)  # type: ignore[arg-type]
    await connector.open()
    try:
        await connector.poll()  # warm-up
        durations = []
        for _ in range(cycles):
            started = time.perf_counter()
            readings = await connector.poll()
            durations.append(time.perf_counter() - started)
            bad = [r for r in readings if r.quality != "good"]
            if bad:
                raise RuntimeError(f"RTU poll returned bad readings: {bad[0]}")
        return durations
    finally:
        await connector.close()


def run_rtu(name: str, baud: int, max_regs: int, gap: int) -> tuple[str, int, int, float, str]:
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
            durations = asyncio.run(measure_rtu(config, RTU_CYCLES[name]))
        finally:
            for proc in (server, wire_proc):
                proc.kill()  # helpers with no state worth a clean shutdown
                proc.wait()
            for pair in (gw_side, dev_side):
                pair.stop()
    cycle = statistics.median(durations)
    measured = f"{cycle * 1000:,.1f} ms ({cycle / minimum:.2f}x)"
    return name, baud, requests, minimum * 1000, measured


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

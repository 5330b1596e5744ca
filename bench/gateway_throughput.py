"""Benchmark (not a test): gateway readings/s from Modbus TCP to the broker, and RTU cycle time.

    .venv/bin/python bench/gateway_throughput.py [--seconds 10] [--registers 1000]
        [--baseline REF] [--skip-load] [--no-record]

Modbus TCP: a pymodbus server process with `--registers` holding registers on loopback, the
real gateway (`gateway run`, its own process: poll -> durable buffer -> MQTT uplink), a private
Mosquitto, and a subscriber here counting the readings that arrive. The gateway polls flat
out (poll_interval 1 ms). Two configurations in the same run: coalesced (the gateway's
default: at most 125 registers per request, gaps of 10 bridged) and one request per register:
what a poller that does not coalesce at all does. That row bounds what coalescing saves; it is
not what commercial gateways do (most read contiguous registers together).

Modbus RTU: the gateway's modbus_rtu connector polls a pymodbus RTU server process through two
socat pty pairs joined by a "wire" process that delays every byte by its character time at
the configured baud rate (a pty alone moves bytes instantly). The median poll cycle is set
against the wire-time minimum: every request and response frame plus the inter-frame
silences. Then bench/gateway_load.py (unless --skip-load): throughput with edge receipts and
with several connectors, µs of CPU per reading, and the poll schedule under a slow fsync, each
against the firmware at --baseline in the same run. Results go to docs/benchmarks.md under
"## Gateway".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from factory_common import wire  # noqa: E402
from gateway_image.firmware.config import parse_gateway_config  # noqa: E402
from gateway_image.firmware.connectors.modbus.common import plan_all  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402
from tests.support.ports import free_port, wait_for_port  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway_load  # noqa: E402
from bench_report import DOC, machine, record_section  # noqa: E402
from rtu_cycle import (  # noqa: E402
    COALESCED,
    PER_REGISTER,
    rtu_connector_available,
    rtu_markdown,
    run_rtu,
)

HEADING = "## Gateway"
GATEWAY_CMD = [sys.executable, "-c", "from gateway_image.firmware.cli import app; app()"]
SCENARIOS = {  # name -> (max_registers, max_gap)
    COALESCED: (125, 10),
    PER_REGISTER: (1, 0),
}


# ---------------------------------------------------------------- the Modbus server process


def serve_modbus(port: int, registers: int) -> None:
    """Runs in its own process, so the server's CPU is not charged to the gateway."""
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    values = [random.randrange(65536) for _ in range(registers)]
    blocks = (
        [SimData(address=65000, values=[False], datatype=DataType.BITS)],
        [SimData(address=65000, values=[False], datatype=DataType.BITS)],
        [SimData(address=0, values=values, datatype=DataType.REGISTERS)],
        [SimData(address=65000, values=[0], datatype=DataType.REGISTERS)],
    )

    async def main() -> None:
        server = ModbusTcpServer([SimDevice(1, simdata=blocks)], address=("127.0.0.1", port))
        await server.serve_forever()

    asyncio.run(main())


# ---------------------------------------------------------------- one TCP scenario


def gateway_yaml(
    modbus_port: int, mqtt_port: int, registers: int, max_regs: int, gap: int, sync: float
) -> str:
    tags = "\n".join(
        f"          - {{name: r{i}, table: holding, address: {i}, type: uint16}}"
        for i in range(registers)
    )
    return f"""gateway: {{id: bench-gw}}
# No edge here (a counting subscriber sends no receipts): rows go on the broker's PUBACK.
mqtt: {{port: {mqtt_port}, batch_max_readings: 5000, batch_max_delay: 0.05, inflight_batches: 16,
  confirm: broker}}
buffer: {{path: buffer.sqlite, max_bytes: 1GiB, sync_interval: {sync}}}
connectors:
  - type: modbus_tcp
    name: plc
    host: 127.0.0.1
    port: {modbus_port}
    poll_interval: 0.001
    timeout: 2.0
    max_registers: {max_regs}
    max_gap: {gap}
    devices:
      - name: plc1
        unit: 1
        tags:
{tags}
"""


class Counter:
    """MQTT subscriber counting readings, and how old each was on arrival."""

    def __init__(self, port: int) -> None:
        self.lock = threading.Lock()
        self.readings = 0
        self.ages_ms: list[float] = []
        self.decoder = msgspec.json.Decoder(wire.Batch)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-counter")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(wire.data_topic("bench-gw"), qos=1)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        batch = self.decoder.decode(message.payload)
        now = time.time_ns()
        with self.lock:
            self.readings += len(batch.readings)
            self.ages_ms.append((now - batch.readings[-1].ts) / 1e6)

    def take(self) -> tuple[int, list[float]]:
        with self.lock:
            count, ages = self.readings, self.ages_ms
            self.readings, self.ages_ms = 0, []
        return count, ages

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM, then SIGKILL: a benchmark must never leave processes behind."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        tail = log.read_text(errors="replace").splitlines()[-20:] if log.exists() else []
        print(f"pid {proc.pid} ignored SIGTERM for 15 s; killed. Log tail:", *tail, sep="\n")
        proc.kill()
        proc.wait()


def first_readings(counter: Counter, log: Path, patience: float = 120.0) -> None:
    """Wait for the gateway's first readings at the broker: on a loaded machine its start-up
    alone can take longer than a fixed warm-up (the window then counted nothing)."""
    deadline = time.monotonic() + patience
    while not counter.take()[0]:
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace").splitlines()[-20:] if log.exists() else []
            raise RuntimeError("no readings from the gateway:\n" + "\n".join(tail))
        time.sleep(0.2)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class TcpResult:
    name: str
    requests_per_poll: int
    readings_per_s: float
    polls_per_s: float
    gateway_cpu_pct: float
    age_p50_ms: float


def run_tcp(
    name: str, registers: int, seconds: float, max_regs: int, gap: int, sync: float = 0.1
) -> TcpResult:
    with tempfile.TemporaryDirectory(prefix="bench-gw-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(shutil.which("mosquitto") or "/usr/sbin/mosquitto", work / "broker")
        broker.start()
        modbus_port = free_port()
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve-modbus", str(modbus_port), str(registers)],
            stdout=subprocess.DEVNULL,
        )
        gateway = None
        counter = None
        try:
            wait_for_port(modbus_port)
            text = gateway_yaml(modbus_port, broker.port, registers, max_regs, gap, sync)
            (work / "gateway.yaml").write_text(text)
            plan = plan_all(parse_gateway_config(text).connectors[0].devices, max_regs, gap)
            counter = Counter(broker.port)
            gateway = subprocess.Popen(
                [*GATEWAY_CMD, "run", str(work / "gateway.yaml"), "--data-dir", str(work)],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=(work / "gateway.log").open("wb"),
            )
            first_readings(counter, work / "gateway.log")
            time.sleep(min(3.0, seconds / 2))  # warm-up
            counter.take()
            cpu0, t0 = cpu_seconds(gateway.pid), time.monotonic()
            time.sleep(seconds)
            count, ages = counter.take()
            elapsed = time.monotonic() - t0
            cpu = cpu_seconds(gateway.pid) - cpu0
        finally:
            for proc in (gateway, server):
                if proc is not None:
                    stop(proc, work / "gateway.log")
            if counter is not None:
                counter.close()
            broker.stop()
    rate = count / elapsed
    return TcpResult(
        name,
        len(plan),
        rate,
        rate / registers,
        100 * cpu / elapsed,
        statistics.median(ages) if ages else float("nan"),
    )


# ---------------------------------------------------------------- report


def report(tcp: list[TcpResult], rtu: list, registers: int, seconds: float, load: float) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### Modbus to the broker, and the RTU cycle (`bench/gateway_throughput.py`), {when}",
        "",
        "Command: `.venv/bin/python bench/gateway_throughput.py " + " ".join(sys.argv[1:]) + "`",
        "",
        f"Machine: {machine()}, load average {load:.2f} at the start (other work shares the "
        f"CPUs: compare rows of one run). {registers} uint16 holding registers on one unit, "
        f"{seconds:g} s measured per row, "
        "gateway polling flat out (poll_interval 1 ms); pymodbus server, gateway and Mosquitto "
        "each in their own process on loopback (the pymodbus server is Python too: a PLC "
        "answers faster).",
        "",
        "Modbus TCP -> gateway -> broker (readings counted at an MQTT subscriber):",
        "",
        "| configuration | requests/poll | readings/s | polls/s | gateway CPU | reading age p50 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in tcp:
        lines.append(
            f"| {r.name} | {r.requests_per_poll} | {r.readings_per_s:,.0f} | "
            f"{r.polls_per_s:.2f} | {r.gateway_cpu_pct:.0f}% | {r.age_p50_ms:.0f} ms |"
        )
    if tcp[1].readings_per_s > 0:
        speedup = tcp[0].readings_per_s / tcp[1].readings_per_s
        lines += [
            "",
            "Coalesced against one request per register (a poller that does not coalesce; not"
            " what commercial gateways do, most read contiguous registers together):"
            f" {speedup:.1f}x at default settings. A poll hands its readings to the buffer and"
            " polls again; the group commit takes them behind it (the next block, from"
            " bench/gateway_load.py, has the schedule and the CPU per reading).",
        ]
    lines += ["", *(rtu_markdown(rtu) if rtu else ["(pending: no modbus_rtu connector)"])]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--registers", type=int, default=1000)
    parser.add_argument("--no-record", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument("--baseline", default="HEAD~1", help="git ref of the firmware before")
    parser.add_argument("--skip-load", action="store_true", help="not bench/gateway_load.py")
    parser.add_argument("--serve-modbus", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_modbus:
        serve_modbus(*args.serve_modbus)
        return
    load = os.getloadavg()[0]
    tcp = []
    for name, (max_regs, gap) in SCENARIOS.items():
        print(f"running: {name} ...", flush=True)
        tcp.append(run_tcp(name, args.registers, args.seconds, max_regs, gap))
    rtu = []
    if rtu_connector_available():
        for name, (max_regs, gap) in SCENARIOS.items():
            for baud in (115200, 9600):
                print(f"running: RTU {baud} baud, {name} ...", flush=True)
                rtu.append(run_rtu(name, baud, max_regs, gap))
    else:
        print("Modbus RTU: no modbus_rtu connector registered; that part is pending")
    section = report(tcp, rtu, args.registers, args.seconds, load)
    print(section)
    if not args.no_record:
        intro = "Produced by `bench/gateway_throughput.py`."
        record_section("gateway", section, heading=HEADING, intro=intro)
        print(f"recorded in {DOC.relative_to(ROOT)}")
    if not args.skip_load:  # receipts, several connectors, CPU per reading, the schedule
        gateway_load.run(args.baseline, args.seconds, record=not args.no_record)


if __name__ == "__main__":
    main()

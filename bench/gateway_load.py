"""Gateway throughput, CPU per reading and poll schedule, for bench/gateway_throughput.py.

- One connector at default settings: one Modbus TCP connector (1,000 uint16 registers,
  polling flat out), default buffer and uplink settings, a real edge (`edge-node run --role
  ingest`) sending receipts, so rows leave the buffer only once the edge stored them.
- Several connectors: N connectors, each on its own fast responder process, `confirm:
  broker` (no edge process competing for the two cores). Polled flat out, they offer more
  than one core can carry, so that row shows the most the process delivers (and "buffer
  rows at end" whether it kept up); paced at 40 ms, 4 x 1,000 registers offer 100,000
  readings/s: the row for "the gateway as a whole at 100,000/s" (delivered = offered when
  it keeps up), and at 32 ms 125,000/s, to show where above that it stops keeping up.
- Schedule: in this process, the buffer with each commit held 50 ms before COMMIT (a slow SD
  card's fsync), a 100 ms poll of 100 registers: lateness of each poll against its tick,
  from the runner's own schedule; the baseline is the same run with the sink awaiting the
  commit (how the gateway handed readings over before).
Readings are counted at an MQTT subscriber; CPU is the gateway process's user+system time.
The baseline firmware (`--baseline REF`) runs from a `git archive` of REF in the same run.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import yaml  # noqa: E402

from tests.fault.rig import buffer_meta  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402
from tests.support.ports import free_port, wait_for_port  # noqa: E402

GW = "bench-gw"
SERVE = [sys.executable, str(Path(__file__).resolve().parent / "gateway_throughput.py")]
FAST = [sys.executable, str(Path(__file__).resolve().parent / "fast_modbus.py")]


@dataclass
class Load:
    name: str
    readings_per_s: float
    cpu_pct: float
    depth_end: int  # buffer rows at the end (waiting for receipts or not sent)
    dropped: int = 0  # readings the buffer dropped (a full intake queue, the budget)

    @property
    def us_per_reading(self) -> float:
        return 1e4 * self.cpu_pct / self.readings_per_s if self.readings_per_s else float("nan")


def source_tree(ref: str, into: Path) -> Path:
    """The repository at `ref`, unpacked (the baseline firmware runs from here)."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def connector(name: str, port: int, registers: int, interval: float = 0.001) -> dict:
    tags = [
        {"name": f"r{i}", "table": "holding", "address": i, "type": "uint16"}
        for i in range(registers)
    ]
    return {
        "type": "modbus_tcp", "name": name, "host": "127.0.0.1", "port": port,
        "poll_interval": interval, "timeout": 2.0,
        "devices": [{"name": f"{name}-1", "unit": 1, "tags": tags}],
    }  # fmt: skip


def start_edge(work: Path, mqtt_port: int) -> subprocess.Popen[bytes]:
    edge_dir = work / "edge"
    edge_dir.mkdir()
    http = free_port()
    (edge_dir / "edge.yaml").write_text(
        f"edge: {{id: bench-edge}}\nmqtt: {{port: {mqtt_port}, client_id: edge-load}}\n"
        f"store: {{path: edge.sqlite}}\nhttp: {{host: 127.0.0.1, port: {http}}}\n"
        "auth: {enabled: false}\n"
    )
    edge = subprocess.Popen(
        [str(Path(sys.executable).parent / "edge-node"), "run", str(edge_dir / "edge.yaml"),
         "--data-dir", str(edge_dir), "--role", "ingest", "--json-logs"],
        stdout=(work / "edge.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_for_port(http, timeout=30)
    time.sleep(1.0)  # subscribed: its persistent session exists from here on
    return edge


def run_load(
    name: str,
    connectors: int,
    registers: int,
    seconds: float,
    edge: bool,
    src: Path = ROOT,
    fast: bool = True,
    interval: float = 0.001,
) -> Load:
    """The gateway at `src` with `connectors` connectors; readings/s at the broker."""
    from gateway_throughput import Counter, cpu_seconds, first_readings, stop

    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        work = Path(tmp)
        broker = Mosquitto("/usr/sbin/mosquitto", work / "broker")
        broker.start()
        ports = [free_port() for _ in range(connectors)]
        servers = [
            subprocess.Popen(
                [*FAST, str(p), str(registers)] if fast
                else [*SERVE, "--serve-modbus", str(p), str(registers)],
                stdout=subprocess.DEVNULL,
            )
            for p in ports
        ]  # fmt: skip
        procs: list[subprocess.Popen[bytes]] = []
        counter = None
        try:
            for port in ports:
                wait_for_port(port)
            if edge:
                procs.append(start_edge(work, broker.port))
            mqtt = {"port": broker.port} | ({} if edge else {"confirm": "broker"})
            config = {
                "gateway": {"id": GW}, "mqtt": mqtt,
                "buffer": {"path": "buffer.sqlite", "max_bytes": "4GiB"},
                "connectors": [
                    connector(f"plc{i}", p, registers, interval) for i, p in enumerate(ports)
                ],
            }  # fmt: skip
            (work / "gateway.yaml").write_text(yaml.safe_dump(config))
            counter = Counter(broker.port)
            gateway = subprocess.Popen(
                [sys.executable, "-c", "from gateway_image.firmware.cli import app; app()",
                 "run", str(work / "gateway.yaml"), "--data-dir", str(work)],
                cwd=src, stdout=subprocess.DEVNULL, stderr=(work / "gateway.log").open("wb"),
            )  # fmt: skip
            procs.append(gateway)
            # Start-up (4,000 tags take seconds to validate) must not fall into the window.
            first_readings(counter, work / "gateway.log")
            time.sleep(3.0)  # warm-up
            counter.take()
            cpu0, t0 = cpu_seconds(gateway.pid), time.monotonic()
            time.sleep(seconds)
            count, _ = counter.take()
            elapsed = time.monotonic() - t0
            cpu = cpu_seconds(gateway.pid) - cpu0
            meta = buffer_meta(work / "buffer.sqlite")
            depth = meta.get("depth", -1)
            dropped = sum(v for k, v in meta.items() if k.startswith("dropped."))
        finally:
            for proc in [*reversed(procs), *servers]:
                stop(proc, work / "gateway.log")
            if counter is not None:
                counter.close()
            broker.stop()
    return Load(name, count / elapsed, 100 * cpu / elapsed, depth, dropped)


# ---------------------------------------------------------------- the poll schedule


@dataclass
class Schedule:
    name: str
    ticks: int
    polls: int
    late_p50_ms: float
    late_p99_ms: float
    late_max_ms: float


async def _schedule(await_commit: bool, seconds: float, fsync: float, port: int) -> Schedule:
    from factory_common.wire import Reading
    from gateway_image.firmware.app import SWITCH_INTERVAL
    from gateway_image.firmware.buffer import DurableBuffer
    from gateway_image.firmware.config import parse_gateway_config
    from gateway_image.firmware.runner import runner_for

    text = yaml.safe_dump(
        {"gateway": {"id": GW}, "connectors": [connector("plc", port, 100)]}
    ).replace("poll_interval: 0.001", "poll_interval: 0.1")
    config = parse_gateway_config(text)
    sys.setswitchinterval(SWITCH_INTERVAL)  # as the gateway process runs (app.serve)
    with tempfile.TemporaryDirectory(prefix="bench-sched-") as tmp:
        buffer = DurableBuffer.open(Path(tmp) / "b.sqlite", max_bytes=10**9, commit_delay=fsync)

        async def sink(readings: list[Reading]) -> None:
            if await_commit:
                await buffer.put(readings)
            else:
                buffer.offer(readings)

        runner = runner_for(config.connectors[0], sink, GW)
        task = asyncio.create_task(runner.run())
        while runner.health().polls < 5:  # noqa: ASYNC110 - polls have no event to wait on
            await asyncio.sleep(0.05)
        runner.lateness.clear()
        polls0 = runner.health().polls
        await asyncio.sleep(seconds)
        polls = runner.health().polls - polls0
        late = sorted(1000 * x for x in runner.lateness)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await buffer.aclose()
    name = "sink awaits the commit (before)" if await_commit else "hand-over, commit behind"
    p99 = late[min(len(late) - 1, int(0.99 * len(late)))] if late else float("nan")
    return Schedule(
        name, round(seconds / 0.1), polls, statistics.median(late) if late else float("nan"),
        p99, late[-1] if late else float("nan"),
    )  # fmt: skip


def run_schedule(seconds: float = 30.0, fsync: float = 0.05) -> list[Schedule]:
    port = free_port()
    server = subprocess.Popen([*SERVE, "--serve-modbus", str(port), "100"],
                              stdout=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_port(port)
        return [asyncio.run(_schedule(mode, seconds, fsync, port)) for mode in (True, False)]
    finally:
        server.terminate()
        server.wait(10)


def report(loads: list[Load], schedule: list[Schedule], baseline: str) -> list[str]:
    lines = [
        f"Gateway throughput and CPU per reading (baseline: the firmware at `{baseline}`, "
        "run here in the same session). 1,000 uint16 registers per connector, polled flat "
        "out unless the row says otherwise; readings/s counted at an MQTT subscriber; dropped: "
        "readings the buffer counted as dropped (a full intake queue, the budget):",
        "",
        "| configuration | readings/s | gateway CPU | µs CPU/reading | buffer rows at end "
        "| dropped |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in loads:
        lines.append(
            f"| {r.name} | {r.readings_per_s:,.0f} | {r.cpu_pct:.0f}% | "
            f"{r.us_per_reading:.1f} | {r.depth_end:,} | {r.dropped:,} |"
        )
    lines += [
        "",
        "Poll schedule with each commit held 50 ms before COMMIT (a slow SD card's fsync), a "
        "100 ms poll of 100 registers, lateness of each poll against its tick (the runner's "
        "own schedule):",
        "",
        "| hand-over | ticks | polls | lateness p50 | p99 | max |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in schedule:
        lines.append(
            f"| {s.name} | {s.ticks} | {s.polls} | {s.late_p50_ms:.1f} ms | "
            f"{s.late_p99_ms:.1f} ms | {s.late_max_ms:.1f} ms |"
        )
    return lines


def measure(baseline: str, seconds: float) -> list[str]:
    """Every row above, this tree against `baseline` (a git ref) in the same run."""
    loads = []
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as tmp:
        old = source_tree(baseline, Path(tmp) / "src")
        flat, paced, faster = 0.001, 0.04, 0.032
        rows = [
            ("1 connector, default settings, edge receipts, pymodbus server", 1, True, False, flat),
            ("1 connector, default settings, edge receipts, fast responder", 1, True, True, flat),
            ("4 connectors, confirm: broker, fast responders", 4, False, True, flat),
            (
                "4 connectors every 40 ms (100,000/s offered), confirm: broker",
                4,
                False,
                True,
                paced,
            ),
            (
                "4 connectors every 32 ms (125,000/s offered), confirm: broker",
                4,
                False,
                True,
                faster,
            ),
        ]
        for label, connectors, edge, fast, interval in rows:
            for tree, src in (("before", old), ("now", ROOT)):
                print(f"running: {label} ({tree}) ...", flush=True)
                load = run_load(
                    f"{label} ({tree})", connectors, 1000, seconds, edge, src, fast, interval
                )
                loads.append(load)
    print("running: poll schedule with a 50 ms fsync ...", flush=True)
    return report(loads, run_schedule(), baseline)


def run(baseline: str, seconds: float, record: bool = True) -> str:
    """Measure, print, and record the block under '## Gateway' in docs/benchmarks.md."""
    from bench_report import machine, record_section

    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    head = [
        f"### Throughput, CPU per reading and poll schedule (`bench/gateway_load.py`), {when}",
        "",
        f"Command: `.venv/bin/python bench/gateway_load.py --baseline {baseline}` (also run "
        "by `bench/gateway_throughput.py`).",
        "",
        f"Machine: {machine()}; the 2 CPUs shared with other work (load average "
        f"{Path('/proc/loadavg').read_text().split()[0]} at the start), so compare rows of "
        "this run, and carry µs of CPU per reading over to other machines.",
        "",
    ]
    section = "\n".join(head + measure(baseline, seconds)) + "\n"
    print(section)
    if record:
        record_section("load", section, heading="## Gateway")
    return section


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="HEAD~1", help="git ref of the firmware before")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--no-record", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args()
    run(args.baseline, args.seconds, record=not args.no_record)


if __name__ == "__main__":
    main()

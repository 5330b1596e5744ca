"""Benchmark (not a test): the fleet CLI rolling a release out to 1,000 simulated gateways.

    .venv/bin/python bench/fleet_rollout.py [--gateways 1000] [--naive-gateways 1000] [--no-record]

Real pieces: a private Mosquitto, the SQLite state store in the fleet directory, the `fleet`
CLI as its own process. The gateways are `line_sim/fleet_sim.py` in another process (one MQTT
connection answering update requests like the update agent, 50 ms per switch, publishing
retained statuses and receipts), reached through the MQTT backend. Measured for the CLI
process alone (wait4 rusage): wall time, CPU time (its own work), peak RSS. Three runs, same
fleet: `fleet status --json` over every retained status; a staged rollout (canary 1 %, waves
of 25 %); and the naive baseline, one gateway at a time (canary 1, waves of 1). Goals: < 60 s
of CLI time and < 200 MB for 1,000 gateways. Results go to docs/benchmarks.md, "## Fleet".
"""

from __future__ import annotations

import argparse
import os
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
from bench_report import machine, now, record_section  # noqa: E402
from rich.console import Console  # noqa: E402

from fleet.inventory import GatewayEntry, init_fleet_dir, save_gateway_entry  # noqa: E402
from fleet.layout import FleetLayout  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402

console = Console()
FLEET = str(Path(sys.executable).with_name("fleet"))


@dataclass(frozen=True)
class Run:
    what: str
    wall_s: float
    cpu_s: float
    peak_mb: float
    exit: int


def measure(what: str, args: list[str]) -> Run:
    """Run the CLI once; its own rusage (not the simulator's) via wait4."""
    started = time.monotonic()
    child = subprocess.Popen([FLEET, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        console.print(f"[red]{what} exited {code}[/]: {child.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
    return Run(what, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, code)


def fleet_dir(root: Path, port: int, count: int) -> FleetLayout:
    layout = FleetLayout(root)
    init_fleet_dir(layout, "bench")
    layout.fleet_file.write_text(
        yaml.safe_dump(
            {
                "name": "bench",
                "broker": {"host": "127.0.0.1", "port": port},
                "defaults": {"gate_timeout_s": 120},
            }
        )
    )
    for i in range(1, count + 1):
        save_gateway_entry(
            layout,
            GatewayEntry(id=f"gw-{i:04d}", line="anodizing", backend="mqtt", current_release="1.0"),
        )
    return layout


def simulator(port: int, count: int) -> subprocess.Popen[str]:
    sim = subprocess.Popen(
        [sys.executable, "-m", "line_sim.fleet_sim", "--port", str(port), "--count", str(count)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert sim.stdout is not None and sim.stdout.readline().strip() == "ready"
    return sim


def bench(count: int, naive_count: int, work: Path) -> list[Run]:
    broker = Mosquitto("/usr/sbin/mosquitto", work / "broker")
    broker.start()
    sim = simulator(broker.port, count)
    try:
        layout = fleet_dir(work / "fleet", broker.port, count)
        runs = [
            measure(
                f"`fleet status --json`, {count} gateways",
                ["status", "--json", "-C", str(layout.root)],
            )
        ]
        c = ["-C", str(layout.root), "--operator", "bench"]
        staged = ["--canary", "1%", "--wave-size", "25%", "--max-parallel", str(count)]
        runs.append(
            measure(
                f"staged rollout to {count} (canary 1 %, waves of 25 %)",
                ["rollout", "start", "2.0", "--to", "", *staged, "--json", *c],
            )
        )
        naive = ["--canary", "1", "--wave-size", "1", "--max-parallel", "1"]
        selector = f"id in ({','.join(f'gw-{i:04d}' for i in range(1, naive_count + 1))})"
        runs.append(
            measure(
                f"naive: one gateway at a time, {naive_count} gateways",
                ["rollout", "start", "3.0", "--to", selector, *naive, "--json", *c],
            )
        )
    finally:
        sim.terminate()
        sim.wait(10)
        broker.stop()
    return runs


def report(runs: list[Run], count: int) -> str:
    rows = "\n".join(
        f"| {r.what} | {r.wall_s:.1f} | {r.cpu_s:.1f} | {r.peak_mb:.0f} | {r.exit} |" for r in runs
    )
    return f"""### Rollout to {count} simulated gateways (`bench/fleet_rollout.py`), {now()}

Machine: {machine()}, load average {os.getloadavg()[0]:.1f} at the end.
Command: `.venv/bin/python bench/fleet_rollout.py --gateways {count}`.
The `fleet` CLI in its own process (figures are its own, from wait4), a private Mosquitto,
SQLite state, simulated gateways in another process (`line_sim/fleet_sim.py`, 50 ms per
switch) answering update requests with retained statuses, agent states and receipts.

| run | wall s | CLI CPU s | peak RSS MB | exit |
|---|---:|---:|---:|---:|
{rows}

Goal: < 60 s of CLI time and < 200 MB for 1,000 gateways. Wall time of a rollout includes
waiting for the gateways' gates; CPU time is the CLI's own work (persisting every step, reading
every status). The naive run asks one gateway, waits for its gate, then the next."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateways", type=int, default=1000)
    parser.add_argument("--naive-gateways", type=int, default=None)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    naive = args.naive_gateways or args.gateways
    with tempfile.TemporaryDirectory() as tmp:
        runs = bench(args.gateways, naive, Path(tmp))
    text = report(runs, args.gateways)
    console.print(text)
    if any(r.exit != 0 for r in runs):
        raise SystemExit(1)
    if not args.no_record:
        record_section(
            "fleet_rollout", text, heading="## Fleet", intro="Produced by `bench/fleet_rollout.py`."
        )


if __name__ == "__main__":
    main()
